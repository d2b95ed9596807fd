//go:build tools

package deps

import (
	_ "github.com/go-ego/gse"
	_ "github.com/jdkato/prose/v2"
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/yalue/onnxruntime_go"
	_ "gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
	_ "golang.org/x/image/webp"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
)
