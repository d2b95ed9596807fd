package fid

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/synth"
)

// openOrSkip opens a model, skipping when onnxruntime is not installed.
func openOrSkip(t *testing.T, name string, opt ExtractorOptions) (*Extractor, error) {
	t.Helper()
	if _, _, err := onnx.LibraryPath(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("onnxruntime: %v (run go tool task setup)", err)
	}
	return NewExtractor(filepath.Join("testdata", name), opt)
}

// testImages are images of different sizes and kinds: RGB, gray, RGBA with
// transparent pixels, and a sub-image whose bounds do not start at 0.
func testImages() []image.Image {
	r := rand.New(rand.NewPCG(3, 4))
	rgba := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(r.IntN(256))
	}
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = 255
	}
	gray := image.NewGray(image.Rect(0, 0, 97, 131))
	for y := 0; y < 131; y++ {
		for x := 0; x < 97; x++ {
			gray.SetGray(x, y, color.Gray{uint8((x*3 + y*5) % 256)})
		}
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			nrgba.SetNRGBA(x, y, color.NRGBA{uint8(4 * x), uint8(4 * y), 200, uint8((x + y) * 2)})
		}
	}
	shapes, _ := synth.Render(rand.New(rand.NewPCG(1, 0)), synth.Options{Width: 500, Height: 300})
	sub := shapes.SubImage(image.Rect(37, 20, 437, 280))
	return []image.Image{rgba, gray, nrgba, sub, shapes}
}

// TestFeaturesMatchPyTorch runs tiny_inception.onnx on images of several sizes
// and modes and compares with tools/eval/fid_features_ref.py: PIL's
// convert("RGB") and F-mode bicubic resize, then the same module in PyTorch.
func TestFeaturesMatchPyTorch(t *testing.T) {
	py := pyref.Torch(t, "PIL")
	e, err := openOrSkip(t, "tiny_inception.onnx", ExtractorOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Size() != 299 || e.Dim() != 2048 {
		t.Fatalf("size %d dim %d, want 299 and 2048", e.Size(), e.Dim())
	}
	imgs := testImages()
	dir := t.TempDir()
	args := []string{filepath.Join(pyref.Root(t), "tools", "eval", "fid_features_ref.py"), filepath.Join(dir, "want.f32")}
	for i, m := range imgs {
		p := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, m); err != nil {
			t.Fatal(err)
		}
		f.Close()
		args = append(args, p)
		// Decode again, as a user's files arrive.
		f, _ = os.Open(p)
		imgs[i], err = png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("fid_features_ref.py: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "want.f32"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Features(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got)*4 != len(raw) {
		t.Fatalf("%d features, PyTorch %d", len(got), len(raw)/4)
	}
	for i := range imgs {
		worst, scale := 0.0, 0.0
		for j := 0; j < e.Dim(); j++ {
			w := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*e.Dim()+j):])))
			worst = max(worst, math.Abs(float64(got[i*e.Dim()+j])-w))
			scale = max(scale, math.Abs(w))
		}
		t.Logf("image %d (%T %v): max |ours - PyTorch| = %.3g, max |feature| = %.3g (relative %.3g)", i, imgs[i], imgs[i].Bounds().Size(), worst, scale, worst/scale)
		if worst > 1e-4*scale {
			t.Errorf("image %d: features differ from PyTorch's by %g (max feature %g): more than 1e-4 relative", i, worst, scale)
		}
	}
}

func TestExtractorRejectsModels(t *testing.T) {
	for _, tc := range []struct {
		name, model, want string
		opt               ExtractorOptions
	}{
		{"output_rank_3", "bad_output_rank.onnx", "want float32 [N D] or [N D 1 1]", ExtractorOptions{}},
		{"input_not_square", "bad_input_shape.onnx", "want float32 [N 3 S S]", ExtractorOptions{}},
		{"not_onnx", "../doc.go", "fid:", ExtractorOptions{}},
		{"missing_file", "nonexistent.onnx", "fid:", ExtractorOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := openOrSkip(t, tc.model, tc.opt)
			if err == nil {
				e.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestFeaturesBadInput(t *testing.T) {
	e, err := openOrSkip(t, "tiny_inception.onnx", ExtractorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, tc := range []struct {
		name string
		imgs []image.Image
		want string
	}{
		{"empty_set", nil, "no images"},
		{"undecoded_image", []image.Image{image.NewGray(image.Rect(0, 0, 4, 4)), nil}, "image 1 is missing"},
		{"empty_image", []image.Image{image.NewGray(image.Rect(0, 0, 0, 4))}, "image 0 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Features(tc.imgs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	f, err := e.Features([]image.Image{image.NewGray(image.Rect(0, 0, 8, 8))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ComputeStats(f, 1, e.Dim()); err == nil || !strings.Contains(err.Error(), "need at least 2 images") {
		t.Errorf("ComputeStats of one image: %v, want an error saying 2 images are needed", err)
	}
}

func TestComputeStatsRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      []float32
		n, dim int
		want   string
	}{
		{"no_images", nil, 0, 4, "need at least 2 images"},
		{"one_image", []float32{1, 2}, 1, 2, "need at least 2 images"},
		{"nan_feature", []float32{1, float32(math.NaN()), 2, 3}, 2, 2, "non-finite"},
		{"wrong_length", []float32{1, 2, 3}, 2, 2, "want 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ComputeStats(tc.f, tc.n, tc.dim); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestShapesFeaturesSeeShapes opens the toy reproduction's feature network
// and checks that rendered shapes and blank images give different features.
func TestShapesFeaturesSeeShapes(t *testing.T) {
	e, err := openOrSkip(t, "shapes_features.onnx", ExtractorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Size() != 128 {
		t.Fatalf("input side %d, want 128", e.Size())
	}
	var imgs []image.Image
	for k := uint64(0); k < 4; k++ {
		m, _ := synth.Render(rand.New(rand.NewPCG(1, k)), synth.Options{Width: 128, Height: 128})
		imgs = append(imgs, m)
	}
	for _, v := range []uint8{0, 128, 255, 200} {
		g := image.NewGray(image.Rect(0, 0, 128, 128))
		for i := range g.Pix {
			g.Pix[i] = v
		}
		imgs = append(imgs, g)
	}
	f, err := e.Features(imgs)
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := ComputeStats(f[:4*e.Dim()], 4, e.Dim())
	if err != nil {
		t.Fatal(err)
	}
	blank, err := ComputeStats(f[4*e.Dim():], 4, e.Dim())
	if err != nil {
		t.Fatal(err)
	}
	d := 0.0
	for j := range shapes.Mu {
		d += (shapes.Mu[j] - blank.Mu[j]) * (shapes.Mu[j] - blank.Mu[j])
	}
	t.Logf("D = %d; |mu_shapes - mu_blank|^2 = %.4g", e.Dim(), d)
	if d < 1e-3 {
		t.Errorf("mean features of shapes and blank images are %g apart: the network does not see the shapes", d)
	}
}
