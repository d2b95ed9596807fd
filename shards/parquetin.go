package shards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"
)

// Column names tried, in order, when ReadOptions leaves them empty. The
// first list covers img2dataset (one column per image format) and Hugging
// Face datasets (an "image" struct<bytes, path>).
var (
	imageColumns   = []string{"jpg", "jpeg", "png", "webp", "image", "img", "image_bytes"}
	captionColumns = []string{"caption", "text", "txt", "prompt", "TEXT", "captions"}
	keyColumns     = []string{"key"}
)

// parquetLayout maps the columns of one Parquet file to Sample fields, by
// leaf column index (parquet.Value.Column).
type parquetLayout struct {
	image, imagePath, caption, key int // -1 when absent
	imageName                      string
	meta                           []metaColumn
}

type metaColumn struct {
	leaf     int
	name     string
	repeated bool
}

// readParquet reads an input Parquet file row group by row group, through
// range reads on the blob, so that only the rows in flight are in memory.
// ParquetSchema reads the schema of the Parquet file at url from its footer
// (range reads only), for callers that must tell kinds of Parquet apart
// before reading rows.
func ParquetSchema(ctx context.Context, url string) (*parquet.Schema, error) {
	b, key, err := openObject(ctx, url)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, blobError("input "+url, err)
	}
	f, err := OpenParquet(NewBlobReaderAt(ctx, b, key), attrs.Size, false)
	if err != nil {
		return nil, fmt.Errorf("shards: input %s is not a readable Parquet file: %w", url, err)
	}
	return f.Schema(), nil
}

func readParquet(ctx context.Context, in Input, opt ReadOptions, e *emitter) (err error) {
	defer func() {
		// parquet-go decodes bytes from outside; a panic in it on a hostile
		// file must not take the run down with it.
		if r := recover(); r != nil {
			err = fmt.Errorf("shards: input %s: the Parquet decoder crashed on it (corrupt or hostile file): %v", in.URL, r)
		}
	}()
	b, key, err := openObject(ctx, in.URL)
	if err != nil {
		return err
	}
	defer b.Close()
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return blobError("input "+in.URL, err)
	}
	// What the footer and page headers claim is checked against the file
	// before parquet-go allocates it (see pageGuard).
	f, err := OpenParquet(NewBlobReaderAt(ctx, b, key), attrs.Size, false, parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("shards: input %s is not a readable Parquet file: %w", in.URL, err)
	}
	lay, err := layoutOf(f.Schema(), opt)
	if err != nil {
		return fmt.Errorf("shards: input %s: %w", in.URL, err)
	}
	limit := opt.maxBytes()
	row := 0
	buf := make([]parquet.Row, 16)
	for g, rg := range f.RowGroups() {
		rows := rg.Rows()
		first := row
		for {
			if err := ctx.Err(); err != nil {
				rows.Close()
				return err
			}
			n, rerr := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				s := lay.sample(r, row, limit)
				if err := e.send(s, "row="+strconv.Itoa(row)); err != nil {
					rows.Close()
					return err
				}
				row++
			}
			if rerr == io.EOF {
				if got := int64(row - first); got != rg.NumRows() {
					// A footer that claims rows the pages do not hold.
					rows.Close()
					return e.send(Sample{Key: strconv.Itoa(row), Reject: ReasonTruncatedInput,
						Detail: fmt.Sprintf("Parquet row group %d claims %d rows but holds %d, the rest of the shard is lost", g, rg.NumRows(), got)},
						"row="+strconv.Itoa(row))
				}
				break
			}
			if rerr != nil {
				rows.Close()
				// Parquet has no resync point: the rest of the file is lost.
				// Said once, as a reject, so that the loss is counted.
				if err := e.send(Sample{Key: strconv.Itoa(row), Reject: ReasonTruncatedInput,
					Detail: "Parquet data unreadable from here on, the rest of the shard is lost: " + rerr.Error()},
					"row="+strconv.Itoa(row)); err != nil {
					return err
				}
				return nil
			}
		}
		rows.Close()
	}
	return nil
}

// layoutOf finds the image, caption and key columns of a schema.
func layoutOf(schema *parquet.Schema, opt ReadOptions) (*parquetLayout, error) {
	cols := schema.Columns()
	leaf := func(p ...string) (int, bool) {
		for i, c := range cols {
			if slices.Equal(c, p) {
				return i, true
			}
		}
		return -1, false
	}
	lay := &parquetLayout{image: -1, imagePath: -1, caption: -1, key: -1}
	pick := func(override string, names []string) []string {
		if override != "" {
			return []string{override}
		}
		return names
	}
	for _, name := range pick(opt.ImageColumn, imageColumns) {
		p := strings.Split(name, ".")
		if i, ok := leaf(p...); ok {
			lay.image, lay.imageName = i, name
		} else if i, ok := leaf(append(p, "bytes")...); ok {
			lay.image, lay.imageName = i, name
			lay.imagePath, _ = leaf(append(p, "path")...)
		} else {
			continue
		}
		break
	}
	for _, name := range pick(opt.CaptionColumn, captionColumns) {
		if i, ok := leaf(strings.Split(name, ".")...); ok {
			lay.caption = i
			break
		}
	}
	for _, name := range pick(opt.KeyColumn, keyColumns) {
		if i, ok := leaf(strings.Split(name, ".")...); ok {
			lay.key = i
			break
		}
	}
	var names []string
	for _, c := range cols {
		names = append(names, strings.Join(c, "."))
	}
	have := strings.Join(names, ", ")
	switch {
	case lay.image < 0:
		return nil, fmt.Errorf("no image column %s; columns are: %s (name yours with read.image_column in the config)",
			strings.Join(pick(opt.ImageColumn, imageColumns), "/"), have)
	case lay.caption < 0:
		return nil, fmt.Errorf("no caption column %s; columns are: %s (name yours with read.caption_column in the config)",
			strings.Join(pick(opt.CaptionColumn, captionColumns), "/"), have)
	case opt.KeyColumn != "" && lay.key < 0:
		return nil, fmt.Errorf("no key column %s; columns are: %s", opt.KeyColumn, have)
	}
	for i, c := range cols {
		if i == lay.image || i == lay.imagePath || i == lay.caption || i == lay.key {
			continue
		}
		lc, _ := schema.Lookup(c...)
		var name []string
		for _, el := range c {
			if lc.MaxRepetitionLevel > 0 && (el == "list" || el == "element" || el == "item") {
				continue // LIST wrapper levels say nothing to a reader of the JSON
			}
			name = append(name, el)
		}
		lay.meta = append(lay.meta, metaColumn{leaf: i, name: strings.Join(name, "."), repeated: lc.MaxRepetitionLevel > 0})
	}
	return lay, nil
}

