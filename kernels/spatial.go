package kernels

// AddForward: out = a + b over n elements (residual connections). out may alias a or b.
func AddForward[F Float](out, a, b []F, n int) {
	if o, a32, ok := f32s(out, a); ok { // simd.c
		b32 := any(b).([]float32)
		elementwise(n, func(lo, hi int) { simdAdd(o[lo:hi], a32[lo:hi], b32[lo:hi]) })
		return
	}
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = a[i] + b[i]
		}
	})
}

// Accumulate does dst += src over n elements: the backward of AddForward for
// each operand, and the way gradients of a tensor used twice are summed.
func Accumulate[F Float](dst, src []F, n int) {
	if d, s, ok := f32s(dst, src); ok { // simd.c
		elementwise(n, func(lo, hi int) { simdAccumulate(d[lo:hi], s[lo:hi]) })
		return
	}
	elementwise(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] += src[i]
		}
	})
}

// ScaleShiftForward applies a per-(sample, channel) affine to inp (B,C,HW):
//
//	out = inp * (1 + scale[b,c]) + shift[b,c]
//
// scale and shift are (B,C). With scale nil it is the plain broadcast add
// h + emb[..., None, None] of a ResBlock without use_scale_shift_norm; with
// both it is the scale-shift norm of GLIDE's ResBlock (applied after the norm).
func ScaleShiftForward[F Float](out, inp, scale, shift []F, B, C, HW int) {
	parallelFor(B*C, grainFor(HW), func(lo, hi int) {
		for bc := lo; bc < hi; bc++ {
			a := F(1)
			if scale != nil {
				a += scale[bc]
			}
			t := shift[bc]
			x, y := inp[bc*HW:(bc+1)*HW], out[bc*HW:(bc+1)*HW]
			for i, v := range x {
				y[i] = v*a + t
			}
		}
	})
}

// ScaleShiftBackward accumulates (+=) into dinp (B,C,HW), dscale and dshift
// (B,C). dinp and dscale may be nil; dscale must be nil when scale is.
func ScaleShiftBackward[F Float](dinp, dscale, dshift, dout, inp, scale []F, B, C, HW int) {
	parallelFor(B*C, grainFor(2*HW), func(lo, hi int) {
		for bc := lo; bc < hi; bc++ {
			a := F(1)
			if scale != nil {
				a += scale[bc]
			}
			dy := dout[bc*HW : (bc+1)*HW]
			var ds, dt float64
			for i, g := range dy {
				dt += float64(g)
				if dscale != nil {
					ds += float64(g) * float64(inp[bc*HW+i])
				}
			}
			dshift[bc] += F(dt)
			if dscale != nil {
				dscale[bc] += F(ds)
			}
			if dinp != nil {
				dx := dinp[bc*HW : (bc+1)*HW]
				for i, g := range dy {
					dx[i] += g * a
				}
			}
		}
	})
}

// ConcatChannelsForward: a is (B,C1,HW), b is (B,C2,HW), out is (B,C1+C2,HW)
// with a's channels first, as th.cat([h, skip], dim=1) in the U-Net decoder.
func ConcatChannelsForward[F Float](out, a, b []F, B, C1, C2, HW int) {
	n1, n2 := C1*HW, C2*HW
	parallelFor(B, grainFor(n1+n2), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o := out[i*(n1+n2) : (i+1)*(n1+n2)]
			copy(o[:n1], a[i*n1:(i+1)*n1])
			copy(o[n1:], b[i*n2:(i+1)*n2])
		}
	})
}

// ConcatChannelsBackward splits dout (B,C1+C2,HW) and accumulates (+=) into da
// (B,C1,HW) and db (B,C2,HW); either may be nil.
func ConcatChannelsBackward[F Float](da, db, dout []F, B, C1, C2, HW int) {
	n1, n2 := C1*HW, C2*HW
	parallelFor(B, grainFor(n1+n2), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := dout[i*(n1+n2) : (i+1)*(n1+n2)]
			if da != nil {
				for j, v := range g[:n1] {
					da[i*n1+j] += v
				}
			}
			if db != nil {
				for j, v := range g[n1:] {
					db[i*n2+j] += v
				}
			}
		}
	})
}

// UpsampleNearest2xForward: inp is (N,H,W) (N = B*C planes), out is (N,2H,2W),
// each input pixel copied to a 2x2 block (F.interpolate(scale_factor=2, mode="nearest")).
func UpsampleNearest2xForward[F Float](out, inp []F, N, H, W int) {
	parallelFor(N*H, grainFor(4*W), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := inp[r*W : (r+1)*W]
			o0 := out[2*r*2*W : (2*r+1)*2*W]
			for x, v := range src {
				o0[2*x], o0[2*x+1] = v, v
			}
			copy(out[(2*r+1)*2*W:(2*r+2)*2*W], o0)
		}
	})
}

// UpsampleNearest2xBackward: dinp (N,H,W) += sum of each 2x2 block of dout (N,2H,2W).
func UpsampleNearest2xBackward[F Float](dinp, dout []F, N, H, W int) {
	parallelFor(N*H, grainFor(4*W), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			g0, g1 := dout[2*r*2*W:(2*r+1)*2*W], dout[(2*r+1)*2*W:(2*r+2)*2*W]
			dst := dinp[r*W : (r+1)*W]
			for x := range dst {
				dst[x] += g0[2*x] + g0[2*x+1] + g1[2*x] + g1[2*x+1]
			}
		}
	})
}

// AvgPool2xForward: inp is (N,H,W), out is (N,H/2,W/2), the mean of each 2x2
// block (nn.AvgPool2d(2), stride 2; an odd last row/column is dropped).
func AvgPool2xForward[F Float](out, inp []F, N, H, W int) {
	oh, ow := H/2, W/2
	parallelFor(N*oh, grainFor(4*ow), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			n, y := r/oh, r%oh
			i0 := inp[(n*H+2*y)*W:]
			i1 := inp[(n*H+2*y+1)*W:]
			dst := out[r*ow : (r+1)*ow]
			for x := range dst {
				dst[x] = (i0[2*x] + i0[2*x+1] + i1[2*x] + i1[2*x+1]) * 0.25
			}
		}
	})
}

// AvgPool2xBackward: each dinp (N,H,W) pixel of a 2x2 block += dout/4.
func AvgPool2xBackward[F Float](dinp, dout []F, N, H, W int) {
	oh, ow := H/2, W/2
	parallelFor(N*oh, grainFor(4*ow), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			n, y := r/oh, r%oh
			d0 := dinp[(n*H+2*y)*W:]
			d1 := dinp[(n*H+2*y+1)*W:]
			for x, g := range dout[r*ow : (r+1)*ow] {
				g *= 0.25
				d0[2*x] += g
				d0[2*x+1] += g
				d1[2*x] += g
				d1[2*x+1] += g
			}
		}
	})
}
