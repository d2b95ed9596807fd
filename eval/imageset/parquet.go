package imageset

import (
	"context"

	"github.com/kediff/kediff/shards"
)

// classify reads the schema of the Parquet file at url (its footer only)
// and tells kediff's shards and rejects files from other Parquet files, so
// that a shard's prompt column, not its input caption, is the prompt.
func classify(ctx context.Context, url string) (parquetKind, error) {
	schema, err := shards.ParquetSchema(ctx, url)
	if err != nil {
		return otherParquet, err
	}
	cols := schema.Columns()
	switch {
	case hasColumns(cols, "prompt", "prompt_source", "image"):
		return kediffRows, nil
	case hasColumns(cols, "stage", "reason", "detail") && !hasColumns(cols, "image"):
		return kediffRejects, nil
	}
	return otherParquet, nil
}