// sample turns one row into a Sample, copying every byte it keeps: the row's
// values point into page buffers that the reader reuses.
func (lay *parquetLayout) sample(r parquet.Row, row int, limit int64) Sample {
	s := Sample{Key: strconv.Itoa(row), ImageName: lay.imageName}
	var img, imgPath, caption, key *parquet.Value
	metaVals := map[int][]parquet.Value{}
	r.Range(func(col int, vals []parquet.Value) bool {
		if len(vals) == 0 {
			return true
		}
		switch col {
		case lay.image:
			img = &vals[0]
		case lay.imagePath:
			imgPath = &vals[0]
		case lay.caption:
			caption = &vals[0]
		case lay.key:
			key = &vals[0]
		default:
			metaVals[col] = vals
		}
		return true
	})
	if key != nil && !key.IsNull() {
		s.Key = valueString(*key)
	}
	if imgPath != nil && !imgPath.IsNull() && imgPath.Kind() == parquet.ByteArray {
		if p := path.Base(string(imgPath.ByteArray())); p != "." && p != "/" {
			s.ImageName = p
		}
	}
	if caption != nil && !caption.IsNull() {
		s.Caption, s.HasCaption = captionText(caption.ByteArray()), true
	}
	if len(lay.meta) > 0 {
		s.Meta = lay.metaJSON(metaVals)
	}
	switch {
	case img == nil || img.IsNull() || img.Kind() != parquet.ByteArray:
		s.Reject, s.Detail = ReasonNoImage, "image column "+lay.imageName+" is null"
		if imgPath != nil && !imgPath.IsNull() {
			s.Detail += fmt.Sprintf(" (path %q: images stored outside the file are not read)", imgPath.ByteArray())
		}
	case int64(len(img.ByteArray())) > limit:
		s.HasImage = true
		s.Reject, s.Detail = ReasonMemberTooLarge,
			fmt.Sprintf("image has %d bytes, limit %d (raise read.max_member_bytes in the config)", len(img.ByteArray()), limit)
	case !s.HasCaption:
		s.HasImage = true
		s.Reject, s.Detail = ReasonNoCaption, "caption is null"
	default:
		s.Image, s.HasImage = bytes.Clone(img.ByteArray()), true
	}
	return s
}

// metaJSON writes the other columns as one JSON object in schema order.
func (lay *parquetLayout) metaJSON(vals map[int][]parquet.Value) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range lay.meta {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		b.Write(name)
		b.WriteByte(':')
		vs := vals[m.leaf]
		if !m.repeated {
			if len(vs) == 0 {
				b.WriteString("null")
			} else {
				b.Write(valueJSON(vs[0]))
			}
			continue
		}
		b.WriteByte('[')
		k := 0
		for _, v := range vs {
			if v.IsNull() && v.DefinitionLevel() == 0 {
				continue // an empty or null list, not a null element
			}
			if k > 0 {
				b.WriteByte(',')
			}
			b.Write(valueJSON(v))
			k++
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes()
}

func valueJSON(v parquet.Value) []byte {
	var x any
	switch v.Kind() {
	case parquet.Boolean:
		x = v.Boolean()
	case parquet.Int32:
		x = v.Int32()
	case parquet.Int64:
		x = v.Int64()
	case parquet.Float, parquet.Double:
		f := v.Double()
		if v.Kind() == parquet.Float {
			f = float64(v.Float())
		}
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			x = f
		}
	case parquet.ByteArray, parquet.FixedLenByteArray:
		if b := v.ByteArray(); utf8.Valid(b) {
			x = string(b)
		} // binary cells are left out of Meta: they are not text
	default:
		if !v.IsNull() {
			x = v.String()
		}
	}
	if v.IsNull() {
		x = nil
	}
	out, _ := json.Marshal(x)
	return out
}

func valueString(v parquet.Value) string {
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	}
	return v.String()
}

// NewBlobReaderAt gives random access to the blob key of b with one range
// read per ReadAt call (parquet-go buffers, ReadBufferSize, so that calls
// are few and large).
func NewBlobReaderAt(ctx context.Context, b *blob.Bucket, key string) io.ReaderAt {
	return &blobReaderAt{ctx: ctx, b: b, key: key}
}

type blobReaderAt struct {
	ctx context.Context
	b   *blob.Bucket
	key string
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
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
