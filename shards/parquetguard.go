package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Bounds on what a Parquet input's metadata may claim. parquet-go allocates
// what the footer length and each page header claim before reading it, so
// these are checked first, against the file's real size: a hostile or
// corrupt file costs an error, not gigabytes.
const (
	// maxParquetFooter bounds the footer (real ones: KB to a few MB).
	maxParquetFooter = 64 << 20
	// maxPageHeader bounds one page header (real ones: tens of bytes, or KB
	// with statistics).
	maxPageHeader = 1 << 20
)

var errParquetCorrupt = errors.New("corrupt or hostile Parquet file")

// checkParquetTail checks the last 8 bytes of a Parquet file of size bytes:
// the footer length must fit in the file and under maxParquetFooter.
func checkParquetTail(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("file of %d bytes is too short for Parquet (%w)", size, errParquetCorrupt)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("no PAR1 magic at the end (not a Parquet file, or cut short)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 || n > maxParquetFooter {
		return fmt.Errorf("footer claims %d bytes in a file of %d (limit %d) (%w)", n, size, maxParquetFooter, errParquetCorrupt)
	}
	return nil
}

// OpenParquet opens a Parquet file that kediff did not necessarily write
// (an input, a training shard, a shard to inspect) so that what its
// metadata claims is checked before parquet-go allocates it: the footer
// length, every column chunk and page index against the file's size, and
// each page header as its bytes are read (pageGuard). With pageIndex the
// column and offset indexes are read too (for seeking to a row); opts are
// parquet-go's. Reading rows may still panic inside parquet-go on a file
// crafted past these checks: callers recover.
func OpenParquet(r io.ReaderAt, size int64, pageIndex bool, opts ...parquet.FileOption) (*parquet.File, error) {
	if err := checkParquetTail(r, size); err != nil {
		return nil, err
	}
	g := &pageGuard{r: r}
	base := []parquet.FileOption{parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)}
	f, err := parquet.OpenFile(g, size, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := g.setChunks(f, size, pageIndex); err != nil {
		return nil, err
	}
	if pageIndex {
		// The indexes' claimed sizes are checked (setChunks); now let
		// parquet-go read them.
		if f, err = parquet.OpenFile(g, size, append(opts, parquet.SkipPageIndex(false), parquet.SkipBloomFilters(true))...); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ReadRows runs read, one call of a parquet-go row reader of the file
// named what, turning a panic inside parquet-go (on a file crafted past
// OpenParquet's checks) into an error naming the file.
func ReadRows(what string, read func() (int, error)) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("%s: the Parquet decoder crashed on it (corrupt or hostile file): %v", what, p)
		}
	}()
	return read()
}

// pageGuard is the io.ReaderAt parquet-go reads a file through. Once the
// footer is read (setChunks), it walks every column chunk's page headers as
// the bytes go by, and fails the read that would hand parquet-go a header
// whose page overruns its column chunk, before parquet-go allocates the page.
type pageGuard struct {
	r      io.ReaderAt
	mu     sync.Mutex
	chunks []guardChunk // by start
}

type guardChunk struct {
	column     string
	start, end int64 // [start, end) in the file
	next       int64 // offset of the next page header not yet checked
}

