package caption

import (
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"strings"
	"testing"
)

func TestPreprocessNormalizes(t *testing.T) {
	p, err := ParsePreprocessor([]byte(`{"do_resize": true, "size": {"height": 2, "width": 3},
		"do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
		"image_mean": [0.5, 0.4, 0.3], "image_std": [0.5, 0.25, 0.2]}`))
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range 6 {
		img.Set(i%3, i/3, color.RGBA{uint8(40 * i), 255, 0, 255})
	}
	dst := make([]float32, 18)
	if err := p.Apply(img, dst); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		want := []float64{(float64(40*i)/255 - 0.5) / 0.5, (1 - 0.4) / 0.25, (0 - 0.3) / 0.2}
		for c := range 3 {
			if got := float64(dst[c*6+i]); math.Abs(got-want[c]) > 1e-5 {
				t.Fatalf("pixel %d channel %d = %v, want %v", i, c, got, want[c])
			}
		}
	}
}

// Resizing matches PIL's BILINEAR (tools/caption/resize_ref.py) within about
// one grey level.
func TestPreprocessResizeMatchesPIL(t *testing.T) {
	data, err := os.ReadFile("testdata/resize_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Width, Height int
		Resized       []struct {
			Width, Height int
			RGB           [][3]float64
		}
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	src := image.NewRGBA(image.Rect(0, 0, ref.Width, ref.Height))
	for y := range ref.Height {
		for x := range ref.Width {
			src.Set(x, y, color.RGBA{uint8((7*x + 3*y) % 256), uint8((x * y) % 256), uint8((255 - 5*x + 256*4) % 256), 255})
		}
	}
	for _, r := range ref.Resized {
		p := &Preprocessor{Resize: true, Width: r.Width, Height: r.Height}
		dst := make([]float32, 3*r.Width*r.Height)
		if err := p.Apply(src, dst); err != nil {
			t.Fatal(err)
		}
		n := r.Width * r.Height
		worst := 0.0
		for i, px := range r.RGB {
			for c := range 3 {
				worst = max(worst, math.Abs(float64(dst[c*n+i])-px[c]))
			}
		}
		t.Logf("%dx%d: worst difference from PIL %.2f grey levels", r.Width, r.Height, worst)
		if worst > 1.5 {
			t.Errorf("%dx%d: differs from PIL by %.2f grey levels", r.Width, r.Height, worst)
		}
	}
}

func TestPreprocessorConfigs(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"defaults", `{}`, ""},
		{"shortest_edge_crop", `{"size": {"shortest_edge": 32}, "do_center_crop": true, "crop_size": 24}`, ""},
		{"bad_json", `{`, "not valid JSON"},
		{"zero_std", `{"image_std": [1, 0, 1]}`, "zero"},
		{"bad_mean", `{"image_mean": [1, 2]}`, "image_mean"},
		{"bad_size", `{"size": {"height": -1, "width": 5}}`, "size"},
		{"nearest", `{"resample": 0}`, "resample 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePreprocessor([]byte(tc.json))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				w, h := p.OutputSize(64, 48)
				dst := make([]float32, 3*w*h)
				if err := p.Apply(image.NewRGBA(image.Rect(0, 0, 64, 48)), dst); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParsePreprocessor(f *testing.F) {
	f.Add([]byte(`{"do_resize": true, "size": {"height": 4, "width": 3}, "image_mean": 0.5}`))
	f.Add([]byte(`{"size": {"shortest_edge": 5}, "do_center_crop": true, "crop_size": {"height": 3, "width": 9}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePreprocessor(data)
		if err != nil {
			return
		}
		w, h := p.OutputSize(7, 5)
		if w*h > 1<<20 {
			return
		}
		if err := p.Apply(image.NewRGBA(image.Rect(0, 0, 7, 5)), make([]float32, 3*w*h)); err != nil {
			t.Fatal(err)
		}
	})
}
