package onednn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/onednn"
)

// BenchmarkConv3x3 times the bench-train config's first-level 3x3
// convolution: oneDNN forward + backward, each part alone, and kernels'
// im2col + GEMM functions (not kernels.CPU, which itself runs oneDNN where
// it loads) for comparison.
func BenchmarkConv3x3(b *testing.B) {
	s := kernels.ConvShape{B: 8, C: 64, H: 32, W: 32, OC: 64, K: 3, Stride: 1, Pad: 1}
	r := rand.New(rand.NewPCG(1, 2))
	nin, nw, nout := s.B*s.C*s.H*s.W, s.OC*s.C*9, s.B*s.OC*s.OH()*s.OW()
	inp, w, bias, dout := randSlice(r, nin), randSlice(r, nw), randSlice(r, s.OC), randSlice(r, nout)
	out, dinp, dw, db := make([]float32, nout), make([]float32, nin), make([]float32, nw), make([]float32, s.OC)
	pass := 2 * float64(nout) * float64(s.C*9) // FLOPs of one of forward, backward data, backward weights

	// run times step, which does passes of the three, as GFLOP/s.
	run := func(b *testing.B, passes float64, step func()) {
		for b.Loop() {
			step()
		}
		b.ReportMetric(passes*pass*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	for _, bm := range []struct {
		name   string
		passes float64
		step   func(c *onednn.Conv)
	}{
		{"onednn", 3, func(c *onednn.Conv) {
			c.Forward(out, inp, w, bias)
			c.Backward(dinp, dw, db, dout, inp, w)
		}},
		{"onednn-forward", 1, func(c *onednn.Conv) { c.Forward(out, inp, w, bias) }},
		{"onednn-backward-weights", 1, func(c *onednn.Conv) { c.Backward(nil, dw, db, dout, inp, w) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
			if err != nil {
				b.Skip(err)
			}
			defer c.Close()
			run(b, bm.passes, func() { bm.step(c) })
		})
	}
	b.Run("im2col", func(b *testing.B) {
		col := make([]float32, s.ColSize())
		run(b, 3, func() {
			kernels.Conv2DForward(out, inp, w, bias, col, s)
			kernels.Conv2DBackward(dinp, dw, db, col, dout, inp, w, s)
		})
	})
}
