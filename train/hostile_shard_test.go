package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/allocs"
	"github.com/kediff/kediff/internal/parquetforge"
	"github.com/parquet-go/parquet-go/format"
)

// A training shard the trainer did not write may claim what its bytes do
// not hold: the loader fails naming it, in bounded memory (parquet-go alone
// allocates what a page header claims before reading it).
func TestLoaderHostileShard(t *testing.T) {
	dir := strings.TrimPrefix(writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 8, nanRow: -1}), "file://")
	path := filepath.Join(dir, "00000.parquet")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data func() []byte
		want string // in the error; "" = the shard reads
	}{
		{"good", func() []byte { return good }, ""},
		{"page_2GB", func() []byte {
			return parquetforge.WithPageHeader(t, good, func(ph *format.PageHeader) {
				ph.CompressedPageSize, ph.UncompressedPageSize = 1<<31-1, 1<<31-1
			})
		}, "claims 2147483647 bytes"},
		{"footer_length_4GB", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[len(b)-8:], 0xffffffff)
			return b
		}, "footer claims 4294967295 bytes"},
		{"num_rows_4e9", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			md.NumRows = 4_000_000_000
			return parquetforge.WithFooter(t, good, md)
		}, "footer claims 4000000000 rows"},
		{"chunk_past_the_end", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			rg := &md.RowGroups[len(md.RowGroups)-1]
			rg.Columns[len(rg.Columns)-1].MetaData.TotalCompressedSize = 1 << 31
			return parquetforge.WithFooter(t, good, md)
		}, "claims 2147483648 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data(), 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			bytes, took := allocs.Measure(func() {
				var l *Loader
				if l, err = NewLoader(context.Background(), loaderCfg("file://"+dir), tinyTok(t), LoaderState{}); err == nil {
					_, err = l.Next(context.Background())
					l.Close()
				}
			})
			t.Logf("%v, %d MiB: %v", took, bytes>>20, err)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "00000.parquet")):
				t.Fatalf("err = %v, want one naming the shard that says %q", err, tt.want)
			}
			if bytes > 64<<20 {
				t.Errorf("allocated %d MiB", bytes>>20)
			}
		})
	}
}
