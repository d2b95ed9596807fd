package shards

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/parquetforge"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// hostileRows is a small img2dataset-style input: 4 rows in 2 row groups.
func hostileInput(t testing.TB) []byte {
	rows := make([]i2dRow, 4)
	for i := range rows {
		rows[i] = i2dRow{URL: "u", Caption: ptr(fmt.Sprint("caption ", i)), Key: fmt.Sprint(i), JPG: bytes.Repeat([]byte{byte(i)}, 100)}
	}
	return writeParquet(t, rows)
}

// Hostile Parquet inputs: footers and page headers that claim billions of
// rows or a 2 GB page. Each ends in a clear error or reject with bounded
// memory and time, never a crash.
func TestParquetHostile(t *testing.T) {
	good := hostileInput(t)
	tests := []struct {
		name string
		data func() []byte
		want string // in the error or the reject; "" = all 4 rows read
	}{
		{"good", func() []byte { return good }, ""},
		{"num_rows_4e9", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			md.NumRows = 4_000_000_000
			for i := range md.RowGroups {
				md.RowGroups[i].NumRows = 2_000_000_000
			}
			return parquetforge.WithFooter(t, good, md)
		}, "row group 0 claims 2000000000 rows but holds 2"},
		{"num_rows_max", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			md.NumRows = 1<<63 - 1
			md.RowGroups[0].NumRows = 1<<63 - 1
			return parquetforge.WithFooter(t, good, md)
		}, "row groups claim more than"},
		{"num_values_4e9", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			for i := range md.RowGroups {
				for j := range md.RowGroups[i].Columns {
					md.RowGroups[i].Columns[j].MetaData.NumValues = 4_000_000_000
				}
			}
			return parquetforge.WithFooter(t, good, md)
		}, ""},
		{"chunk_size_2GB", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			for i := range md.RowGroups {
				for j := range md.RowGroups[i].Columns {
					md.RowGroups[i].Columns[j].MetaData.TotalCompressedSize = 2 << 30
					md.RowGroups[i].Columns[j].MetaData.TotalUncompressedSize = 2 << 30
				}
			}
			return parquetforge.WithFooter(t, good, md)
		}, "claims 2147483648 bytes at byte 4"},
		{"page_2GB", func() []byte {
			return parquetforge.WithPageHeader(t, good, func(ph *format.PageHeader) {
				ph.CompressedPageSize, ph.UncompressedPageSize = 1<<31-1, 1<<31-1
			})
		}, "claims 2147483647 bytes (2147483647 uncompressed), but its column chunk has 242 left"},
		{"page_uncompressed_2GB", func() []byte {
			return parquetforge.WithPageHeader(t, good, func(ph *format.PageHeader) { ph.UncompressedPageSize = 1<<31 - 1 })
		}, ""},
		{"page_negative_size", func() []byte {
			return parquetforge.WithPageHeader(t, good, func(ph *format.PageHeader) { ph.CompressedPageSize = -5 })
		}, "claims -5 bytes"},
		{"page_num_values_2e9", func() []byte {
			return parquetforge.WithPageHeader(t, good, func(ph *format.PageHeader) {
				if ph.DataPageHeader.Valid {
					ph.DataPageHeader.V.NumValues = 2_000_000_000
				}
				if ph.DictionaryPageHeader.Valid {
					ph.DictionaryPageHeader.V.NumValues = 2_000_000_000
				}
			})
		}, ""},
		{"footer_length_4GB", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[len(b)-8:], 0xffffffff)
			return b
		}, "footer claims 4294967295 bytes"},
		{"footer_length_past_start", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[len(b)-8:], uint32(len(b)))
			return b
		}, "footer claims"},
		{"row_group_offsets_out_of_range", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			for i := range md.RowGroups {
				for j := range md.RowGroups[i].Columns {
					md.RowGroups[i].Columns[j].MetaData.DataPageOffset = 1 << 40
				}
			}
			return parquetforge.WithFooter(t, good, md)
		}, "at byte 1099511627776"},
		{"schema_num_children_huge", func() []byte {
			md, _ := parquetforge.Footer(t, good)
			md.Schema[0].NumChildren = thrift.New[int32](1 << 30)
			return parquetforge.WithFooter(t, good, md)
		}, "declares 1073741824 children"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "mem://parquet-hostile/" + tt.name + ".parquet"
			put(t, u, tt.data())
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			var rejects []string
			rows := 0
			done := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Errorf("panic: %v", r)
					}
				}()
				_, err := Read(ctx, Input{URL: u, ID: "x", Format: FormatParquet}, ReadOptions{}, func(s Sample) error {
					if s.Reject != "" {
						rejects = append(rejects, string(s.Reject)+": "+s.Detail)
					} else {
						rows++
					}
					return nil
				})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("still reading after 20 s")
			}
			runtime.ReadMemStats(&after)
			t.Logf("rows %d, rejects %q, err %v, %d MiB, %v", rows, rejects, err, (after.TotalAlloc-before.TotalAlloc)>>20, time.Since(start))
			if err != nil && strings.HasPrefix(err.Error(), "panic") {
				t.Fatal(err)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
				t.Errorf("allocated %d MiB", d>>20)
			}
			got := strings.Join(rejects, "; ")
			if err != nil {
				got += err.Error()
			}
			switch {
			case tt.want == "" && (rows != 4 || got != ""):
				t.Errorf("want all 4 rows, got %d and %q", rows, got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("got %q, want it to say %q", got, tt.want)
			}
		})
	}
}

// FuzzReadParquet feeds arbitrary bytes to the Parquet reader: it must
// never panic or hang, whatever the footer and page headers claim.
func FuzzReadParquet(f *testing.F) {
	good := hostileInput(f)
	f.Add(good)
	f.Add(good[len(good)/2:])
	md, _ := parquetforge.Footer(f, good)
	md.NumRows = 4_000_000_000
	f.Add(parquetforge.WithFooter(f, good, md))
	f.Add(parquetforge.WithPageHeader(f, good, func(ph *format.PageHeader) { ph.CompressedPageSize = 1<<31 - 1 }))
	f.Fuzz(func(t *testing.T, b []byte) {
		u := "mem://parquet-fuzz/x.parquet"
		put(t, u, b)
		_, err := Read(context.Background(), Input{URL: u, ID: "x", Format: FormatParquet}, ReadOptions{MaxMemberBytes: 1 << 20}, func(Sample) error { return nil })
		if err != nil && strings.Contains(err.Error(), "decoder crashed") {
			t.Fatal(err)
		}
	})
}

// ReadRows turns a panic in a row read into an error naming the file.
func TestReadRowsRecovers(t *testing.T) {
	n, err := ReadRows("x.parquet", func() (int, error) { panic("index out of range [7] with length 3") })
	if n != 0 || err == nil || !strings.Contains(err.Error(), "x.parquet: the Parquet decoder crashed") || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("n %d, err %v", n, err)
	}
	if n, err := ReadRows("x.parquet", func() (int, error) { return 3, nil }); n != 3 || err != nil {
		t.Errorf("a plain read: n %d, err %v", n, err)
	}
}
