package vae

import (
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/onnx"
)

const (
	encoderFixture = "testdata/model/vae_encoder.onnx"
	decoderFixture = "testdata/model/vae_decoder.onnx"
)

// refs.json, written by tools/vae/train.py.
type refs struct {
	ScalingFactor float32 `json:"scaling_factor"`
	Samples       []struct {
		Key    string    `json:"key"`
		Params []float32 `json:"latent_parameters"`
		Shape  []int     `json:"shape"`
		PSNR   float64   `json:"psnr"`
	} `json:"samples"`
}

func needRuntime(t *testing.T) {
	t.Helper()
	if err := onnx.Init(""); err != nil {
		t.Skipf("onnxruntime is not available (run task setup): %v", err)
	}
}

func loadRefs(t *testing.T) (refs, []image.Image, []string) {
	t.Helper()
	data, err := os.ReadFile("testdata/refs.json")
	if err != nil {
		t.Fatal(err)
	}
	var r refs
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	imgs := make([]image.Image, len(r.Samples))
	keys := make([]string, len(r.Samples))
	for i, s := range r.Samples {
		f, err := os.Open(filepath.Join("testdata/heldout", s.Key+".png"))
		if err != nil {
			t.Fatal(err)
		}
		imgs[i], err = png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = s.Key
	}
	return r, imgs, keys
}

func openEncoder(t *testing.T, path string, opt Options) *Encoder {
	t.Helper()
	needRuntime(t)
	opt.Session.IntraOpThreads = 1
	e, err := OpenEncoder(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// relErr is ||a - b|| / ||b||.
func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range b {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// The latent of each held-out image is PyTorch's mean times the scaling
// factor, within 1e-4 relative error.
func TestLatentsMatchPyTorch(t *testing.T) {
	r, imgs, keys := loadRefs(t)
	e := openEncoder(t, encoderFixture, Options{BatchSize: 5})
	if e.ScalingFactor() != r.ScalingFactor {
		t.Fatalf("scaling factor %v, want %v (from config.json)", e.ScalingFactor(), r.ScalingFactor)
	}
	lat := e.Encode(imgs, keys)
	worst := 0.0
	for i, s := range r.Samples {
		l := lat[i]
		if l.Err != nil {
			t.Fatalf("%s: %v", s.Key, l.Err)
		}
		c, h, w := s.Shape[0]/2, s.Shape[1], s.Shape[2]
		if l.Shape != [3]int{c, h, w} {
			t.Fatalf("%s: shape %v, want [%d %d %d]", s.Key, l.Shape, c, h, w)
		}
		want := make([]float32, c*h*w)
		for k := range want {
			want[k] = s.Params[k] * r.ScalingFactor
		}
		worst = max(worst, relErr(l.Data, want))
		// The float16 bytes hold the same latent to half precision.
		back, err := Float16Values(l.Float16())
		if err != nil || len(back) != len(want) {
			t.Fatalf("float16 bytes: %v", err)
		}
		if re := relErr(back, want); re > 1e-3 {
			t.Errorf("%s: float16 latent relative error %.2g", s.Key, re)
		}
	}
	t.Logf("worst relative error against PyTorch: %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("relative error %.3g, want <= 1e-4", worst)
	}
}

func psnr(a []float32, img image.Image) float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	var se float64
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range []uint32{r, g, bl} {
				d := float64(a[c*n+y*w+x]) - float64(v>>8)/255
				se += d * d
			}
		}
	}
	return 10 * math.Log10(1/(se/float64(3*n)))
}

