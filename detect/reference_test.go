package detect

import (
	"encoding/json"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/synth"
)

// reference is testdata/reference.json, written by tools/detect/train.py
// with PyTorch from the same PNG images.
type reference struct {
	InputSize int      `json:"input_size"`
	Labels    []string `json:"labels"`
	Conf      float32  `json:"conf"`
	IoU       float32  `json:"iou"`
	Images    []struct {
		File          string `json:"file"`
		Width, Height int
		Preprocess    []struct {
			Name   string     `json:"name"`
			Align  string     `json:"align"`
			BGR    bool       `json:"bgr"`
			Scale  float32    `json:"scale"`
			Mean   [3]float32 `json:"mean"`
			Std    [3]float32 `json:"std"`
			Pad    float32    `json:"pad"`
			R      float64    `json:"r"`
			Left   int        `json:"left"`
			Top    int        `json:"top"`
			Sum    float64    `json:"sum"`
			Every  int        `json:"every"`
			Sample []float32  `json:"sample"`
		} `json:"preprocess"`
		Outputs map[string]struct {
			Shape      []int64     `json:"shape"`
			Data       []float32   `json:"data"`
			Detections [][]float64 `json:"detections"` // anchor, class, score, x0, y0, x1, y1
		} `json:"outputs"`
	} `json:"images"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

func loadPNG(t testing.TB, name string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fixtureConfig is the preprocessing the fixture models were trained with.
func fixtureConfig(f Format) Config {
	c := DefaultConfig()
	c.Format = f
	c.Preprocess.Width, c.Preprocess.Height = 128, 128
	c.Labels = Shapes()
	return c
}

var formats = []Format{YOLOv8, YOLOv5, YOLOX}

func modelFile(f Format) string { return "testdata/shapes_" + string(f) + ".onnx" }

// TestReferencePreprocess compares letterbox, channel order, scale and
// mean/std with PyTorch's tensors for the same images.
func TestReferencePreprocess(t *testing.T) {
	ref := loadReference(t)
	for _, im := range ref.Images {
		rgb := ToRGB(loadPNG(t, im.File), nil)
		for _, p := range im.Preprocess {
			t.Run(im.File+"/"+p.Name, func(t *testing.T) {
				pp := Preprocess{Width: ref.InputSize, Height: ref.InputSize, BGR: p.BGR, Scale: p.Scale,
					Mean: p.Mean, Std: p.Std, Align: Align(p.Align), Pad: p.Pad}
				if p.Align == "topleft" {
					pp.Align = TopLeft
				}
				dst := make([]float32, 3*ref.InputSize*ref.InputSize)
				lb, err := pp.Fill(rgb, dst)
				if err != nil {
					t.Fatal(err)
				}
				if lb.Left != p.Left || lb.Top != p.Top || math.Abs(lb.R-p.R) > 1e-12 {
					t.Fatalf("letterbox %+v, want r %v left %d top %d", lb, p.R, p.Left, p.Top)
				}
				var maxErr float64
				for k, want := range p.Sample {
					got := dst[k*p.Every]
					maxErr = math.Max(maxErr, math.Abs(float64(got-want))/math.Max(1, math.Abs(float64(want))))
				}
				var sum float64
				for _, v := range dst {
					sum += float64(v)
				}
				t.Logf("max relative error %.2g over %d samples, sum %.6g vs %.6g", maxErr, len(p.Sample), sum, p.Sum)
				if maxErr > 1e-5 {
					t.Errorf("preprocessing differs from PyTorch: max relative error %g", maxErr)
				}
				if math.Abs(sum-p.Sum) > 1e-6*float64(len(dst))*math.Max(1, math.Abs(p.Sum)/float64(len(dst))) {
					t.Errorf("sum %v, want %v", sum, p.Sum)
				}
			})
		}
	}
}

// TestReferenceDecode decodes PyTorch's raw outputs in Go (no onnxruntime)
// and compares the final boxes with PyTorch's decoding and NMS.
func TestReferenceDecode(t *testing.T) {
	ref := loadReference(t)
	for _, im := range ref.Images {
		for _, f := range formats {
			t.Run(im.File+"/"+string(f), func(t *testing.T) {
				out := im.Outputs[string(f)]
				cfg := fixtureConfig(f)
				cfg.Conf, cfg.IoU = ref.Conf, ref.IoU
				if err := cfg.validate(); err != nil {
					t.Fatal(err)
				}
				d := &Detector{cfg: cfg, classes: len(ref.Labels), anchors: -1, zh: make([]string, len(ref.Labels))}
				A, C := int(out.Shape[0]), int(out.Shape[1])-5
				if f == YOLOv8 {
					A, C = int(out.Shape[1]), int(out.Shape[0])-4
				}
				lb := NewLetterbox(im.Width, im.Height, cfg.Preprocess)
				objs, err := d.finish(out.Data, A, C, lb)
				if err != nil {
					t.Fatal(err)
				}
				compareDetections(t, objs, out.Detections, 1e-3)
			})
		}
	}
}

func compareDetections(t *testing.T, got []Object, want [][]float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d detections, PyTorch has %d:\n got %+v\nwant %v", len(got), len(want), got, want)
	}
	var maxErr float64
	for i, w := range want {
		g := got[i]
		if g.Class != int(w[1]) {
			t.Fatalf("detection %d: class %d, want %v", i, g.Class, w[1])
		}
		for k, v := range []float32{g.Score, g.X0, g.Y0, g.X1, g.Y1} {
			maxErr = math.Max(maxErr, math.Abs(float64(v)-w[2+k]))
		}
	}
	t.Logf("%d detections, max abs error %.2g (score, px)", len(got), maxErr)
	if maxErr > tol {
		t.Errorf("max abs error %g > %g", maxErr, tol)
	}
}

func needRuntime(t testing.TB) {
	t.Helper()
	if err := onnx.Init(""); err != nil {
		t.Skipf("onnxruntime not available: %v", err)
	}
}

// TestReferenceONNX runs the exported models through onnxruntime on the Go
// side's preprocessing and compares raw outputs and final boxes with
// PyTorch.
func TestReferenceONNX(t *testing.T) {
	needRuntime(t)
	ref := loadReference(t)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			cfg := fixtureConfig(f)
			cfg.Conf, cfg.IoU = ref.Conf, ref.IoU
			d, err := Open(modelFile(f), cfg, onnx.SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var imgs []image.Image
			for _, im := range ref.Images {
				img := loadPNG(t, im.File)
				imgs = append(imgs, img)
				// Raw outputs: Go preprocessing + onnxruntime vs PyTorch.
				p := d.Config().Preprocess
				buf := make([]float32, 3*p.Width*p.Height)
				if _, err := p.Fill(ToRGB(img, nil), buf); err != nil {
					t.Fatal(err)
				}
				outs, err := d.Session().Run(onnx.Float32("images", []int64{1, 3, int64(p.Height), int64(p.Width)}, buf))
				if err != nil {
					t.Fatal(err)
				}
				want := im.Outputs[string(f)].Data
				got := outs[0].Float32s()
				if len(got) != len(want) {
					t.Fatalf("%s: %d outputs, want %d", im.File, len(got), len(want))
				}
				var maxErr float64
				for k := range want {
					maxErr = math.Max(maxErr, math.Abs(float64(got[k]-want[k]))/math.Max(1, math.Abs(float64(want[k]))))
				}
				t.Logf("%s: raw output max relative error %.2g over %d values", im.File, maxErr, len(want))
				if maxErr > 1e-3 {
					t.Errorf("%s: raw outputs differ from PyTorch by %g", im.File, maxErr)
				}
			}
			// Final boxes through the batched Detect.
			objs, err := d.Detect(imgs)
			if err != nil {
				t.Fatal(err)
			}
			for i, im := range ref.Images {
				compareDetections(t, objs[i], im.Outputs[string(f)].Detections, 0.05)
			}
		})
	}
}

// TestRecall: the fixture detector finds the shapes of held-out synthetic
// images (seeds never used in training) with recall >= 0.9 at IoU 0.5.
func TestRecall(t *testing.T) {
	needRuntime(t)
	n := 60
	if testing.Short() {
		n = 20
	}
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			d, err := Open(modelFile(f), fixtureConfig(f), onnx.SessionOptions{IntraOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var imgs []image.Image
			var scenes []synth.Scene
			for k := 0; k < n; k++ {
				opt := synth.Options{Width: 128, Height: 128, Photo: k%2 == 0}
				if k%3 == 0 {
					opt.Width, opt.Height = 192, 144
				}
				img, sc := synth.Render(rand.New(rand.NewPCG(4242, uint64(k))), opt)
				imgs = append(imgs, img)
				scenes = append(scenes, sc)
			}
			objs, err := d.Detect(imgs)
			if err != nil {
				t.Fatal(err)
			}
			hits, total, extra := 0, 0, 0
			for i, sc := range scenes {
				used := map[int]bool{}
				for _, o := range sc.Objects {
					total++
					gt := Candidate{X0: float32(o.Box[0]), Y0: float32(o.Box[1]), X1: float32(o.Box[2]), Y1: float32(o.Box[3])}
					for k, p := range objs[i] {
						if !used[k] && p.Label == o.Label && IoU(gt, Candidate{X0: p.X0, Y0: p.Y0, X1: p.X1, Y1: p.Y1}) >= 0.5 {
							used[k] = true
							hits++
							break
						}
					}
				}
				extra += len(objs[i]) - len(used)
			}
			recall := float64(hits) / float64(total)
			t.Logf("recall@0.5 %.3f (%d of %d objects), %d unmatched detections", recall, hits, total, extra)
			if recall < 0.9 {
				t.Errorf("recall %.3f < 0.9", recall)
			}
		})
	}
}
