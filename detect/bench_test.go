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
