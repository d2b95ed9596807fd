package synth

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// smallOptions is a quick set: 10 samples in shards of 4 (4, 4, 2).
func smallOptions() Options {
	o := DefaultOptions()
	o.Samples, o.PerShard, o.Width, o.Height = 10, 4, 96, 64
	return o
}

func generate(t *testing.T, opt Options) (string, Summary) {
	t.Helper()
	dir := t.TempDir()
	sum, err := Generate(context.Background(), dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

// readTar returns a shard's members in order.
func readTar(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []member
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o644 || !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: %s: header type %c mode %o time %v, want regular 0644 at the epoch", path, hdr.Name, hdr.Typeflag, hdr.Mode, hdr.ModTime)
		}
		out = append(out, member{hdr.Name, data})
	}
}

func TestGenerateDeterministic(t *testing.T) {
	opt := smallOptions()
	opt.BadSamples = true
	a, sumA := generate(t, opt)
	b, _ := generate(t, opt)
	opt.Seed = 2
	c, _ := generate(t, opt)
	for _, name := range sumA.Shards {
		da, _ := os.ReadFile(filepath.Join(a, name))
		db, _ := os.ReadFile(filepath.Join(b, name))
		dc, _ := os.ReadFile(filepath.Join(c, name))
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two runs with equal options", name)
		}
		if bytes.Equal(da, dc) {
			t.Errorf("%s is the same for seeds 1 and 2", name)
		}
	}
}

// TestRenderReproducesSample checks the documented recipe: sample k is
// Render(rand.New(rand.NewPCG(Seed, k))).
func TestRenderReproducesSample(t *testing.T) {
	opt := smallOptions()
	dir, _ := generate(t, opt)
	m := readTar(t, filepath.Join(dir, "00001.tar"))
	var rec record
	if err := json.Unmarshal(m[2].data, &rec); err != nil {
		t.Fatal(err)
	}
	_, s := Render(rand.New(rand.NewPCG(opt.Seed, 4)), opt)
	got, _ := json.Marshal(rec.Objects)
	want, _ := json.Marshal(s.Objects)
	if rec.Key != "000000004" || rec.CaptionEn != s.CaptionEn || !bytes.Equal(got, want) {
		t.Errorf("sample 4 = %+v, Render gives %+v", rec, s)
	}
}

func TestTarLayout(t *testing.T) {
	opt := smallOptions()
	dir, sum := generate(t, opt)
	wantShards := []string{"00000.tar", "00001.tar", "00002.tar"}
	if fmt.Sprint(sum.Shards) != fmt.Sprint(wantShards) || sum.Samples != 10 || sum.Bad != 0 {
		t.Fatalf("summary %+v, want shards %v and 10 samples", sum, wantShards)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != len(wantShards) {
		t.Errorf("output folder holds %d files, want only the %d shards", len(files), len(wantShards))
	}
	var total int64
	for s, name := range wantShards {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		members := readTar(t, path)
		n := min(opt.PerShard, opt.Samples-s*opt.PerShard)
		if len(members) != 3*n {
			t.Fatalf("%s: %d members, want %d", name, len(members), 3*n)
		}
		for i := range n {
			key := fmt.Sprintf("%09d", s*opt.PerShard+i)
			for j, ext := range []string{".jpg", ".txt", ".json"} {
				if got := members[3*i+j].name; got != key+ext {
					t.Errorf("%s: member %d is %q, want %q", name, 3*i+j, got, key+ext)
				}
			}
		}
	}
	if total != sum.Bytes {
		t.Errorf("summary says %d bytes, shards hold %d", sum.Bytes, total)
	}
}

var keyRE = regexp.MustCompile(`^[0-9]{9}$`)

// TestSidecars checks every sample's json against its image and caption.
func TestSidecars(t *testing.T) {
	opt := smallOptions()
	opt.Samples = 24
	dir, sum := generate(t, opt)
	for _, name := range sum.Shards {
		members := readTar(t, filepath.Join(dir, name))
		for i := 0; i+2 < len(members); i += 3 {
			jpg, txt, doc := members[i], members[i+1], members[i+2]
			key := strings.TrimSuffix(jpg.name, ".jpg")
			var rec record
			if err := json.Unmarshal(doc.data, &rec); err != nil {
				t.Fatalf("%s: %v", doc.name, err)
			}
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg.data))
			if err != nil {
				t.Fatalf("%s: %v", jpg.name, err)
			}
			switch {
			case !keyRE.MatchString(key) || rec.Key != key:
				t.Errorf("%s: key %q in json, want 9 digits %q", doc.name, rec.Key, key)
			case rec.Width != cfg.Width || rec.Height != cfg.Height || cfg.Width != opt.Width || cfg.Height != opt.Height:
				t.Errorf("%s: json says %dx%d, jpeg is %dx%d, want %dx%d", key, rec.Width, rec.Height, cfg.Width, cfg.Height, opt.Width, opt.Height)
			case string(txt.data) != rec.Caption || (rec.Caption != rec.CaptionEn && rec.Caption != rec.CaptionZh):
				t.Errorf("%s: .txt %q, json caption %q, want one of %q, %q", key, txt.data, rec.Caption, rec.CaptionEn, rec.CaptionZh)
			case len(rec.Objects) < 1 || len(rec.Objects) > 3 || rec.Seed != opt.Seed:
				t.Errorf("%s: %d objects, seed %d", key, len(rec.Objects), rec.Seed)
			}
			for _, o := range rec.Objects {
				b := o.Box
				if b[0] < 0 || b[1] < 0 || b[2] > rec.Width || b[3] > rec.Height || b[0] >= b[2] || b[1] >= b[3] {
					t.Errorf("%s: %s box %v outside the %dx%d image", key, o.Label, b, rec.Width, rec.Height)
				}
			}
		}
	}
}

