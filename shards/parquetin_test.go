package shards

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// img2dataset's parquet output: one binary column per image format.
type i2dRow struct {
	URL     string   `parquet:"url"`
	Caption *string  `parquet:"caption,optional"`
	Key     string   `parquet:"key"`
	Width   int32    `parquet:"width"`
	Tags    []string `parquet:"tags,list"`
	JPG     []byte   `parquet:"jpg,optional"`
}

// Hugging Face datasets' Image feature: struct<bytes, path>.
type hfImage struct {
	Bytes []byte  `parquet:"bytes,optional"`
	Path  *string `parquet:"path,optional"`
}

type hfRow struct {
	Image *hfImage `parquet:"image,optional"`
	Text  string   `parquet:"text"`
}

func writeParquet[T any](t testing.TB, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.MaxRowsPerRowGroup(2)) // several row groups
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ptr[T any](v T) *T { return &v }

func TestParquetReader(t *testing.T) {
	i2d := writeParquet(t, []i2dRow{
		{URL: "http://x/0", Caption: ptr("a red apple"), Key: "000000000", Width: 64, Tags: []string{"a", "b"}, JPG: []byte("JPG0")},
		{URL: "http://x/1", Caption: ptr("no image"), Key: "000000001", Width: 32},
		{URL: "http://x/2", Key: "000000002", JPG: []byte("JPG2")},
		{URL: "http://x/3", Caption: ptr("big"), Key: "000000003", JPG: bytes.Repeat([]byte("x"), 100)},
	})
	hf := writeParquet(t, []hfRow{
		{Image: &hfImage{Bytes: []byte("PNG0"), Path: ptr("dir/0.png")}, Text: "一只猫"},
		{Image: &hfImage{Path: ptr("1.png")}, Text: "external"},
		{Text: "no image at all"},
	})
	custom := writeParquet(t, []struct {
		Picture []byte `parquet:"picture"`
		Alt     string `parquet:"alt"`
		ID      int64  `parquet:"id"`
	}{{[]byte("P"), "alt text", 42}})
	cases := []struct {
		name string
		data []byte
		opt  ReadOptions
		want []got
	}{
		{"img2dataset", i2d, ReadOptions{MaxMemberBytes: 50}, []got{
			{key: "000000000", caption: "a red apple", image: "JPG0", meta: `{"url":"http://x/0","width":64,"tags":["a","b"]}`},
			{key: "000000001", reason: "no_image", caption: "no image", meta: `{"url":"http://x/1","width":32,"tags":[]}`},
			{key: "000000002", reason: "no_caption", meta: `{"url":"http://x/2","width":0,"tags":[]}`},
			{key: "000000003", reason: "member_too_large", caption: "big", meta: `{"url":"http://x/3","width":0,"tags":[]}`},
		}},
		{"huggingface", hf, ReadOptions{}, []got{
			{key: "0", caption: "一只猫", image: "PNG0"},
			{key: "1", reason: "no_image", caption: "external"},
			{key: "2", reason: "no_image", caption: "no image at all"},
		}},
		{"overrides", custom, ReadOptions{ImageColumn: "picture", CaptionColumn: "alt", KeyColumn: "id"}, []got{
			{key: "42", caption: "alt text", image: "P"},
		}},
	}
	for _, st := range stores(t) {
		for _, c := range cases {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				u := st.url(c.name + "/2024/05/part-3.parquet")
				put(t, u, c.data)
				ins, err := Expand(context.Background(), st.url(c.name+"/*/*/*.parquet"))
				if err != nil {
					t.Fatal(err)
				}
				if len(ins) != 1 || ins[0].ID != "2024_05_part-3" || ins[0].Format != FormatParquet {
					t.Fatalf("Expand = %+v", ins)
				}
				ss, err := readAll(t, ins[0], c.opt)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				sameSamples(t, ss, c.want)
				if c.name == "huggingface" && ss[0].ImageName != "0.png" {
					t.Errorf("ImageName = %q, want the struct's path base", ss[0].ImageName)
				}
			})
		}
	}
}

func TestParquetReaderErrors(t *testing.T) {
	ctx := context.Background()
	u := "mem://parquet-errors/in/x.parquet"
	put(t, u, writeParquet(t, []struct {
		Foo string `parquet:"foo"`
	}{{"bar"}}))
	_, err := Read(ctx, Input{URL: u, ID: "x", Format: FormatParquet}, ReadOptions{}, func(Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "columns are: foo") {
		t.Fatalf("err = %v, want a list of the columns", err)
	}
	put(t, u, []byte("not parquet at all"))
	_, err = Read(ctx, Input{URL: u, ID: "x", Format: FormatParquet}, ReadOptions{}, func(Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not a readable Parquet file") {
		t.Fatalf("err = %v", err)
	}
}
