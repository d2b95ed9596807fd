// Package parquetforge edits valid Parquet files into hostile ones for
// tests: footers and page headers that claim what the bytes do not hold.
// Tests of every package that reads Parquet it did not write use it.
package parquetforge

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Footer decodes the thrift footer of a Parquet file.
func Footer(t testing.TB, b []byte) (format.FileMetaData, int) {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[len(b)-8-n:len(b)-8], &md); err != nil {
		t.Fatal(err)
	}
	return md, n
}

// WithFooter returns b with its footer replaced by md.
func WithFooter(t testing.TB, b []byte, md format.FileMetaData) []byte {
	t.Helper()
	_, n := Footer(t, b)
	enc, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(b[:len(b)-8-n]), enc...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(enc)))
	return append(out, "PAR1"...)
}

// WithPageHeader rewrites the first page header of the last column chunk of
// the last row group with edit, fixing the offsets that follow it.
func WithPageHeader(t testing.TB, b []byte, edit func(*format.PageHeader)) []byte {
	t.Helper()
	md, _ := Footer(t, b)
	rg := &md.RowGroups[len(md.RowGroups)-1]
	cc := &rg.Columns[len(rg.Columns)-1]
	off := cc.MetaData.DataPageOffset
	if cc.MetaData.DictionaryPageOffset > 0 && cc.MetaData.DictionaryPageOffset < off {
		off = cc.MetaData.DictionaryPageOffset
	}
	var ph format.PageHeader
	dec := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(bytes.NewReader(b[off:])))
	if err := dec.Decode(&ph); err != nil {
		t.Fatal(err)
	}
	old, err := thrift.Marshal(new(thrift.CompactProtocol), &ph)
	if err != nil {
		t.Fatal(err)
	}
	edit(&ph)
	enc, err := thrift.Marshal(new(thrift.CompactProtocol), &ph)
	if err != nil {
		t.Fatal(err)
	}
	delta := int64(len(enc) - len(old))
	shift := func(p *int64) {
		if *p > off {
			*p += delta
		}
	}
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			c := &md.RowGroups[i].Columns[j]
			shift(&c.FileOffset)
			shift(&c.MetaData.DataPageOffset)
			shift(&c.MetaData.DictionaryPageOffset)
			shift(&c.MetaData.IndexPageOffset)
			shift(&c.ColumnIndexOffset)
			shift(&c.OffsetIndexOffset)
			shift(&c.MetaData.BloomFilterOffset)
		}
	}
	cc.MetaData.TotalCompressedSize += delta
	_, n := Footer(t, b)
	body := append(append(bytes.Clone(b[:off]), enc...), b[off+int64(len(old)):len(b)-8-n]...)
	return WithFooter(t, append(body, b[len(b)-8-n:]...), md)
}
