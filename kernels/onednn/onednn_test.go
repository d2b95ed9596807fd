package onednn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/onednn"
)

// relErr is ||a - b|| / ||b||.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / max(den, 1e-30))
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestConvMatchesIm2col checks oneDNN's results against kernels' own
// im2col + GEMM convolution (itself tested against PyTorch) on the shapes
// the U-Net uses: 3x3 stride 1 and 2, 1x1, odd sizes, attention's K=1 over
// (B, C, T, 1), with and without bias and input gradient, accumulating into
// non-zero gradients.
func TestConvMatchesIm2col(t *testing.T) {
	if err := onednn.Load(); err != nil {
		t.Skipf("%v", err)
	}
	t.Logf("%s", onednn.Version())
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range []kernels.ConvShape{
		{B: 2, C: 8, H: 16, W: 16, OC: 16, K: 3, Stride: 1, Pad: 1},
		{B: 3, C: 5, H: 9, W: 7, OC: 6, K: 3, Stride: 1, Pad: 1},
		{B: 2, C: 16, H: 16, W: 16, OC: 16, K: 3, Stride: 2, Pad: 1},
		{B: 2, C: 4, H: 9, W: 9, OC: 8, K: 3, Stride: 2, Pad: 1},
		{B: 2, C: 32, H: 8, W: 8, OC: 64, K: 1, Stride: 1, Pad: 0},
		{B: 4, C: 64, H: 80, W: 1, OC: 192, K: 1, Stride: 1, Pad: 0},
		{B: 8, C: 4, H: 32, W: 32, OC: 64, K: 3, Stride: 1, Pad: 1},
	} {
		for _, withBias := range []bool{true, false} {
			oh, ow := s.OH(), s.OW()
			nin, nw, nout := s.B*s.C*s.H*s.W, s.OC*s.C*s.K*s.K, s.B*s.OC*oh*ow
			inp, w, dout := randSlice(r, nin), randSlice(r, nw), randSlice(r, nout)
			var bias []float32
			if withBias {
				bias = randSlice(r, s.OC)
			}
			col := make([]float32, s.ColSize())
			want := make([]float32, nout)
			kernels.Conv2DForward(want, inp, w, bias, col, s)

			c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
			if err != nil {
				t.Fatal(err)
			}
			got := randSlice(r, nout) // overwritten
			if err := c.Forward(got, inp, w, bias); err != nil {
				t.Fatal(err)
			}
			if e := relErr(got, want); e > 1e-5 {
				t.Errorf("%+v bias=%v: forward rel err %.2g", s, withBias, e)
			}

			// Gradients accumulate: start both from the same non-zero values.
			dinp0, dw0, db0 := randSlice(r, nin), randSlice(r, nw), randSlice(r, s.OC)
			wantDin, wantDw, wantDb := clone(dinp0), clone(dw0), clone(db0)
			kernels.Conv2DBackward(wantDin, wantDw, wantDb, col, dout, inp, w, s)
			gotDin, gotDw, gotDb := clone(dinp0), clone(dw0), clone(db0)
			if err := c.Backward(gotDin, gotDw, gotDb, dout, inp, w); err != nil {
				t.Fatal(err)
			}
			for _, g := range []struct {
				name      string
				got, want []float32
			}{{"dinp", gotDin, wantDin}, {"dweight", gotDw, wantDw}, {"dbias", gotDb, wantDb}} {
				if e := relErr(g.got, g.want); e > 1e-5 {
					t.Errorf("%+v: %s rel err %.2g", s, g.name, e)
				}
			}
			// Without an input gradient (a network's first conv).
			gotDw2 := clone(dw0)
			if err := c.Backward(nil, gotDw2, nil, dout, inp, w); err != nil {
				t.Fatal(err)
			}
			if e := relErr(gotDw2, wantDw); e > 1e-5 {
				t.Errorf("%+v: dweight without dinp rel err %.2g", s, e)
			}
			if withBias {
				t.Logf("%+v: %s", s, c.Impl())
			}
			c.Close()
		}
	}
}

func clone(s []float32) []float32 { return append([]float32(nil), s...) }

func TestBadShape(t *testing.T) {
	if err := onednn.Load(); err != nil {
		t.Skipf("%v", err)
	}
	if _, err := onednn.NewConv(1, 3, 2, 2, 4, 5, 1, 0); err == nil {
		t.Fatal("a 5x5 kernel over a 2x2 input without padding was accepted")
	}
}
