package onednn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/onednn"
)

// BenchmarkConv3x3 times forward + backward of the bench-train config's
// first-level 3x3 convolution, oneDNN next to kernels' im2col + GEMM.
func BenchmarkConv3x3(b *testing.B) {
	s := kernels.ConvShape{B: 8, C: 64, H: 32, W: 32, OC: 64, K: 3, Stride: 1, Pad: 1}
	r := rand.New(rand.NewPCG(1, 2))
	nin, nw, nout := s.B*s.C*s.H*s.W, s.OC*s.C*9, s.B*s.OC*s.OH()*s.OW()
	inp, w, bias, dout := randSlice(r, nin), randSlice(r, nw), randSlice(r, s.OC), randSlice(r, nout)
	out, dinp, dw, db := make([]float32, nout), make([]float32, nin), make([]float32, nw), make([]float32, s.OC)
	flops := 3 * 2 * float64(nout) * float64(s.C*9)
	b.Run("onednn", func(b *testing.B) {
		c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
		if err != nil {
			b.Skip(err)
		}
		defer c.Close()
		for b.Loop() {
			c.Forward(out, inp, w, bias)
			c.Backward(dinp, dw, db, dout, inp, w)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("onednn-forward", func(b *testing.B) {
		c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
		if err != nil {
			b.Skip(err)
		}
		defer c.Close()
		for b.Loop() {
			c.Forward(out, inp, w, bias)
		}
		b.ReportMetric(flops/3*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("onednn-backward-weights", func(b *testing.B) {
		c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
		if err != nil {
			b.Skip(err)
		}
		defer c.Close()
		for b.Loop() {
			c.Backward(nil, dw, db, dout, inp, w)
		}
		b.ReportMetric(flops/3*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("im2col", func(b *testing.B) {
		var cpu kernels.CPU
		for b.Loop() {
			cpu.Conv2DForward(out, inp, w, bias, s)
			cpu.Conv2DBackward(dinp, dw, db, dout, inp, w, s)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
