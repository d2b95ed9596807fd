package imageset

import (
	"context"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
)

// classify reads the schema of the Parquet file at url (its footer only)
// and tells kediff's shards and rejects files from other Parquet files, so
// that a shard's prompt column, not its input caption, is the prompt.
func classify(ctx context.Context, url string) (parquetKind, error) {
	b, key, err := object(ctx, url)
	if err != nil {
		return otherParquet, err
	}
	defer b.Close()
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return otherParquet, fmt.Errorf("input %s: %w", url, err)
	}
	f, err := parquet.OpenFile(&readerAt{ctx: ctx, b: b, key: key}, attrs.Size,
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return otherParquet, fmt.Errorf("input %s is not a readable Parquet file: %w", url, err)
	}
	cols := f.Schema().Columns()
	switch {
	case hasColumns(cols, "prompt", "prompt_source", "image"):
		return kediffRows, nil
	case hasColumns(cols, "stage", "reason", "detail") && !hasColumns(cols, "image"):
		return kediffRejects, nil
	}
	return otherParquet, nil
}

// readerAt reads an object with range reads, for the Parquet footer.
type readerAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *readerAt) ReadAt(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	n, err := io.ReadFull(rr, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
