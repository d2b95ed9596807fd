package kernels

import "math"

// GroupNormForward: inp and out are (B,C,HW) (any spatial size flattened),
// weight and bias are (C), mean and rstd are (B,G) and receive the group
// statistics the backward pass needs. C must be divisible by G. Statistics are
// accumulated in float64 and use the biased variance, as nn.GroupNorm does.
// GLIDE's normalization(ch, swish=1.0) is this followed by SiLUForward.
//
// Float32 runs the same computation in C (simd.c) when built with cgo.
func GroupNormForward[F Float](out, mean, rstd, inp, weight, bias []F, B, C, HW, G int, eps float64) {
	cg := C / G
	n := cg * HW
	if o, x, ok := f32s(out, inp); ok {
		o, x = o[:B*C*HW], x[:B*C*HW]
		m, rs, w, b := any(mean).([]float32)[:B*G], any(rstd).([]float32)[:B*G], any(weight).([]float32)[:C], any(bias).([]float32)[:C]
		parallelFor(B*G, grainFor(3*n), func(lo, hi int) { simdGroupNormForward(o, m, rs, x, w, b, B, C, HW, G, eps, lo, hi) })
		return
	}
	parallelFor(B*G, grainFor(3*n), func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			x := inp[bg*n : (bg+1)*n]
			m, rs := meanRstd(x, eps)
			mean[bg], rstd[bg] = F(m), F(rs)
			y := out[bg*n : (bg+1)*n]
			c0 := (bg % G) * cg
			for ci := 0; ci < cg; ci++ {
				// fold the affine into one multiply-add per element
				a := F(rs) * weight[c0+ci]
				b := bias[c0+ci] - F(m)*a
				xs, ys := x[ci*HW:(ci+1)*HW], y[ci*HW:(ci+1)*HW]
				for i, v := range xs {
					ys[i] = v*a + b
				}
			}
		}
	})
}

// meanRstd returns the mean and 1/sqrt(var+eps) of x (two passes, float64).
func meanRstd[F Float](x []F, eps float64) (float64, float64) {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	m := s / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - m
		ss += d * d
	}
	return m, 1 / math.Sqrt(ss/float64(len(x))+eps)
}

// GroupNormBackward accumulates (+=) into dinp (B,C,HW), dweight and dbias (C)
// from dout, using the mean and rstd saved by GroupNormForward. dinp may be nil.
func GroupNormBackward[F Float](dinp, dweight, dbias, dout, inp, weight, mean, rstd []F, B, C, HW, G int) {
	cg := C / G
	n := cg * HW
	if dy, x, ok := f32s(dout, inp); ok { // the same computation in C (simd.c)
		dy, x = dy[:B*C*HW], x[:B*C*HW]
		m, rs := any(mean).([]float32)[:B*G], any(rstd).([]float32)[:B*G]
		dw, db := any(dweight).([]float32)[:C], any(dbias).([]float32)[:C]
		parallelFor(C, grainFor(2*B*HW), func(lo, hi int) { simdGroupNormBackwardParams(dw, db, dy, x, m, rs, B, C, HW, G, lo, hi) })
		if dinp != nil {
			dx, w := any(dinp).([]float32)[:B*C*HW], any(weight).([]float32)[:C]
			parallelFor(B*G, grainFor(4*n), func(lo, hi int) { simdGroupNormBackwardInput(dx, dy, x, w, m, rs, B, C, HW, G, lo, hi) })
		}
		return
	}
	// Parameter grads per channel: sum over batch and space. Split by channel so
	// workers never share an output.
	parallelFor(C, grainFor(2*B*HW), func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var dw, db float64
			for b := 0; b < B; b++ {
				bg := b*G + c/cg
				m, rs := float64(mean[bg]), float64(rstd[bg])
				off := (b*C + c) * HW
				for i, g := range dout[off : off+HW] {
					dw += float64(g) * (float64(inp[off+i]) - m) * rs
					db += float64(g)
				}
			}
			dweight[c] += F(dw)
			dbias[c] += F(db)
		}
	})
	if dinp == nil {
		return
	}
	// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat*xhat)), dxhat = dout*w.
	parallelFor(B*G, grainFor(4*n), func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			m, rs := float64(mean[bg]), float64(rstd[bg])
			c0 := (bg % G) * cg
			x, dy, dx := inp[bg*n:(bg+1)*n], dout[bg*n:(bg+1)*n], dinp[bg*n:(bg+1)*n]
			var sdx, sdxx float64
			for i := range x {
				d := float64(dy[i]) * float64(weight[c0+i/HW])
				sdx += d
				sdxx += d * (float64(x[i]) - m) * rs
			}
			sdx /= float64(n)
			sdxx /= float64(n)
			for i := range x {
				xhat := (float64(x[i]) - m) * rs
				d := float64(dy[i]) * float64(weight[c0+i/HW])
				dx[i] += F(rs * (d - sdx - xhat*sdxx))
			}
		}
	})
}

// LayerNormForward: inp and out are (N,C) (N = B*T rows), weight and bias are
// (C), mean and rstd are (N) and receive the row statistics for backward.
func LayerNormForward[F Float](out, mean, rstd, inp, weight, bias []F, N, C int, eps float64) {
	parallelFor(N, grainFor(3*C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			x := inp[r*C : (r+1)*C]
			m, rs := meanRstd(x, eps)
			mean[r], rstd[r] = F(m), F(rs)
			y := out[r*C : (r+1)*C]
			for i, v := range x {
				y[i] = F((float64(v)-m)*rs)*weight[i] + bias[i]
			}
		}
	})
}

// LayerNormBackward accumulates (+=) into dinp (N,C), dweight and dbias (C)
// from dout, using the mean and rstd saved by LayerNormForward.
func LayerNormBackward[F Float](dinp, dweight, dbias, dout, inp, weight, mean, rstd []F, N, C int) {
	parallelFor(C, grainFor(2*N), func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var dw, db float64
			for r := 0; r < N; r++ {
				g := float64(dout[r*C+c])
				dw += g * (float64(inp[r*C+c]) - float64(mean[r])) * float64(rstd[r])
				db += g
			}
			dweight[c] += F(dw)
			dbias[c] += F(db)
		}
	})
	if dinp == nil {
		return
	}
	parallelFor(N, grainFor(4*C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			m, rs := float64(mean[r]), float64(rstd[r])
			x, dy, dx := inp[r*C:(r+1)*C], dout[r*C:(r+1)*C], dinp[r*C:(r+1)*C]
			var sdx, sdxx float64
			for i := range x {
				d := float64(dy[i]) * float64(weight[i])
				sdx += d
				sdxx += d * (float64(x[i]) - m) * rs
			}
			sdx /= float64(C)
			sdxx /= float64(C)
			for i := range x {
				d := float64(dy[i]) * float64(weight[i])
				dx[i] += F(rs * (d - sdx - (float64(x[i])-m)*rs*sdxx))
			}
		}
	})
}
