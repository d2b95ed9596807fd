package detect

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/synth"
)

// BenchmarkStage measures the detector stage (RGB conversion, letterbox,
// batched run, decoding, NMS) next to a bare onnxruntime loop over the same
// preprocessed batches; compare images/s of the two.
func BenchmarkStage(b *testing.B) {
	needRuntime(b)
	d, err := Open(modelFile(YOLOv8), fixtureConfig(YOLOv8), onnx.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	n := d.MaxBatch()
	imgs := make([]image.Image, n)
	for k := range imgs {
		imgs[k], _ = synth.Render(rand.New(rand.NewPCG(5, uint64(k))), synth.Options{Width: 256, Height: 256, Photo: true})
	}
	p := d.Config().Preprocess
	plane := 3 * p.Width * p.Height
	buf := make([]float32, n*plane)
	for k, img := range imgs {
		p.Fill(ToRGB(img, nil), buf[k*plane:(k+1)*plane])
	}
	shape := []int64{int64(n), 3, int64(p.Height), int64(p.Width)}
	b.Run("bare_loop", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := d.Session().Run(onnx.Float32("", shape, buf)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
	})
	b.Run("stage", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := d.Detect(imgs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
	})
}

// BenchmarkFinish times the per-image post-processing of the fixture's
// 128x128 output (decoding 336 anchors, NMS, mapping boxes back), from one
// recorded run.
func BenchmarkFinish(b *testing.B) {
	needRuntime(b)
	cfg := fixtureConfig(YOLOv8)
	d, err := Open(modelFile(YOLOv8), cfg, onnx.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	p := d.Config().Preprocess
	img, _ := synth.Render(rand.New(rand.NewPCG(5, 1)), synth.Options{Width: p.Width, Height: p.Height, Photo: true})
	buf := make([]float32, 3*p.Width*p.Height)
	lb, _ := p.Fill(ToRGB(img, nil), buf)
	outs, err := d.Session().Run(onnx.Float32("", []int64{1, 3, int64(p.Height), int64(p.Width)}, buf))
	if err != nil {
		b.Fatal(err)
	}
	A, C, err := d.outputDims(outs[0].Shape, 1)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.finish(outs[0].Float32s(), A, C, lb); err != nil {
			b.Fatal(err)
		}
	}
}