// setChunks checks the column chunks of f's metadata (with indexes, their
// page indexes too) against the file size and the footer, and starts
// guarding their pages.
func (g *pageGuard) setChunks(f *parquet.File, size int64, indexes bool) error {
	md := f.Metadata()
	footerStart := size - 8
	if n, err := g.footerLen(size); err == nil {
		footerStart -= n
	}
	var chunks []guardChunk
	var rows int64
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("row group %d claims %d rows (%w)", i, rg.NumRows, errParquetCorrupt)
		}
		if rg.NumRows > math.MaxInt64-rows {
			return fmt.Errorf("row groups claim more than %d rows (%w)", int64(math.MaxInt64), errParquetCorrupt)
		}
		rows += rg.NumRows
		for j, cc := range rg.Columns {
			m := cc.MetaData
			name := strings.Join(m.PathInSchema, ".")
			start := m.DataPageOffset
			if m.DictionaryPageOffset != 0 {
				start = m.DictionaryPageOffset // as parquet-go reads it
			}
			if cc.FilePath != "" {
				return fmt.Errorf("row group %d column %s lies in another file %q; such files are not read", i, name, cc.FilePath)
			}
			if m.TotalCompressedSize < 0 || start < 4 || start > footerStart || m.TotalCompressedSize > footerStart-start || m.NumValues < 0 {
				return fmt.Errorf("row group %d column %d (%s) claims %d bytes at byte %d with %d values, outside the %d bytes of data before the footer (%w)",
					i, j, name, m.TotalCompressedSize, start, m.NumValues, footerStart, errParquetCorrupt)
			}
			for _, ix := range []struct {
				what        string
				off, length int64
			}{{"column index", cc.ColumnIndexOffset, int64(cc.ColumnIndexLength)}, {"offset index", cc.OffsetIndexOffset, int64(cc.OffsetIndexLength)}} {
				if indexes && ix.length != 0 && (ix.off < 4 || ix.length < 0 || ix.off > footerStart || ix.length > footerStart-ix.off) {
					return fmt.Errorf("row group %d column %s: %s claims %d bytes at byte %d, outside the %d bytes before the footer (%w)",
						i, name, ix.what, ix.length, ix.off, footerStart, errParquetCorrupt)
				}
			}
			chunks = append(chunks, guardChunk{column: name, start: start, end: start + m.TotalCompressedSize, next: start})
		}
	}
	if rows != md.NumRows {
		return fmt.Errorf("footer claims %d rows, its row groups %d (%w)", md.NumRows, rows, errParquetCorrupt)
	}
	sort.Slice(chunks, func(a, b int) bool { return chunks[a].start < chunks[b].start })
	g.mu.Lock()
	g.chunks = chunks
	g.mu.Unlock()
	return nil
}

func (g *pageGuard) footerLen(size int64) (int64, error) {
	var tail [4]byte
	if _, err := g.r.ReadAt(tail[:], size-8); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint32(tail[:])), nil
}

func (g *pageGuard) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.r.ReadAt(p, off)
	if n > 0 {
		if cerr := g.check(p[:n], off); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// check walks the page headers of every chunk that starts before the end of
// the bytes p read at off.
func (g *pageGuard) check(p []byte, off int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	end := off + int64(len(p))
	for i := range g.chunks {
		c := &g.chunks[i]
		if c.start >= end {
			break
		}
		for c.next < c.end && c.next < end && c.end > off {
			var hb []byte
			if c.next >= off {
				hb = p[c.next-off:]
			}
			ph, hl, err := decodePageHeader(hb, c.end-c.next)
			if errors.Is(err, io.ErrUnexpectedEOF) && int64(len(hb)) < min(c.end-c.next, maxPageHeader) {
				// The header is not all in p: read it on its own.
				buf := make([]byte, min(c.end-c.next, maxPageHeader))
				k, rerr := g.r.ReadAt(buf, c.next)
				if k < len(buf) && rerr != nil && !errors.Is(rerr, io.EOF) {
					return rerr
				}
				ph, hl, err = decodePageHeader(buf[:k], c.end-c.next)
			}
			if err != nil {
				return fmt.Errorf("column %s: page header at byte %d: %v (%w)", c.column, c.next, err, errParquetCorrupt)
			}
			left := c.end - c.next - int64(hl)
			if ph.CompressedPageSize < 0 || int64(ph.CompressedPageSize) > left || ph.UncompressedPageSize < 0 {
				return fmt.Errorf("column %s: page at byte %d claims %d bytes (%d uncompressed), but its column chunk has %d left (%w)",
					c.column, c.next, ph.CompressedPageSize, ph.UncompressedPageSize, left, errParquetCorrupt)
			}
			c.next += int64(hl) + int64(ph.CompressedPageSize)
		}
	}
	return nil
}

// decodePageHeader decodes the page header at the start of b, of a chunk
// with left bytes from there; io.ErrUnexpectedEOF means b holds only part.
func decodePageHeader(b []byte, left int64) (format.PageHeader, int, error) {
	var ph format.PageHeader
	if int64(len(b)) > left {
		b = b[:left]
	}
	if len(b) > maxPageHeader {
		b = b[:maxPageHeader]
	}
	pr := new(thrift.CompactProtocol).NewReaderFromBytes(b)
	if err := thrift.NewDecoder(pr).Decode(&ph); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if len(b) >= maxPageHeader {
				return ph, 0, fmt.Errorf("no page header within %d bytes", maxPageHeader)
			}
			return ph, 0, io.ErrUnexpectedEOF
		}
		return ph, 0, err
	}
	return ph, pr.BytesRead(), nil
}
