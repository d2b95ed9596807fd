package inspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/parquetforge"
	"github.com/kediff/kediff/internal/s3test"
	"github.com/kediff/kediff/shards"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// blend is the tint the report puts on a loss-mask cell over colour c,
// written out here from MaskAlpha's documented formula.
func blend(c color.RGBA) color.RGBA {
	f := func(v, m uint8) uint8 { return uint8((uint32(v)*(255-MaskAlpha) + uint32(m)*MaskAlpha + 127) / 255) }
	return color.RGBA{f(c.R, MaskColor.R), f(c.G, MaskColor.G), f(c.B, MaskColor.B), 255}
}

// probe is one pixel of the first sample's overlay (256x192) and the colour
// it must have.
type probe struct {
	what string
	x, y int
	want color.RGBA
}

// overlayProbes are the fixture's known pixels: box lines, tinted cells
// and untouched image.
func overlayProbes() []probe {
	return []probe{
		{"kept box, bottom line (outer pixel)", 128, 144, KeptColor},
		{"kept box, bottom line (inner pixel)", 128, 143, KeptColor},
		{"kept box, left line", 64, 130, KeptColor},
		{"kept box, black edge outside", 128, 145, color.RGBA{0, 0, 0, 255}},
		{"mask cell under the kept box, grey image", 80, 100, blend(bg)},
		{"mask cell under the kept box, red block", 120, 90, blend(red)},
		{"lone mask cell in the corner", 240, 176, blend(bg)},
		{"lone mask cell's outline", 224, 176, MaskColor},
		{"no mask, no box", 240, 20, bg},
		{"inside the kept box, above the mask", 100, 55, bg},
		{"dropped box, left line, a dash", 16, 98, DroppedColor},
		{"dropped box, left line, a gap", 16, 103, bg},
		{"kept label tag", 66, 36, KeptColor},
	}
}

