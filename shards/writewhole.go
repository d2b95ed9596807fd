package shards

import (
	"context"

	"gocloud.dev/blob"
)

// writeWhole writes data to key in one piece or not at all. gocloud's
// WriteAll closes, and so commits, its writer after a failed Write (a disk
// that fills part-way leaves a truncated object behind); cancelling the
// writer's context before Close aborts the write instead.
func writeWhole(ctx context.Context, b *blob.Bucket, key string, data []byte, opts *blob.WriterOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, opts)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		cancel()
		w.Close()
		return err
	}
	return w.Close()
}