// alpha is how far pixel p lies from bg towards c: 0 at bg, 1 at c.
func alpha(p, bg, c color.RGBA) float64 {
	var dot, norm float64
	for _, k := range [][3]uint8{{p.R, bg.R, c.R}, {p.G, bg.G, c.G}, {p.B, bg.B, c.B}} {
		d, e := float64(k[0])-float64(k[1]), float64(k[2])-float64(k[1])
		dot += d * e
		norm += e * e
	}
	return dot / norm
}

// mostCommon is the flat background's colour.
func mostCommon(img *image.RGBA) color.RGBA {
	counts := map[color.RGBA]int{}
	var best color.RGBA
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			c := img.RGBAAt(x, y)
			counts[c]++
			if counts[c] > counts[best] {
				best = c
			}
		}
	}
	return best
}

// TestBoxesTight checks on flat single-shape scenes that every pixel at least
// half of the shape's colour is inside the box, and that every side of the box
// touches such a pixel.
func TestBoxesTight(t *testing.T) {
	opt := Options{Width: 160, Height: 120}
	seen := map[string]bool{}
	for k := uint64(0); len(seen) < len(Labels) || k < 60; k++ {
		if k > 2000 {
			t.Fatalf("only shapes %v in 2000 scenes", seen)
		}
		img, s := Render(rand.New(rand.NewPCG(7, k)), opt)
		if len(s.Objects) != 1 {
			continue
		}
		o := s.Objects[0]
		seen[o.Label] = true
		bg, c := mostCommon(img), Colors[colorIndex(o.Color)].RGB
		b := o.Box
		var touch [4]bool
		for y := range s.Height {
			for x := range s.Width {
				a := alpha(img.RGBAAt(x, y), bg, c)
				inside := x >= b[0] && x < b[2] && y >= b[1] && y < b[3]
				if !inside && a > 0.47 {
					t.Fatalf("scene %d: %s: pixel (%d,%d) is %.2f %s but outside box %v", k, s.CaptionEn, x, y, a, o.Color, b)
				}
				if inside && a >= 0.49 {
					touch[0] = touch[0] || x == b[0]
					touch[1] = touch[1] || y == b[1]
					touch[2] = touch[2] || x == b[2]-1
					touch[3] = touch[3] || y == b[3]-1
				}
			}
		}
		if touch != [4]bool{true, true, true, true} {
			t.Errorf("scene %d: %s: box %v is not tight (sides touching the shape: %v)", k, s.CaptionEn, b, touch)
		}
	}
}

func colorIndex(name string) int {
	for i, c := range Colors {
		if c.Name == name {
			return i
		}
	}
	panic("unknown colour " + name)
}

