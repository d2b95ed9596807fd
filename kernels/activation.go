package kernels

import "math"

// elementwise runs f over i in [0, n) in parallel chunks.
func elementwise(n int, f func(lo, hi int)) { parallelFor(n, grainFor(8), f) }

// SiLUForward: out[i] = x * sigmoid(x) over n elements (nn.SiLU).
// Float32 runs the vectorised C kernels of simd.c when built with cgo; the
// loops below are the reference, the float64 path and the CGO_ENABLED=0 path.
func SiLUForward[F Float](out, inp []F, n int) {
	if o, in, ok := f32s(out, inp); ok {
		elementwise(n, func(lo, hi int) { simdSiLUForward(o[lo:hi], in[lo:hi]) })
		return
	}
	f32 := isFloat32[F]()
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			out[i] = F(x / (1 + expOf(f32, -x)))
		}
	})
}

// SiLUBackward: dinp += dout * sig(x) * (1 + x*(1-sig(x))).
func SiLUBackward[F Float](dinp, dout, inp []F, n int) {
	if dx, in, ok := f32s(dinp, inp); ok {
		dy := any(dout).([]float32)
		elementwise(n, func(lo, hi int) { simdSiLUBackward(dx[lo:hi], dy[lo:hi], in[lo:hi]) })
		return
	}
	f32 := isFloat32[F]()
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			s := 1 / (1 + expOf(f32, -x))
			dinp[i] += F(float64(dout[i]) * s * (1 + x*(1-s)))
		}
	})
}

// GELUForward is the exact erf GELU, x * Phi(x), which nn.GELU() computes by
// default (approximate='none'); GLIDE's text transformer (xf.py MLP) uses it.
func GELUForward[F Float](out, inp []F, n int) {
	if o, in, ok := f32s(out, inp); ok {
		elementwise(n, func(lo, hi int) { simdGELUForward(o[lo:hi], in[lo:hi]) })
		return
	}
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			out[i] = F(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
		}
	})
}

// GELUBackward: dinp += dout * (Phi(x) + x*phi(x)).
func GELUBackward[F Float](dinp, dout, inp []F, n int) {
	if dx, in, ok := f32s(dinp, inp); ok {
		dy := any(dout).([]float32)
		elementwise(n, func(lo, hi int) { simdGELUBackward(dx[lo:hi], dy[lo:hi], in[lo:hi]) })
		return
	}
	const invSqrt2Pi = 0.3989422804014327
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(inp[i])
			cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
			pdf := invSqrt2Pi * math.Exp(-0.5*x*x)
			dinp[i] += F(float64(dout[i]) * (cdf + x*pdf))
		}
	})
}

// f32s returns a and b as []float32 when F is float32 and the SIMD kernels
// are available (cgo), for the ops that hand float32 work to simd.c.
func f32s[F Float](a, b []F) ([]float32, []float32, bool) {
	if simdLevel < 0 {
		return nil, nil, false
	}
	x, ok := any(a).([]float32)
	if !ok {
		return nil, nil, false
	}
	return x, any(b).([]float32), true
}

// dropoutKeep decides element i's fate from (seed, i) alone: a counter-based
// hash (splitmix64 finaliser), so the mask needs no storage, backward can
// regenerate it, results do not depend on the thread split, and a resumed run
// with the same seeds is bit-identical. A CUDA twin computes the same hash.
func dropoutKeep(seed uint64, i int, p float64) bool {
	z := seed + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11)*(1.0/(1<<53)) >= p
}

// DropoutForward: out[i] = inp[i]/(1-p) where kept, 0 where dropped, each of
// the n elements dropped with probability p. The mask is a pure function of
// (seed, i): use a fresh seed per call and step (e.g. hash of step and layer).
func DropoutForward[F Float](out, inp []F, n int, p float64, seed uint64) {
	if p <= 0 {
		copy(out[:n], inp[:n])
		return
	}
	scale := F(1 / (1 - p))
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if dropoutKeep(seed, i, p) {
				out[i] = inp[i] * scale
			} else {
				out[i] = 0
			}
		}
	})
}

// DropoutBackward: dinp += dout * mask/(1-p), with the mask regenerated from the
// same (seed, p) the forward used.
func DropoutBackward[F Float](dinp, dout []F, n int, p float64, seed uint64) {
	scale := F(1 / (1 - p))
	if p <= 0 {
		scale = 1
	}
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if p <= 0 || dropoutKeep(seed, i, p) {
				dinp[i] += dout[i] * scale
			}
		}
	})
}

// SoftmaxForward: inp and out are (N,C); softmax over the last axis, computed
// stably (max subtracted) with float64 sums.
func SoftmaxForward[F Float](out, inp []F, N, C int) {
	parallelFor(N, grainFor(4*C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(out[r*C:(r+1)*C], inp[r*C:(r+1)*C], nil, nil, 1)
		}
	})
}

// softmaxRow writes softmax(alpha * scale[j] * x[j]) into y (y may alias x),
// with keys j where mask[j] == 0 given probability exactly 0. scale and mask
// may be nil (all 1). A row whose keys are all masked becomes all zeros
// (PyTorch would give NaN).
func softmaxRow[F Float](y, x, scale, mask []F, alpha float64) {
	y = y[:len(x)]
	maxv := math.Inf(-1)
	for j, v := range x { // logits into y, and their max
		if mask != nil && mask[j] == 0 {
			y[j] = 0
			continue
		}
		l := alpha * float64(v)
		if scale != nil {
			l *= float64(scale[j])
		}
		y[j] = F(l)
		maxv = max(maxv, float64(y[j]))
	}
	if math.IsInf(maxv, -1) {
		clear(y)
		return
	}
	if y32, _, ok := f32s(y, y); ok {
		if mask != nil {
			for j := range y32 {
				if mask[j] == 0 {
					y32[j] = float32(math.Inf(-1)) // exp gives exactly 0
				}
			}
		}
		inv := float32(1 / simdExpShift(y32, float32(maxv)))
		for j := range y32 {
			y32[j] *= inv
		}
		return
	}
	f32 := isFloat32[F]()
	var sum float64
	for j, l := range y {
		if mask != nil && mask[j] == 0 {
			continue
		}
		e := expOf(f32, float64(l)-maxv)
		y[j] = F(e)
		sum += e
	}
	inv := F(1 / sum)
	for j := range y {
		y[j] *= inv
	}
}

// SoftmaxBackward: dinp += out * (dout - sum_j dout_j*out_j), per row of (N,C).
func SoftmaxBackward[F Float](dinp, dout, out []F, N, C int) {
	parallelFor(N, grainFor(3*C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			y, dy, dx := out[r*C:(r+1)*C], dout[r*C:(r+1)*C], dinp[r*C:(r+1)*C]
			var dot float64
			for j := range y {
				dot += float64(y[j]) * float64(dy[j])
			}
			for j := range y {
				dx[j] += F(float64(y[j]) * (float64(dy[j]) - dot))
			}
		}
	})
}