func checkProbes(t *testing.T, m image.Image, origin image.Point, tol int) {
	t.Helper()
	for _, p := range overlayProbes() {
		r, g, b, _ := m.At(origin.X+p.x, origin.Y+p.y).RGBA()
		got := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
		if absDiff(got.R, p.want.R) > tol || absDiff(got.G, p.want.G) > tol || absDiff(got.B, p.want.B) > tol {
			t.Errorf("%s at (%d, %d) of the overlay: got %v, want %v", p.what, p.x, p.y, got, p.want)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// report writes the report on url with opt and returns the HTML.
func writeReport(t *testing.T, url string, opt Options) (string, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Write(context.Background(), url, &buf, opt)
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), sum
}

var overlayRE = regexp.MustCompile(`<img class="overlay" src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="overlay of ([^"]+)">`)

// overlays decodes the report's sample overlays, in order, by key.
func overlays(t *testing.T, page string) (keys []string, pngs [][]byte) {
	t.Helper()
	for _, m := range overlayRE.FindAllStringSubmatch(page, -1) {
		b, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, m[4])
		pngs = append(pngs, b)
	}
	return keys, pngs
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReportContent(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "00000", fixtureRows(t), fixtureRejects, shards.WriterOptions{})
	pngDir := filepath.Join(t.TempDir(), "png")
	page, sum := writeReport(t, dir, Options{PNGDir: pngDir})

	if sum.Shards != 1 || sum.Rows != 4 || sum.Rejects != 3 || sum.Shown != 4 || len(sum.Absent) != 0 {
		t.Errorf("summary %+v, want 1 shard, 4 rows, 3 rejects, 4 shown, nothing absent", sum)
	}
	keys, pngs := overlays(t, page)
	if strings.Join(keys, ",") != "k-0,k-1,k-2,k-3" {
		t.Fatalf("overlays of %v, want k-0..k-3", keys)
	}
	first := decodePNG(t, pngs[0])
	if first.Bounds().Dx() != 256 || first.Bounds().Dy() != 192 {
		t.Fatalf("first overlay is %v, want 256x192 (64x48 enlarged 4x)", first.Bounds())
	}
	checkProbes(t, first, image.Point{}, 0)
	// Each card shows its own row's image.
	for i, c := range rowColors {
		m := decodePNG(t, pngs[i+1])
		r, g, b, _ := m.At(5, 5).RGBA()
		if got := (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}); got != c {
			t.Errorf("card %s shows %v, want its image's %v", keys[i+1], got, c)
		}
	}
	// --png writes the same bytes, named by key.
	for i, k := range keys {
		b, err := os.ReadFile(filepath.Join(pngDir, k+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, pngs[i]) {
			t.Errorf("%s.png differs from the report's overlay", k)
		}
	}

	for _, want := range []string{
		// Self-contained: a policy that forbids any fetch.
		`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`,
		// Captions, generated caption, prompt and its source.
		"一个红色的苹果", "<dt>generated</dt><dd>a red apple on a grey table</dd>",
		`a red apple on a grey table <span class="src">(source: generated)</span>`,
		// Words by POS class, keywords marked, the legend.
		`<span class="pos-numeral" title="numeral (m)">一个</span>`,
		`<span class="pos-adjective kw" title="adjective (a), keyword">红色的</span>`,
		`<span class="pos-noun kw" title="noun (n), keyword">苹果</span>`,
		`.pos-noun{background:`, `noun [n]`, "[m]一个[a]红色的[n]苹果",
		// Detections and mask.
		`kept: apple / 苹果 0.91`, `dropped: cup / 杯子 0.30`, "9 of 6×8 cells weighted (18.8%)",
		"64×48 stored, 640×480 original, shown at 256×192",
		// The other rows: no detector, no special text.
		"none (the detector did not run on this sample)", "none (not selected for textual knowledge)",
		// Shard-wide.
		"1 shard · 4 rows · 3 rejected", "7 = 4 written + 3 rejected", "1 kept, 1 dropped",
		"caption 3 (75.0%), generated 1 (25.0%)",
		// Rejects with examples.
		`<td class="mono">image_decode</td><td>image 2</td><td class="num">2</td><td class="num">2</td>`,
		"<code>bad-1</code>", "JPEG: truncated", "<code>bad-3</code>", `<td class="mono">caption_empty</td>`,
	} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Six charts, each a PNG from package plots.
	if n := strings.Count(page, `<img src="data:image/png;base64,`); n != 6 {
		t.Errorf("%d charts, want 6", n)
	}
	for _, title := range []string{"Caption length", "Objects per image", "Keyword ratio", "Loss-mask coverage", "Image sizes", "Reject reasons"} {
		if !strings.Contains(page, `title="`+title+`"`) {
			t.Errorf("no chart %q", title)
		}
	}
	checkSelfContained(t, page)
}

// checkSelfContained fails on anything the page would fetch: every src and
// href is a data: URI or an anchor, and no CSS url() or @import.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[2], "data:") && !strings.HasPrefix(m[2], "#") {
			t.Errorf("%s=%q: the report must not fetch anything", m[1], m[2])
		}
	}
	for _, bad := range []string{"url(", "@import", "<script", "<link", "<iframe"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("report contains %q", bad)
		}
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "00000", fixtureRows(t)[:2], nil, shards.WriterOptions{})
	writeShard(t, dir, "00001", fixtureRows(t)[2:], nil, shards.WriterOptions{})
	for _, tc := range []struct {
		name    string
		opt     Options
		want    string // keys shown, in order
		wantErr []string
	}{
		{"spread over all rows", Options{}, "k-0,k-1,k-2,k-3", nil},
		{"sample 2 spread over both shards", Options{Sample: 2}, "k-1,k-3", nil},
		{"sample 1", Options{Sample: 1}, "k-2", nil},
		{"no samples", Options{Sample: -1}, "", nil},
		{"keys in the order given", Options{Keys: []string{"k-3", "k-0"}}, "k-3,k-0", nil},
		{"keys override sample", Options{Keys: []string{"k-1"}, Sample: 3}, "k-1", nil},
		{"a missing key", Options{Keys: []string{"k-0", "nope"}}, "",
			[]string{`key "nope" not in`, "4 rows in 2 shards", `"k-0", "k-1", "k-2"`, "run without --keys", "SELECT key FROM"}},
		{"missing keys", Options{Keys: []string{"x", "y"}}, "", []string{`keys "x", "y" not in`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(context.Background(), dir, &buf, tc.opt)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys, _ := overlays(t, buf.String())
			if got := strings.Join(keys, ","); got != tc.want {
				t.Errorf("shown %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		total int64
		n     int
		want  []int64
	}{
		{10, 5, []int64{1, 3, 5, 7, 9}},
		{100000, 4, []int64{12500, 37500, 62500, 87500}},
		{3, 5, []int64{0, 1, 2}},
		{0, 5, nil},
		{7, 0, nil},
		{7, 1, []int64{3}},
	} {
		got := spread(tc.total, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("spread(%d, %d) = %v, want %v", tc.total, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("spread(%d, %d) = %v, want %v", tc.total, tc.n, got, tc.want)
				break
			}
		}
	}
}

func TestDisplaySize(t *testing.T) {
	for _, tc := range []struct{ w, h, dw, dh int }{
		{64, 48, 256, 192}, {32, 32, 256, 256}, {100, 50, 300, 150}, {256, 256, 256, 256},
		{512, 300, 512, 300}, {1024, 768, 512, 384}, {4000, 10, 512, 1},
	} {
		if dw, dh := displaySize(tc.w, tc.h); dw != tc.dw || dh != tc.dh {
			t.Errorf("displaySize(%d, %d) = %d, %d, want %d, %d", tc.w, tc.h, dw, dh, tc.dw, tc.dh)
		}
	}
}

// A shard from another writer with only key, caption, image and size (the
// width as int64, not kediff's int32): the report shows what there is and
// says what is not.
func TestMissingOptionalColumns(t *testing.T) {
	type minimal struct {
		Key     string       `parquet:"key"`
		Caption string       `parquet:"caption"`
		Image   shards.Image `parquet:"image,optional"`
		Width   int64        `parquet:"width"`
		Height  int32        `parquet:"height"`
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "00000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[minimal](f)
	if _, err := w.Write([]minimal{{Key: "m-0", Caption: "only a caption", Image: shards.Image{Bytes: fixtureImage(t)}, Width: fixW, Height: fixH}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	page, sum := writeReport(t, dir, Options{})
	wantAbsent := "prompt,prompt_source,generated_caption,width,words,pos,keyword,special_text,objects,loss_mask,loss_mask_shape,latent"
	if got := strings.Join(sum.Absent, ","); got != wantAbsent {
		t.Errorf("absent %s, want %s", got, wantAbsent)
	}
	for _, want := range []string{
		"only a caption", "No shard has the objects column: the detections (detect stage) cannot be shown.",
		"No shard has the loss_mask column", "No shard has the generated_caption column",
		"absent columns: prompt, prompt_source", "Shards without a stats file", "rows with detections</th><td>column absent",
		"<dt>objects</dt><dd><span class=\"none\">column absent</span>", "<dt>loss mask</dt><dd>column absent</dd>",
		"<dt>latent</dt><dd>column absent</dd>", "width/height absent",
		"Shard 00000 has a width column of another type than kediff writes: left out.",
	} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	keys, pngs := overlays(t, page)
	if len(keys) != 1 {
		t.Fatalf("overlays %v, want m-0's", keys)
	}
	// The image without boxes or mask: untouched pixels.
	m := decodePNG(t, pngs[0])
	r, g, b, _ := m.At(240, 176).RGBA()
	if (color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}) != bg {
		t.Errorf("corner pixel %v %v %v, want the image's %v", r>>8, g>>8, b>>8, bg)
	}
}

// A shard whose every sample was rejected: the report says so and shows
// the reasons.
func TestEmptyShard(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, "00000", nil, fixtureRejects, shards.WriterOptions{})
	page, sum := writeReport(t, dir, Options{})
	if sum.Rows != 0 || sum.Rejects != 3 || sum.Shown != 0 {
		t.Errorf("summary %+v", sum)
	}
	for _, want := range []string{"No samples shown: the shards have no rows.", "The shards have no rows: every sample was rejected",
		"<code>bad-2</code>", "0 rows"} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	checkSelfContained(t, page)
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An img2dataset-style input Parquet: jpg bytes and a caption, no key.
	type input struct {
		Jpg     []byte `parquet:"jpg"`
		Caption string `parquet:"caption"`
	}
	var in bytes.Buffer
	pw := parquet.NewGenericWriter[input](&in)
	pw.Write([]input{{Jpg: []byte{1}, Caption: "x"}})
	pw.Close()
	type keyOnly struct {
		Key string `parquet:"key"`
	}
	var ko bytes.Buffer
	kw := parquet.NewGenericWriter[keyOnly](&ko)
	kw.Write([]keyOnly{{Key: "a"}})
	kw.Close()
	writeShard(t, filepath.Join(dir, "real"), "00000", fixtureRows(t)[:1], fixtureRejects, shards.WriterOptions{})
	shard, err := os.ReadFile(filepath.Join(dir, "real", "00000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := parquetforge.Footer(t, shard)
	md.NumRows = 4_000_000_000
	rowsClaim := parquetforge.WithFooter(t, shard, md)
	pageClaim := parquetforge.WithPageHeader(t, shard, func(ph *format.PageHeader) { ph.CompressedPageSize = 1<<31 - 1 })

	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"text file", write("notes.txt", []byte("hello, these are notes\n")), []string{"is not a Parquet file", `it starts with "hello, these are notes\n"`}},
		{"text file named .parquet", write("fake.parquet", []byte("not parquet at all")), []string{"is not a Parquet file", `"not parquet at all"`}},
		{"empty file", write("empty.parquet", nil), []string{"is not a Parquet file", "it is empty"}},
		{"input shard", write("in/part-0.parquet", in.Bytes()), []string{"is not a kediff shard", "no key (string) and no image",
			"its columns are jpg, caption", "kediff preprocess --input"}},
		{"no image column", write("ko/00000.parquet", ko.Bytes()), []string{"is not a kediff shard", "no image (struct<bytes: binary, path: string>) column", "its columns are key"}},
		{"folder without parquet", filepath.Dir(write("other/readme.md", []byte("#"))), []string{"holds no shard", "it holds readme.md"}},
		{"empty folder", func() string { p := filepath.Join(dir, "void"); os.Mkdir(p, 0o755); return p }(), []string{"holds no shard", "it holds nothing"}},
		{"missing path", filepath.Join(dir, "nowhere"), []string{"no such file or directory", "give a shard folder"}},
		{"rejects file", filepath.Join(dir, "real", "00000_rejects.parquet"), []string{"is a rejects file", "give its shard (00000.parquet)"}},
		{"footer claims 4e9 rows", write("rows/00000.parquet", rowsClaim), []string{"00000.parquet", "footer claims 4000000000 rows", "corrupt or hostile"}},
		{"page claims 2 GB", write("page/00000.parquet", pageClaim), []string{"00000.parquet", "claims 2147483647 bytes", "corrupt or hostile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(context.Background(), tc.url, &buf, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The same shard read from a local folder, mem:// and a real S3 API
// (gofakes3), as a folder and as one file.
func TestBlobStores(t *testing.T) {
	q := s3test.Query(s3test.Start(t, "kediff-shards"))
	for _, tc := range []struct{ name, dir, query string }{
		{"file", "file://" + t.TempDir(), ""},
		{"mem", "mem://inspect-test/out", ""},
		{"s3", "s3://kediff-shards/out", "?" + q},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeShard(t, tc.dir+tc.query, "00000", fixtureRows(t), fixtureRejects, shards.WriterOptions{})
			for _, url := range []string{tc.dir + tc.query, tc.dir + "/00000.parquet" + tc.query} {
				page, sum := writeReport(t, url, Options{Keys: []string{"k-0"}})
				if sum.Rows != 4 || sum.Rejects != 3 || sum.Shown != 1 {
					t.Errorf("%s: summary %+v", url, sum)
				}
				_, pngs := overlays(t, page)
				checkProbes(t, decodePNG(t, pngs[0]), image.Point{}, 0)
			}
		})
	}
}
