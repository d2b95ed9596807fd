package shards

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

// TestPythonReaders writes a shard with known values in every column (every
// column type: strings, int32, int64, bool, the image struct, lists of strings,
// bools and int32, the list of object structs with float32 fields, binary, and
// the nullable columns both set and null), reads it back with pandas (pyarrow
// engine), polars and Hugging Face datasets in the notebook venv
// (tools/notebook/read_shard.py, no kediff code), and checks every value and
// its Python type against what was written. Each reader's types are spelled
// out below (readerRules); where they differ from the obvious (pandas gives
// list columns as numpy arrays, a null string as NaN), the test pins what the
// reader does, so that a change in it shows here.
//
// The expected values and schemas are derived from the Row and Reject types
// by reflection, so a new column is checked without editing this test (a new
// Go type fails it with "extend").
func TestPythonReaders(t *testing.T) {
	py := pyref.NotebookVenv(t, "pandas", "pyarrow", "polars", "datasets", "PIL")
	dir, out := openTestDir(t)
	rows, rejects := readerRows(t), readerRejects()
	writeShard(t, out, "00000", rows, rejects, WriterOptions{RowGroupRows: 2})

	cache := t.TempDir()
	cmd := exec.Command(py, filepath.Join(pyref.Root(t), "tools", "notebook", "read_shard.py"),
		filepath.Join(dir, "00000.parquet"), filepath.Join(dir, "00000_rejects.parquet"), filepath.Join(cache, "datasets"))
	// datasets' caches and hub settings stay in the temporary folder, offline.
	cmd.Env = append(os.Environ(), "HF_HOME="+filepath.Join(cache, "hf"), "HF_HUB_OFFLINE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("read_shard.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		Versions map[string]string       `json:"versions"`
		Rows     map[string]readerResult `json:"rows"`
		Rejects  map[string]readerResult `json:"rejects"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("read_shard.py: bad JSON: %v: %.300s", err, stdout.String())
	}
	t.Logf("readers: %v", got.Versions)

	files := []struct {
		name    string
		res     map[string]readerResult
		want    reflect.Value // a slice of Row or Reject
		readers []string
	}{
		{"rows", got.Rows, reflect.ValueOf(rows), []string{"pandas", "polars", "datasets", "datasets_undecoded"}},
		{"rejects", got.Rejects, reflect.ValueOf(writtenRejects(rejects)), []string{"pandas", "polars", "datasets"}},
	}
	for _, f := range files {
		for _, rd := range f.readers {
			t.Run(f.name+"/"+rd, func(t *testing.T) {
				res, ok := f.res[rd]
				if !ok {
					t.Fatalf("read_shard.py printed no %s result", rd)
				}
				checkReader(t, readerRules[rd], f.want, res)
			})
		}
	}
}

// readerResult is what read_shard.py prints for one file and reader: the
// column types as the reader names them, and each row's tagged values.
type readerResult struct {
	Schema map[string]string `json:"schema"`
	Rows   []map[string]any  `json:"rows"`
}

// readerRule says how a reader hands values to Python.
type readerRule struct {
	// numpyTop: top-level scalars are numpy scalars (numpy.int32, numpy.bool)
	// and lists numpy arrays, as pandas gives them.
	numpyTop bool
	// nullString is a null string column's value at the top level.
	nullString map[string]any
	// pilImage: the image column decodes to a PIL image (datasets' Image
	// feature); otherwise it is the dict {"bytes", "path"}.
	pilImage bool
	// schema names a column's Go type as the reader prints it.
	schema func(t reflect.Type) string
}

var readerRules = map[string]readerRule{
	"pandas": {numpyTop: true,
		// pandas 3's default str dtype keeps missing values as NaN, not None.
		nullString: map[string]any{"type": "float", "value": "NaN"},
		schema:     pandasDtype},
	"polars":             {nullString: pyNone, schema: polarsType},
	"datasets":           {nullString: pyNone, pilImage: true, schema: datasetsFeature(true)},
	"datasets_undecoded": {nullString: pyNone, schema: datasetsFeature(false)},
}

var pyNone = map[string]any{"type": "None"}

// checkReader compares what one reader returned with the written rows.
func checkReader(t *testing.T, rule readerRule, want reflect.Value, res readerResult) {
	rowType := want.Type().Elem()
	cols := parquetFields(rowType)

	// Schema: the same columns, each typed as the Go type says.
	var names []string
	for name := range res.Schema {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(res.Schema) != len(cols) {
		t.Errorf("got columns %v, want %d columns", names, len(cols))
	}
	for _, c := range cols {
		w := rule.schema(c.typ)
		if g, ok := res.Schema[c.name]; !ok {
			t.Errorf("column %s missing (got %v)", c.name, names)
		} else if g != w {
			t.Errorf("column %s: type %s, want %s", c.name, g, w)
		}
	}

	if len(res.Rows) != want.Len() {
		t.Fatalf("got %d rows, want %d", len(res.Rows), want.Len())
	}
	for i := 0; i < want.Len(); i++ {
		row := want.Index(i)
		for _, c := range cols {
			v := row.FieldByIndex(c.index)
			g, ok := res.Rows[i][c.name]
			if !ok {
				t.Errorf("row %d: no column %s", i, c.name)
				continue
			}
			what := fmt.Sprintf("row %d (%s) column %s", i, row.Field(0), c.name)
			if c.typ == reflect.PointerTo(imageType) && v.IsNil() {
				checkNoImage(t, what, g)
				continue
			}
			if c.typ == reflect.PointerTo(imageType) && rule.pilImage {
				checkPIL(t, what, *v.Interface().(*Image), g)
				continue
			}
			w := expectValue(t, rule, v, c.optional, true)
			if !reflect.DeepEqual(g, w) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(w)
				t.Errorf("%s:\n got %.600s\nwant %.600s", what, gj, wj)
			}
		}
	}
}

type parquetField struct {
	name     string
	index    []int
	typ      reflect.Type
	optional bool
}

func parquetFields(t reflect.Type) []parquetField {
	var fs []parquetField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := parquetName(f)
		if !ok {
			continue
		}
		fs = append(fs, parquetField{name: name, index: f.Index, typ: f.Type,
			optional: strings.Contains(f.Tag.Get("parquet"), ",optional")})
	}
	return fs
}

// expectValue is v as read_shard.py tags it for the reader: top says v is a
// column's value (not inside a list or struct), optional that a zero v is null.
func expectValue(t *testing.T, rule readerRule, v reflect.Value, optional, top bool) any {
	t.Helper()
	if optional && v.IsZero() {
		if top && v.Kind() == reflect.String {
			return rule.nullString
		}
		return pyNone
	}
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	numpy := rule.numpyTop && top
	scalar := func(pyType, numpyType string, x any) any {
		if numpy {
			return map[string]any{"type": numpyType, "value": x}
		}
		return map[string]any{"type": pyType, "value": x}
	}
	switch {
	case v.Kind() == reflect.String:
		return map[string]any{"type": "str", "value": v.String()}
	case v.Kind() == reflect.Bool:
		return scalar("bool", "numpy.bool", v.Bool())
	case v.Kind() == reflect.Int32 || v.Kind() == reflect.Int64:
		return scalar("int", "numpy."+v.Kind().String(), float64(v.Int()))
	case v.Kind() == reflect.Float32:
		// float32 widened to float64 exactly (Python floats are doubles).
		return scalar("float", "numpy.float32", v.Float())
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		return map[string]any{"type": "bytes", "value": base64.StdEncoding.EncodeToString(v.Bytes())}
	case v.Kind() == reflect.Slice:
		elems := []any{}
		for i := 0; i < v.Len(); i++ {
			e := expectValue(t, rule, v.Index(i), false, false)
			if numpy && numpyDtype(v.Type().Elem()) != "object" {
				// Elements of a numeric numpy array are numpy scalars.
				e = expectValue(t, rule, v.Index(i), false, true)
			}
			elems = append(elems, e)
		}
		if numpy {
			return map[string]any{"type": "numpy.ndarray", "dtype": numpyDtype(v.Type().Elem()), "value": elems}
		}
		return map[string]any{"type": "list", "value": elems}
	case v.Kind() == reflect.Struct:
		fields := map[string]any{}
		for _, f := range parquetFields(v.Type()) {
			fields[f.name] = expectValue(t, rule, v.FieldByIndex(f.index), f.optional, false)
		}
		return map[string]any{"type": "dict", "value": fields}
	}
	t.Fatalf("no expected Python value for Go type %s: extend pyreaders_test.go", v.Type())
	return nil
}

// numpyDtype is the dtype of the numpy array that pandas (pyarrow's
// to_pandas) gives for a list of Go type t.
func numpyDtype(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.Int32, reflect.Int64, reflect.Float32:
		return t.Kind().String()
	}
	return "object"
}

// checkNoImage checks what a reader gives for a row written without an
// image (a nil Row.Image). The pipeline never writes one (every row has its
// image), but Row's type allows it: it is a null image column, None in
// every reader. (Before Row.Image was a pointer, such a row held a struct of
// two nulls, which datasets' Image feature refused to decode, failing ds[i]
// for the whole row.)
func checkNoImage(t *testing.T, what string, got any) {
	t.Helper()
	if !reflect.DeepEqual(got, pyNone) {
		t.Errorf("%s (no image): got %.300v, want None", what, got)
	}
}

// deref is the type a pointer type points to (optional struct columns).
func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// checkPIL compares a PIL image that datasets decoded with the written image:
// format, mode and size exactly, and the pixels exactly for PNG, within the
// difference of two JPEG decoders (Go's image/jpeg here, libjpeg-turbo in
// Pillow) for JPEG.
func checkPIL(t *testing.T, what string, img Image, got any) {
	t.Helper()
	g, _ := got.(map[string]any)
	if g["type"] != "PIL.Image.Image" {
		t.Errorf("%s: got %.200v, want a PIL image", what, got)
		return
	}
	dec, format, err := image.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	b := dec.Bounds()
	want := map[string]any{"format": strings.ToUpper(format), "mode": "RGB",
		"size": []any{float64(b.Dx()), float64(b.Dy())}}
	for k, w := range want {
		if !reflect.DeepEqual(g[k], w) {
			t.Errorf("%s: PIL image %s = %v, want %v", what, k, g[k], w)
		}
	}
	pix, err := base64.StdEncoding.DecodeString(fmt.Sprint(g["pixels"]))
	if err != nil {
		t.Fatalf("%s: pixels: %v", what, err)
	}
	rgb := rgbBytes(dec)
	if len(pix) != len(rgb) {
		t.Fatalf("%s: PIL gave %d pixel bytes, want %d (%dx%d RGB)", what, len(pix), len(rgb), b.Dx(), b.Dy())
	}
	tol := 0
	if format == "jpeg" {
		tol = jpegDecoderTolerance
	}
	worst := 0
	for i := range pix {
		d := int(pix[i]) - int(rgb[i])
		worst = max(worst, d, -d)
	}
	if worst > tol {
		t.Errorf("%s: PIL's pixels differ from the written %s image's by up to %d, want at most %d", what, format, worst, tol)
	} else if format == "jpeg" {
		t.Logf("%s: PIL's JPEG pixels within %d of Go's image/jpeg", what, worst)
	}
}

// jpegDecoderTolerance bounds the per-channel difference between Go's
// image/jpeg and Pillow's libjpeg-turbo on readerRows' JPEG: their IDCT and
// chroma upsampling differ (3 on this smooth 16x16 image with Pillow 13).
const jpegDecoderTolerance = 4

func rgbBytes(img image.Image) []byte {
	b := img.Bounds()
	n := image.NewNRGBA(b)
	draw.Draw(n, b, img, b.Min, draw.Src)
	rgb := make([]byte, 0, b.Dx()*b.Dy()*3)
	for i := 0; i < len(n.Pix); i += 4 {
		rgb = append(rgb, n.Pix[i], n.Pix[i+1], n.Pix[i+2])
	}
	return rgb
}

// pandasDtype is the pandas dtype (pyarrow engine) of a column of Go type t.
func pandasDtype(t reflect.Type) string {
	switch deref(t).Kind() {
	case reflect.String:
		return "str"
	case reflect.Bool, reflect.Int32, reflect.Int64, reflect.Float32:
		return t.Kind().String()
	}
	return "object"
}

// polarsType is the polars dtype of a column of Go type t.
func polarsType(t reflect.Type) string {
	t = deref(t)
	switch t.Kind() {
	case reflect.String:
		return "String"
	case reflect.Bool:
		return "Boolean"
	case reflect.Int32:
		return "Int32"
	case reflect.Int64:
		return "Int64"
	case reflect.Float32:
		return "Float32"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "Binary"
		}
		return "List(" + polarsType(t.Elem()) + ")"
	case reflect.Struct:
		var parts []string
		for _, f := range parquetFields(t) {
			parts = append(parts, fmt.Sprintf("'%s': %s", f.name, polarsType(f.typ)))
		}
		return "Struct({" + strings.Join(parts, ", ") + "})"
	}
	return "no polars type for " + t.String()
}

// datasetsFeature is the repr of the Hugging Face feature of a column of Go
// type t, with the image decoded or not.
func datasetsFeature(decode bool) func(t reflect.Type) string {
	var feature func(t reflect.Type) string
	feature = func(t reflect.Type) string {
		t = deref(t)
		if t == imageType {
			return fmt.Sprintf("Image(mode=None, decode=%s)", map[bool]string{true: "True", false: "False"}[decode])
		}
		if d := hfDtype(t); d != "" {
			return "Value('" + d + "')"
		}
		switch t.Kind() {
		case reflect.Slice:
			return "List(" + feature(t.Elem()) + ")"
		case reflect.Struct:
			var parts []string
			for _, f := range parquetFields(t) {
				parts = append(parts, fmt.Sprintf("'%s': %s", f.name, feature(f.typ)))
			}
			return "{" + strings.Join(parts, ", ") + "}"
		}
		return "no datasets feature for " + t.String()
	}
	return feature
}

// readerRows are three rows that between them hold every column type, set
// and null: a PNG row with every knowledge column filled (a kept and a
// dropped object, a loss mask, a latent), a JPEG row whose nullable columns
// are all null and whose lists are empty, and a row with no image at all.
func readerRows(t testing.TB) []Row {
	pngImg := image.NewNRGBA(image.Rect(0, 0, 12, 8))
	for y := 0; y < 8; y++ {
		for x := 0; x < 12; x++ {
			pngImg.Set(x, y, color.NRGBA{uint8(x * 21), uint8(y * 36), uint8(255 - x*y), 255})
		}
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, pngImg); err != nil {
		t.Fatal(err)
	}
	jpgImg := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			jpgImg.Set(x, y, color.RGBA{uint8(100 + x*4), uint8(80 + y*4), 120, 255})
		}
	}
	var jpgBuf bytes.Buffer
	if err := jpeg.Encode(&jpgBuf, jpgImg, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	latent := make([]byte, 4*2*3*2) // float16 [4, 2, 3]: every byte value class
	for i := range latent {
		latent[i] = byte(i * 37)
	}
	latent[0], latent[1] = 0x00, 0xff
	return []Row{{
		Key: "000000000", Caption: "一个红色的苹果", Prompt: "一个红色的苹果 bowl", PromptSource: "generated",
		Image: &Image{Bytes: pngBuf.Bytes(), Path: "000000000.png"},
		Width: 12, Height: 8, OriginalWidth: 1200, OriginalHeight: 800,
		SHA256: strings.Repeat("ab", 32), Source: "file:///in/00000.tar#000000000.png",
		Meta:  `{"url":"http://example.com/0.png","note":"naïve ☕"}`,
		Words: []string{"一个", "红色的", "苹果", " ", "bowl"}, POS: []string{"numeral", "adjective", "noun", "punctuation", "noun"},
		POSRaw: []string{"m", "a", "n", "x", "NN"}, Keyword: []bool{true, true, true, false, true},
		TextKnowledge: true, SpecialText: "[m]一个[a]红色的[n]苹果[w] [n]bowl",
		Objects: []Object{
			{Label: "apple", LabelZh: "苹果", Score: 0.875, X0: 0.25, Y0: 0.125, X1: 0.75, Y1: 1, Kept: true},
			{Label: "bowl", LabelZh: "碗", Score: 0.1, X0: 0, Y0: 0.5, X1: 0.3333, Y1: 0.6, Kept: false},
		},
		VisualKnowledge: true, LossMask: []byte{0, 1, 1, 0, 1, 0}, LossMaskShape: []int32{2, 3},
		GeneratedCaption: "a red apple", Latent: latent, LatentShape: []int32{4, 2, 3}, LatentDType: "float16",
	}, {
		Key: "000000001", Caption: "", Prompt: "", PromptSource: "caption",
		Image: &Image{Bytes: jpgBuf.Bytes(), Path: "000000001.jpg"},
		Width: 16, Height: 16, OriginalWidth: 2147483647, OriginalHeight: 1,
		SHA256: strings.Repeat("0", 64), Source: "file:///in/00000.tar#000000001.jpg",
		Words: []string{}, POS: []string{}, POSRaw: []string{}, Keyword: []bool{},
		Objects: []Object{}, LossMaskShape: []int32{}, LatentShape: []int32{},
	}, {
		Key: "000000002", Caption: "a cat", Prompt: "a cat", PromptSource: "caption",
		Width: 0, Height: 0, OriginalWidth: 64, OriginalHeight: 48,
		SHA256: strings.Repeat("f", 64), Source: "file:///in/00000.tar#000000002.jpg",
		Meta:  `{}`,
		Words: []string{"a ", "cat"}, POS: []string{"other", "noun"}, POSRaw: []string{"DT", "NN"}, Keyword: []bool{false, true},
		Objects:       []Object{{Label: "cat", LabelZh: "猫", Score: 0.3, X0: 0.1, Y0: 0.2, X1: 0.9, Y1: 0.95}},
		LossMaskShape: []int32{}, LatentShape: []int32{},
	}}
}

func readerRejects() []Reject {
	return []Reject{
		{Key: "000000003", Index: 3, Source: "file:///in/00000.tar#000000003.txt", Stage: "read",
			Reason: string(ReasonNoImage), Detail: "no image member", Caption: "一只猫"},
		{Key: "000000004", Index: 1 << 40, Source: "file:///in/00000.tar#000000004.jpg", Stage: "text",
			Reason: "caption_empty", Detail: "", Caption: ""},
	}
}

// writtenRejects are rejects as WriteReject stores them (strings repaired,
// the caption cut).
func writtenRejects(rs []Reject) []Reject {
	out := make([]Reject, len(rs))
	for i, r := range rs {
		r.Caption = cleanCaption(r.Caption, MaxRejectCaption)
		out[i] = r
	}
	return out
}