// TestScenes checks layouts over many scenes: boxes apart, (shape, colour)
// pairs distinct, every size and object count drawn, captions naming every
// object in both languages.
func TestScenes(t *testing.T) {
	counts, sizes := map[int]int{}, map[string]int{}
	for k := uint64(0); k < 400; k++ {
		_, s := Render(rand.New(rand.NewPCG(3, k)), Options{Width: 128, Height: 96})
		counts[len(s.Objects)]++
		for i, o := range s.Objects {
			sizes[o.Size]++
			for _, w := range []string{o.Color, o.Label} {
				if !strings.Contains(s.CaptionEn, w) {
					t.Errorf("scene %d: %q lacks %q", k, s.CaptionEn, w)
				}
			}
			for _, w := range []string{o.ColorZh, o.LabelZh} {
				if !strings.Contains(s.CaptionZh, w) {
					t.Errorf("scene %d: %q lacks %q", k, s.CaptionZh, w)
				}
			}
			for _, p := range s.Objects[:i] {
				if p.Label == o.Label && p.Color == o.Color {
					t.Errorf("scene %d: two %s %ss", k, o.Color, o.Label)
				}
				a, b := p.Box, o.Box
				if a[2] > b[0] && b[2] > a[0] && a[3] > b[1] && b[3] > a[1] {
					t.Errorf("scene %d: boxes %v and %v overlap", k, a, b)
				}
			}
		}
	}
	for n := 1; n <= 3; n++ {
		if counts[n] < 50 {
			t.Errorf("%d-object scenes: %d of 400 (all: %v)", n, counts[n], counts)
		}
	}
	for _, sc := range sizeClasses {
		if sizes[sc.name] < 50 {
			t.Errorf("%s objects: %d (all: %v)", sc.name, sizes[sc.name], sizes)
		}
	}
	t.Logf("objects per scene: %v, sizes: %v", counts, sizes)
}

// obj makes an object for the caption table with a box; size "" is medium.
func obj(label, col, size string, box [4]int) Object {
	o := Object{Label: label, Color: col, Size: size, Box: box}
	for _, l := range Labels {
		if l.Name == label {
			o.LabelZh = l.Zh
		}
	}
	o.ColorZh = Colors[colorIndex(col)].Zh
	if size == "" {
		o.Size = Medium
	}
	return o
}

func TestCaption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		objs   []Object
		en, zh string
	}{
		{"one", []Object{obj("circle", "red", "", [4]int{10, 10, 40, 40})},
			"a red circle", "一个红色的圆形"},
		{"article_an", []Object{obj("ellipse", "orange", Big, [4]int{10, 10, 40, 40})},
			"a big orange ellipse", "一个橙色的大椭圆"},
		{"same_row", []Object{ // listed right first: order comes from the boxes
			obj("triangle", "green", "", [4]int{60, 12, 90, 40}),
			obj("star", "yellow", "", [4]int{10, 10, 40, 40})},
			"a yellow star to the left of a green triangle", "绿色三角形左边有一个黄色的五角星"},
		{"same_column", []Object{
			obj("square", "black", Small, [4]int{20, 70, 35, 85}),
			obj("hexagon", "white", Big, [4]int{10, 5, 50, 50})},
			"a big white hexagon above a small black square", "黑色小正方形上面有一个白色的大六边形"},
		{"diagonal", []Object{
			obj("square", "blue", Small, [4]int{60, 60, 75, 75}),
			obj("circle", "red", "", [4]int{10, 10, 40, 40})},
			"a red circle and a small blue square", "一个红色的圆形和一个蓝色的小正方形"},
		{"three", []Object{
			obj("hexagon", "white", "", [4]int{80, 10, 100, 30}),
			obj("circle", "red", "", [4]int{10, 10, 30, 30}),
			obj("star", "blue", Small, [4]int{45, 50, 60, 65})},
			"a red circle, a small blue star and a white hexagon", "一个红色的圆形、一个蓝色的小五角星和一个白色的六边形"},
		{"orange_first", []Object{obj("rectangle", "orange", "", [4]int{10, 10, 40, 40})},
			"an orange rectangle", "一个橙色的长方形"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en, zh := Caption(tc.objs)
			if en != tc.en || zh != tc.zh {
				t.Errorf("Caption = %q, %q; want %q, %q", en, zh, tc.en, tc.zh)
			}
		})
	}
}

func TestLang(t *testing.T) {
	for _, tc := range []struct {
		lang     string
		min, max int // Chinese captions of 90
	}{{"mixed", 45, 75}, {"zh", 90, 90}, {"en", 0, 0}} {
		t.Run(tc.lang, func(t *testing.T) {
			opt := Options{Samples: 90, PerShard: 90, Width: 48, Height: 48, Lang: tc.lang}
			dir, _ := generate(t, opt)
			zh := 0
			for _, m := range readTar(t, filepath.Join(dir, "00000.tar")) {
				if strings.HasSuffix(m.name, ".txt") && utf8.RuneCount(m.data) != len(m.data) {
					zh++
				}
			}
			if zh < tc.min || zh > tc.max {
				t.Errorf("%d Chinese captions of 90, want %d..%d", zh, tc.min, tc.max)
			}
		})
	}
}

