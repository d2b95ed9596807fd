//go:build tools

package deps

import (
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/parquet-go/parquet-go"
	_ "gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/azureblob"
	_ "golang.org/x/image/webp"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
	_ "github.com/go-ego/gse"
	_ "github.com/jdkato/prose/v2"
)
