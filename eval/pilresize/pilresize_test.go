package pilresize

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

// testImage is a fixed w x h x c image in 0..255: a gradient, a hard-edged
// square (so bicubic overshoots and the clipping matters) and noise.
func testImage(w, h, c int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	px := make([]float64, w*h*c)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for k := 0; k < c; k++ {
				v := 255 * float64(x+k*y) / float64(w+k*h)
				if x > w/4 && x < 3*w/4 && y > h/3 && y < 2*h/3 {
					v = float64(255 * (k % 2))
				}
				if (x+y)%5 == 0 {
					v = 255 * r.Float64()
				}
				px[(y*w+x)*c+k] = v
			}
		}
	}
	return px
}

type resizeCase struct {
	name           string
	sw, sh, dw, dh int
}

var resizeCases = []resizeCase{
	{"upscale_odd", 17, 13, 40, 31},
	{"downscale_odd", 64, 48, 23, 17},
	{"downscale_large_factor", 301, 211, 13, 9},
	{"mixed_up_down", 300, 200, 299, 299},
	{"tiny", 7, 5, 3, 9},
	{"single_pixel_up", 1, 1, 5, 3},
	{"vertical_only", 33, 33, 33, 10},
	{"horizontal_only", 33, 10, 12, 10},
	{"clip_input_size", 512, 384, 224, 168},
	{"same_size", 9, 6, 9, 6},
}

type pilCase struct {
	Mode   string `json:"mode"`
	SW     int    `json:"sw"`
	SH     int    `json:"sh"`
	DW     int    `json:"dw"`
	DH     int    `json:"dh"`
	Filter string `json:"filter"`
	Src    string `json:"src"`
	Dst    string `json:"dst"`
}

// runPIL resizes every case with tools/eval/pil_resize.py in one process.
func runPIL(t *testing.T, cases []pilCase, srcs [][]byte) [][]byte {
	t.Helper()
	py := pyref.Torch(t, "PIL")
	dir := t.TempDir()
	for i := range cases {
		cases[i].Src = filepath.Join(dir, fmt.Sprintf("%d.src", i))
		cases[i].Dst = filepath.Join(dir, fmt.Sprintf("%d.dst", i))
		if err := os.WriteFile(cases[i].Src, srcs[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := json.Marshal(cases)
	manifest := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(manifest, js, 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(pyref.Root(t), "tools", "eval", "pil_resize.py")
	if out, err := exec.Command(py, script, manifest).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	outs := make([][]byte, len(cases))
	for i, c := range cases {
		b, err := os.ReadFile(c.Dst)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = b
	}
	return outs
}

func TestMatchesPillow(t *testing.T) {
	var cases []pilCase
	var srcs [][]byte
	type inputs struct {
		f   []float32
		rgb []byte
	}
	var in []inputs
	for _, f := range []Filter{Bilinear, Bicubic} {
		for i, rc := range resizeCases {
			pf := testImage(rc.sw, rc.sh, 1, uint64(i))
			plane := make([]float32, len(pf))
			raw := make([]byte, 4*len(pf))
			for j, v := range pf {
				plane[j] = float32(v)
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(plane[j]))
			}
			p3 := testImage(rc.sw, rc.sh, 3, uint64(i))
			rgb := make([]byte, len(p3))
			for j, v := range p3 {
				rgb[j] = byte(math.Round(v))
			}
			cases = append(cases,
				pilCase{Mode: "F", SW: rc.sw, SH: rc.sh, DW: rc.dw, DH: rc.dh, Filter: f.String()},
				pilCase{Mode: "RGB", SW: rc.sw, SH: rc.sh, DW: rc.dw, DH: rc.dh, Filter: f.String()})
			srcs = append(srcs, raw, rgb)
			in = append(in, inputs{f: plane}, inputs{rgb: rgb})
		}
	}
	want := runPIL(t, cases, srcs)
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s_%dx%d_to_%dx%d", c.Mode, c.Filter, resizeCases[(i/2)%len(resizeCases)].name, c.SW, c.SH, c.DW, c.DH), func(t *testing.T) {
			f := Bilinear
			if c.Filter == "bicubic" {
				f = Bicubic
			}
			if c.Mode == "F" {
				got := ResizePlane(in[i].f, c.SW, c.SH, c.DW, c.DH, f)
				if len(got)*4 != len(want[i]) {
					t.Fatalf("got %d values, Pillow %d", len(got), len(want[i])/4)
				}
				maxErr, diff := 0.0, 0
				for j, g := range got {
					w := math.Float32frombits(binary.LittleEndian.Uint32(want[i][4*j:]))
					if g != w {
						diff++
					}
					maxErr = max(maxErr, math.Abs(float64(g)-float64(w)))
				}
				if maxErr > 1e-4 {
					t.Errorf("max |ours - Pillow| = %g over %d values, want <= 1e-4", maxErr, len(got))
				}
				if diff > 0 {
					t.Logf("%d of %d values differ from Pillow's (max %g)", diff, len(got), maxErr)
				}
				return
			}
			got := ResizeRGB8(in[i].rgb, c.SW, c.SH, c.DW, c.DH, f)
			if len(got) != len(want[i]) {
				t.Fatalf("got %d bytes, Pillow %d", len(got), len(want[i]))
			}
			diff := 0
			for j := range got {
				if got[j] != want[i][j] {
					if diff < 5 {
						t.Errorf("byte %d (x=%d y=%d c=%d): got %d, Pillow %d", j, j/3%c.DW, j/3/c.DW, j%3, got[j], want[i][j])
					}
					diff++
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d bytes differ from Pillow's", diff, len(got))
			}
		})
	}
}

func TestSameSizeReturnsCopy(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6}
	got := ResizeRGB8(src, 2, 1, 2, 1, Bicubic)
	got[0] = 99
	if src[0] != 1 {
		t.Error("ResizeRGB8 to the same size returned the source, not a copy")
	}
	fs := []float32{1, 2}
	gf := ResizePlane(fs, 2, 1, 2, 1, Bicubic)
	gf[0] = 99
	if fs[0] != 1 {
		t.Error("ResizePlane to the same size returned the source, not a copy")
	}
}

func TestBadSizesPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"short_source", func() { ResizeRGB8(make([]byte, 5), 2, 1, 3, 3, Bicubic) }},
		{"zero_destination", func() { ResizePlane(make([]float32, 4), 2, 2, 0, 3, Bilinear) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.fn()
		})
	}
}

func BenchmarkResizeRGB8Bicubic512To224(b *testing.B) {
	p := testImage(512, 384, 3, 1)
	src := make([]byte, len(p))
	for i, v := range p {
		src[i] = byte(v)
	}
	for b.Loop() {
		ResizeRGB8(src, 512, 384, 224, 168, Bicubic)
	}
}
