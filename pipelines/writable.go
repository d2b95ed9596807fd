package pipelines

import (
	"context"
	"fmt"

	"gocloud.dev/blob"
)

// checkWritable writes and deletes a small probe object, so that a missing
// bucket or a permission error stops the run before any work.
func checkWritable(ctx context.Context, out *blob.Bucket, url string) error {
	const probe = ".kediff-write-probe"
	if err := out.WriteAll(ctx, probe, []byte("ok"), nil); err != nil {
		return fmt.Errorf("output %s is not writable (check the bucket exists and the credentials allow writes): %w", url, err)
	}
	if err := out.Delete(ctx, probe); err != nil {
		return fmt.Errorf("output %s: cannot delete %s (writes need delete permission too): %w", url, probe, err)
	}
	return nil
}