// Latents decode back to the held-out images with PSNR >= 20 dB.
func TestDecodePSNR(t *testing.T) {
	r, imgs, keys := loadRefs(t)
	e := openEncoder(t, encoderFixture, Options{})
	d, err := OpenDecoder(decoderFixture, Options{BatchSize: 3, Session: onnx.SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	lat := e.Encode(imgs, keys)
	planes, err := d.DecodePlanes(lat)
	if err != nil {
		t.Fatal(err)
	}
	sum, worst := 0.0, math.Inf(1)
	for i, p := range planes {
		v := psnr(p, imgs[i])
		sum += v
		worst = min(worst, v)
		if v < 20 {
			t.Errorf("%s: PSNR %.2f dB (PyTorch %.2f), want >= 20", r.Samples[i].Key, v, r.Samples[i].PSNR)
		}
	}
	t.Logf("PSNR over %d held-out images: mean %.2f dB, worst %.2f dB", len(planes), sum/float64(len(planes)), worst)
	rgba, err := d.Decode(lat[:1])
	if err != nil || rgba[0].Bounds().Dx() != imgs[0].Bounds().Dx() {
		t.Fatalf("Decode: %v", err)
	}
	if _, err := d.DecodePlanes([]Latent{lat[0], {Data: []float32{1}, Shape: [3]int{1, 1, 1}}}); err == nil {
		t.Error("mixed latent shapes: want an error")
	}
}

// Sampling is seeded by the key: the same key gives the same latent, another
// key another one, both off the mean.
func TestSampleIsSeeded(t *testing.T) {
	_, imgs, _ := loadRefs(t)
	mean := openEncoder(t, encoderFixture, Options{}).Encode(imgs[:1], nil)[0]
	s := openEncoder(t, encoderFixture, Options{Sample: true, Seed: 7})
	a := s.Encode([]image.Image{imgs[0], imgs[0]}, []string{"k1", "k2"})
	b := s.Encode(imgs[:1], []string{"k1"})
	if a[0].Err != nil || relErr(a[0].Data, b[0].Data) != 0 {
		t.Fatalf("same key, different latents (%v)", a[0].Err)
	}
	if relErr(a[0].Data, a[1].Data) == 0 {
		t.Fatal("different keys, same latent")
	}
	if re := relErr(a[0].Data, mean.Data); re == 0 || math.IsNaN(re) || math.IsInf(re, 0) {
		t.Fatalf("sample is %.3g away from the mean (relative)", re)
	}
}

func TestEncoderRejects(t *testing.T) {
	needRuntime(t)
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "vae_encoder.onnx")
	os.WriteFile(notONNX, []byte("not a model"), 0o644)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"not_onnx", notONNX, "vae_encoder.onnx"},
		{"decoder_as_encoder", decoderFixture, `"sample"`},
		{"missing", filepath.Join(dir, "nope.onnx"), "nope.onnx"},
		{"empty_folder", t.TempDir(), "holds none of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := OpenEncoder(tc.path, Options{})
			if err == nil {
				e.Close()
				t.Fatal("OpenEncoder succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
	if d, err := OpenDecoder(encoderFixture, Options{}); err == nil {
		d.Close()
		t.Fatal("OpenDecoder(encoder): want an error")
	} else if !strings.Contains(err.Error(), "latent_sample") {
		t.Fatalf("OpenDecoder(encoder): %v", err)
	}
}

func TestBadImagesAndNaN(t *testing.T) {
	_, imgs, _ := loadRefs(t)
	e := openEncoder(t, "testdata/model", Options{})
	lat := e.Encode([]image.Image{imgs[0], image.NewRGBA(image.Rect(0, 0, 60, 64)), nil, image.NewRGBA(image.Rect(0, 0, 32, 16))}, nil)
	if lat[0].Err != nil || lat[3].Err != nil || lat[3].Shape != [3]int{4, 2, 4} {
		t.Fatalf("good rows: %v %v %v", lat[0].Err, lat[3].Err, lat[3].Shape)
	}
	if lat[1].Err == nil || !strings.Contains(lat[1].Err.Error(), "multiples of 8") || lat[2].Err == nil {
		t.Fatalf("bad rows: %v / %v", lat[1].Err, lat[2].Err)
	}
	nan := openEncoder(t, "testdata/bad/vae_encoder_nan.onnx", Options{})
	got := nan.Encode(imgs[:2], nil)
	if got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "NaN") {
		t.Fatalf("NaN encoder: %v", got[0].Err)
	}
}