func TestBadSamples(t *testing.T) {
	opt := smallOptions()
	opt.BadSamples = true
	dir, sum := generate(t, opt)
	if sum.Bad != len(BadKinds) || sum.Samples != 10 {
		t.Fatalf("summary %+v, want 10 samples and %d broken", sum, len(BadKinds))
	}
	last := readTar(t, filepath.Join(dir, sum.Shards[len(sum.Shards)-1]))
	byKey := map[string]map[string][]byte{}
	for _, m := range last {
		key, ext, _ := strings.Cut(m.name, ".")
		if byKey[key] == nil {
			byKey[key] = map[string][]byte{}
		}
		byKey[key][ext] = m.data
	}
	for i, kind := range BadKinds {
		key := fmt.Sprintf("%09d", opt.Samples+i)
		m := byKey[key]
		var rec record
		if err := json.Unmarshal(m["json"], &rec); err != nil || rec.Bad != kind.Name {
			t.Errorf("%s: json %q (%v), want bad %q", key, m["json"], err, kind.Name)
		}
		jpg, hasJPG := m["jpg"]
		txt, hasTxt := m["txt"]
		_, decodeErr := jpeg.Decode(bytes.NewReader(jpg))
		var ok bool
		switch kind.Name {
		case "truncated_jpeg":
			ok = hasJPG && len(jpg) > 0 && decodeErr != nil && hasTxt
		case "empty_image":
			ok = hasJPG && len(jpg) == 0 && hasTxt
		case "no_image":
			ok = !hasJPG && hasTxt
		case "no_caption":
			ok = hasJPG && decodeErr == nil && !hasTxt
		case "blank_caption":
			ok = decodeErr == nil && hasTxt && len(txt) > 0 && strings.TrimSpace(string(txt)) == ""
		case "invalid_utf8":
			ok = decodeErr == nil && hasTxt && !utf8.Valid(txt) && bytes.Contains(txt, []byte{0xff, 0xfe})
		}
		if !ok {
			t.Errorf("%s (%s): members jpg %v (%d bytes, decode error %v), txt %v %q: not as documented: %s",
				key, kind.Name, hasJPG, len(jpg), decodeErr, hasTxt, txt, kind.Doc)
		}
	}
	if len(byKey) != 2+len(BadKinds) { // shard 2 holds samples 8 and 9, then the broken ones
		t.Errorf("last shard holds %d keys, want %d", len(byKey), 2+len(BadKinds))
	}
}

// TestPhotoJPEGSize checks that photo-mode 640x480 images at quality 90 are
// the size of photographs.
func TestPhotoJPEGSize(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 640x480 images")
	}
	opt := DefaultOptions()
	opt.Width, opt.Height = 640, 480
	var sizes []int
	for k := range uint64(6) {
		img, _ := Render(rand.New(rand.NewPCG(1, k)), opt)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, buf.Len()/1024)
		if buf.Len() < 30<<10 || buf.Len() > 120<<10 {
			t.Errorf("image %d: %d KB, want 30..120 KB", k, buf.Len()>>10)
		}
	}
	t.Logf("640x480 photo JPEGs at quality 90: %v KB", sizes)
}

func TestOptionsRejected(t *testing.T) {
	for _, opt := range []Options{
		{Lang: "fr"}, {Samples: -1}, {Width: 8}, {Quality: 101},
	} {
		if _, err := Generate(context.Background(), t.TempDir(), opt); err == nil {
			t.Errorf("Generate(%+v) succeeded", opt)
		}
	}
}

func TestGenerateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, t.TempDir(), smallOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestObjectMix(t *testing.T) {
	count := func(mix [3]float64) [4]int {
		var n [4]int
		for k := range 300 {
			_, sc := Render(rand.New(rand.NewPCG(5, uint64(k))), Options{Width: 128, Height: 128, ObjectMix: mix})
			n[len(sc.Objects)]++
		}
		return n
	}
	if n := count([3]float64{0, 1, 0}); n[2] < 290 || n[3] != 0 {
		t.Errorf("mix 0,1,0: object counts %v, want (almost) only 2", n)
	}
	if n := count([3]float64{1, 2, 1}); n[2] < 120 || n[1] < 50 || n[3] < 40 {
		t.Errorf("mix 1,2,1: object counts %v, want about 75/150/75", n)
	}
	for _, bad := range []string{"1,2", "1,x,1", "0,0,0", "-1,1,1"} {
		if _, err := ParseObjectMix(bad); err == nil {
			t.Errorf("ParseObjectMix(%q) accepted", bad)
		}
	}
	if m, err := ParseObjectMix("1, 2,1"); err != nil || m != [3]float64{1, 2, 1} {
		t.Errorf("ParseObjectMix: %v %v", m, err)
	}
}
