package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks at the sizes of the target U-Net (model channels 64, batch 8,
// 32x32 latents, 64 text tokens); they report GFLOP/s of the GEMM work.

func BenchmarkConv3x3(b *testing.B) {
	for _, s := range []ConvShape{
		{B: 8, C: 64, H: 32, W: 32, OC: 64, K: 3, Stride: 1, Pad: 1},
		{B: 8, C: 128, H: 16, W: 16, OC: 128, K: 3, Stride: 1, Pad: 1},
		{B: 8, C: 256, H: 8, W: 8, OC: 256, K: 3, Stride: 1, Pad: 1},
		{B: 8, C: 256, H: 4, W: 4, OC: 256, K: 3, Stride: 1, Pad: 1},
	} {
		b.Run(fmt.Sprintf("C%d_%dx%d", s.C, s.H, s.W), func(b *testing.B) { benchConv(b, s) })
	}
}

func benchConv(b *testing.B, s ConvShape) {
	rng := rand.New(rand.NewPCG(1, 2))
	inp, w, bias := randSlice32(rng, s.B*s.C*s.H*s.W), randSlice32(rng, s.OC*s.C*s.K*s.K), randSlice32(rng, s.OC)
	out := make([]float32, s.B*s.OC*s.OH()*s.OW())
	var cpu CPU
	flops := 2 * float64(s.B*s.OC*s.OH()*s.OW()*s.C*s.K*s.K)
	b.Run("forward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cpu.Conv2DForward(out, inp, w, bias, s)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	dinp, dw, db := make([]float32, len(inp)), make([]float32, len(w)), make([]float32, len(bias))
	b.Run("backward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cpu.Conv2DBackward(dinp, dw, db, out, inp, w, s)
		}
		b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

func BenchmarkAttention(b *testing.B) {
	s := AttentionShape{B: 8, NH: 2, Nq: 256, Nk: 256 + 64, D: 64}
	rng := rand.New(rand.NewPCG(1, 2))
	q, k, v := randSlice32(rng, s.B*s.NH*s.Nq*s.D), randSlice32(rng, s.B*s.NH*s.Nk*s.D), randSlice32(rng, s.B*s.NH*s.Nk*s.D)
	att, scratch := make([]float32, s.B*s.NH*s.Nq*s.Nk), make([]float32, s.B*s.NH*s.Nq*s.Nk)
	out := make([]float32, len(q))
	dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	flops := 4 * float64(s.B*s.NH*s.Nq*s.Nk*s.D)
	var cpu CPU
	b.Run("forward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cpu.AttentionForward(out, att, q, k, v, nil, nil, s)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("backward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cpu.AttentionBackward(dq, dk, dv, scratch, out, att, q, k, v, nil, s)
		}
		b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

func BenchmarkSoftmax(b *testing.B) {
	N, C := 8*2*256, 320
	rng := rand.New(rand.NewPCG(1, 2))
	inp, out := randSlice32(rng, N*C), make([]float32, N*C)
	for i := 0; i < b.N; i++ {
		SoftmaxForward(out, inp, N, C)
	}
}

// BenchmarkConv3x3LowRes compares one GEMM per sample with the grouped im2col
// at the U-Net's lowest resolution.
func BenchmarkConv3x3LowRes(b *testing.B) {
	s := ConvShape{B: 8, C: 256, H: 4, W: 4, OC: 256, K: 3, Stride: 1, Pad: 1}
	rng := rand.New(rand.NewPCG(1, 2))
	inp, w := randSlice32(rng, s.B*s.C*s.H*s.W), randSlice32(rng, s.OC*s.C*9)
	out := make([]float32, s.B*s.OC*s.OH()*s.OW())
	flops := 2 * float64(s.B*s.OC*s.OH()*s.OW()*s.C*9)
	def := convMinCols
	defer func() { convMinCols = def }()
	for _, cols := range []int{1, def} {
		b.Run("min_cols="+itoa(cols), func(b *testing.B) {
			convMinCols = cols
			var cpu CPU
			for i := 0; i < b.N; i++ {
				cpu.Conv2DForward(out, inp, w, nil, s)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkConv1x1 compares, at the U-Net's kernel-1 shapes (attention qkv and
// proj_out as (T,1) images, ResBlock skip convs), CPU's convolution (oneDNN
// where it loads) with the GEMM path.
func BenchmarkConv1x1(b *testing.B) {
	for _, s := range []ConvShape{
		{B: 8, C: 128, H: 256, W: 1, OC: 384, K: 1, Stride: 1},
		{B: 8, C: 128, H: 256, W: 1, OC: 128, K: 1, Stride: 1},
		{B: 8, C: 192, H: 64, W: 1, OC: 576, K: 1, Stride: 1},
		{B: 8, C: 256, H: 16, W: 1, OC: 768, K: 1, Stride: 1},
		{B: 8, C: 192, H: 32, W: 32, OC: 64, K: 1, Stride: 1},
		{B: 8, C: 384, H: 8, W: 8, OC: 192, K: 1, Stride: 1},
	} {
		b.Run(fmt.Sprintf("C%d_OC%d_%dx%d/cpu", s.C, s.OC, s.H, s.W), func(b *testing.B) { benchConv(b, s) })
		b.Run(fmt.Sprintf("C%d_OC%d_%dx%d/gemm", s.C, s.OC, s.H, s.W), func(b *testing.B) { benchConvGEMM(b, s) })
	}
}

func benchConvGEMM(b *testing.B, s ConvShape) {
	rng := rand.New(rand.NewPCG(1, 2))
	inp, w, bias := randSlice32(rng, s.B*s.C*s.H*s.W), randSlice32(rng, s.OC*s.C*s.K*s.K), randSlice32(rng, s.OC)
	out := make([]float32, s.B*s.OC*s.OH()*s.OW())
	col := make([]float32, s.ColSize())
	flops := 2 * float64(s.B*s.OC*s.OH()*s.OW()*s.C*s.K*s.K)
	b.Run("forward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Conv2DForward(out, inp, w, bias, col, s)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	dinp, dw, db := make([]float32, len(inp)), make([]float32, len(w)), make([]float32, len(bias))
	b.Run("backward", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Conv2DBackward(dinp, dw, db, col, out, inp, w, s)
		}
		b.ReportMetric(2*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
