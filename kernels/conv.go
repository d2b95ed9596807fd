package kernels

import "fmt"

// ConvShape describes a square-kernel 2-D convolution with zero padding, as
// nn.Conv2d(C, OC, K, stride=Stride, padding=Pad). A kernel-1 nn.Conv1d over
// (B,C,T) (GLIDE's attention qkv and proj_out) is K=1 with H=T, W=1.
type ConvShape struct {
	B, C, H, W  int // input (B,C,H,W)
	OC          int // output channels
	K           int // kernel is KxK (1 or 3 in the U-Net)
	Stride, Pad int
}

// OH and OW are the output height and width, floor((H+2*Pad-K)/Stride)+1.
func (s ConvShape) OH() int { return (s.H+2*s.Pad-s.K)/s.Stride + 1 }
func (s ConvShape) OW() int { return (s.W+2*s.Pad-s.K)/s.Stride + 1 }

// convMinCols is the GEMM width (output pixels) below which samples are
// batched into one product: at 8x8 or 4x4 a per-sample GEMM is too thin for
// OpenBLAS to run well. A variable so tests can cover every grouping.
var convMinCols = 1024

// group is how many samples share one im2col matrix and GEMM.
func (s ConvShape) group() int {
	ohw := s.OH() * s.OW()
	return max(1, min(s.B, (convMinCols+ohw-1)/ohw))
}

// direct reports whether the conv is a plain matrix product on each sample's
// input (1x1, stride 1, no padding, one sample per GEMM): no im2col copy. At
// every U-Net 1x1 shape (attention qkv/proj_out over 16 to 256 tokens, skip
// convs) the per-sample GEMMs ran 1.3-2.5x faster than grouping samples
// through an im2col copy, and as fast as or faster than oneDNN
// (BenchmarkConv1x1), so 1x1 convs are always direct.
func (s ConvShape) direct() bool {
	return s.K == 1 && s.Stride == 1 && s.Pad == 0
}

// ColSize is the scratch length (elements) Conv2DForward/Backward need: the
// im2col matrix (C*K*K, g*OH*OW) of a group of g samples, plus an (OC, g*OH*OW)
// staging matrix when g > 1. Zero for a direct 1x1 conv.
func (s ConvShape) ColSize() int {
	if s.direct() {
		return 0
	}
	g, ohw := s.group(), s.OH()*s.OW()
	n := s.C * s.K * s.K * g * ohw
	if g > 1 {
		n += s.OC * g * ohw
	}
	return n
}

func (s ConvShape) check() {
	if s.B <= 0 || s.C <= 0 || s.OC <= 0 || s.K <= 0 || s.Stride <= 0 || s.Pad < 0 || s.OH() <= 0 || s.OW() <= 0 {
		panic(fmt.Sprintf("kernels: invalid conv shape %+v", s))
	}
}

// Conv2DForward: inp is (B,C,H,W), weight is (OC,C,K,K) (PyTorch layout), bias
// is (OC) or nil, out is (B,OC,OH,OW); col is scratch of s.ColSize().
// Samples are unrolled by im2col into (C*K*K, g*OH*OW), g samples side by side,
// and multiplied by the weight viewed as (OC, C*K*K) in one GEMM per group.
func Conv2DForward[F Float](out, inp, weight, bias, col []F, s ConvShape) {
	s.check()
	ckk, ohw, chw := s.C*s.K*s.K, s.OH()*s.OW(), s.C*s.H*s.W
	if s.direct() {
		for b := 0; b < s.B; b++ {
			ob := out[b*s.OC*ohw : (b+1)*s.OC*ohw]
			var beta F
			if bias != nil {
				beta = 1
				fillRows(ob, bias, s.OC, ohw)
			}
			Gemm(false, false, s.OC, ohw, ckk, 1, weight, ckk, inp[b*chw:(b+1)*chw], ohw, beta, ob, ohw)
		}
		return
	}
	nb := s.group()
	for b0 := 0; b0 < s.B; b0 += nb {
		g := min(nb, s.B-b0)
		gc := g * ohw
		cm := col[:ckk*gc]
		im2col(cm, inp[b0*chw:(b0+g)*chw], g, s)
		if nb == 1 {
			ob := out[b0*s.OC*ohw : (b0+1)*s.OC*ohw]
			var beta F
			if bias != nil {
				beta = 1
				fillRows(ob, bias, s.OC, ohw)
			}
			Gemm(false, false, s.OC, ohw, ckk, 1, weight, ckk, cm, ohw, beta, ob, ohw)
			continue
		}
		tmp := col[ckk*nb*ohw : ckk*nb*ohw+s.OC*gc]
		Gemm(false, false, s.OC, gc, ckk, 1, weight, ckk, cm, gc, 0, tmp, gc)
		// (OC, g*OHW) -> (g, OC, OHW), adding the bias on the way.
		parallelFor(g*s.OC, grainFor(ohw), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				i, oc := r/s.OC, r%s.OC
				var bv F
				if bias != nil {
					bv = bias[oc]
				}
				dst := out[((b0+i)*s.OC+oc)*ohw : ((b0+i)*s.OC+oc+1)*ohw]
				for p, v := range tmp[oc*gc+i*ohw : oc*gc+(i+1)*ohw] {
					dst[p] = v + bv
				}
			}
		})
	}
}

// Conv2DBackward accumulates (+=) into dinp (B,C,H,W), dweight (OC,C,K,K) and
// dbias (OC) from dout (B,OC,OH,OW). dinp or dbias may be nil when not needed
// (e.g. the first conv of a network). col is scratch of s.ColSize(); the im2col
// matrix is recomputed rather than kept from the forward pass.
func Conv2DBackward[F Float](dinp, dweight, dbias, col, dout, inp, weight []F, s ConvShape) {
	s.check()
	ckk, ohw, chw := s.C*s.K*s.K, s.OH()*s.OW(), s.C*s.H*s.W
	if dbias != nil {
		sumRowsInto(dbias, dout, s.B, s.OC, ohw)
	}
	if s.direct() {
		for b := 0; b < s.B; b++ {
			db := dout[b*s.OC*ohw : (b+1)*s.OC*ohw]
			Gemm(false, true, s.OC, ckk, ohw, 1, db, ohw, inp[b*chw:(b+1)*chw], ohw, 1, dweight, ckk)
			if dinp != nil {
				Gemm(true, false, ckk, ohw, s.OC, 1, weight, ckk, db, ohw, 1, dinp[b*chw:(b+1)*chw], ohw)
			}
		}
		return
	}
	nb := s.group()
	for b0 := 0; b0 < s.B; b0 += nb {
		g := min(nb, s.B-b0)
		gc := g * ohw
		cm := col[:ckk*gc]
		im2col(cm, inp[b0*chw:(b0+g)*chw], g, s)
		dm := dout[b0*s.OC*ohw : (b0+1)*s.OC*ohw]
		if nb > 1 {
			// (g, OC, OHW) -> (OC, g*OHW) so the group is one matrix.
			dm = col[ckk*nb*ohw : ckk*nb*ohw+s.OC*gc]
			parallelFor(g*s.OC, grainFor(ohw), func(lo, hi int) {
				for r := lo; r < hi; r++ {
					i, oc := r/s.OC, r%s.OC
					copy(dm[oc*gc+i*ohw:oc*gc+(i+1)*ohw], dout[((b0+i)*s.OC+oc)*ohw:((b0+i)*s.OC+oc+1)*ohw])
				}
			})
		}
		// dW (OC, CKK) += dout_g (OC, g*OHW) @ col^T
		Gemm(false, true, s.OC, ckk, gc, 1, dm, gc, cm, gc, 1, dweight, ckk)
		if dinp == nil {
			continue
		}
		// dcol (CKK, g*OHW) = W^T @ dout_g, then scattered back onto the images.
		Gemm(true, false, ckk, gc, s.OC, 1, weight, ckk, dm, gc, 0, cm, gc)
		col2im(dinp[b0*chw:(b0+g)*chw], cm, g, s)
	}
}

// owRange returns the output columns [lo, hi) whose input column ow*Stride-Pad+kj
// falls inside [0, W); outside it the im2col entry is padding.
func owRange(s ConvShape, kj, ow int) (lo, hi int) {
	// smallest ow with ow*S >= Pad-kj, largest with ow*S <= W-1+Pad-kj
	num := s.Pad - kj
	if num > 0 {
		lo = (num + s.Stride - 1) / s.Stride
	}
	last := s.W - 1 + s.Pad - kj
	if last < 0 {
		return 0, 0
	}
	hi = min(ow, last/s.Stride+1)
	return min(lo, hi), hi
}

// im2col unrolls g samples x (g,C,H,W) into col (C*K*K, g*OH*OW), sample i in
// columns [i*OH*OW, (i+1)*OH*OW):
// col[(c*K+ki)*K+kj, i*OHW + oh*OW+ow] = x[i, c, oh*S-P+ki, ow*S-P+kj] (0 outside).
// Float32 runs simd.c's kd_im2col (cgo builds), the same loops in C.
func im2col[F Float](col, x []F, g int, s ConvShape) {
	oh, ow, kk := s.OH(), s.OW(), s.K*s.K
	ohw, ld, ckk := oh*ow, g*oh*ow, s.C*kk
	if c32, x32, ok := f32s(col, x); ok {
		c32, x32 = c32[:ckk*ld], x32[:g*s.C*s.H*s.W]
		parallelFor(g*ckk, grainFor(ohw), func(lo, hi int) { simdIm2col(c32, x32, g, s, lo, hi) })
		return
	}
	parallelFor(g*ckk, grainFor(ohw), func(lo, hi int) {
		for ir := lo; ir < hi; ir++ {
			i, r := ir/ckk, ir%ckk
			c, ki, kj := r/kk, r%kk/s.K, r%s.K
			plane := x[(i*s.C+c)*s.H*s.W : (i*s.C+c+1)*s.H*s.W]
			dst := col[r*ld+i*ohw : r*ld+(i+1)*ohw]
			wlo, whi := owRange(s, kj, ow)
			for y := 0; y < oh; y++ {
				row := dst[y*ow : (y+1)*ow]
				ih := y*s.Stride - s.Pad + ki
				if ih < 0 || ih >= s.H {
					clear(row)
					continue
				}
				clear(row[:wlo])
				clear(row[whi:])
				src := plane[ih*s.W:]
				if s.Stride == 1 {
					copy(row[wlo:whi], src[wlo-s.Pad+kj:])
					continue
				}
				for xo := wlo; xo < whi; xo++ {
					row[xo] = src[xo*s.Stride-s.Pad+kj]
				}
			}
		}
	})
}

// col2im is the adjoint of im2col: dx[i, c, ih, iw] += col[row, i*OHW + oh*OW+ow].
// Work is split by (sample, channel) plane so no two workers write the same
// one. Float32 runs simd.c's kd_col2im (cgo builds), the same loops in C.
func col2im[F Float](dx, col []F, g int, s ConvShape) {
	oh, ow, kk := s.OH(), s.OW(), s.K*s.K
	ohw, ld := oh*ow, g*oh*ow
	if d32, c32, ok := f32s(dx, col); ok {
		d32, c32 = d32[:g*s.C*s.H*s.W], c32[:s.C*kk*ld]
		parallelFor(g*s.C, grainFor(kk*ohw), func(lo, hi int) { simdCol2im(d32, c32, g, s, lo, hi) })
		return
	}
	parallelFor(g*s.C, grainFor(kk*ohw), func(lo, hi int) {
		for ic := lo; ic < hi; ic++ {
			i, c := ic/s.C, ic%s.C
			plane := dx[ic*s.H*s.W : (ic+1)*s.H*s.W]
			for k := 0; k < kk; k++ {
				ki, kj := k/s.K, k%s.K
				r := c*kk + k
				src := col[r*ld+i*ohw : r*ld+(i+1)*ohw]
				wlo, whi := owRange(s, kj, ow)
				for y := 0; y < oh; y++ {
					ih := y*s.Stride - s.Pad + ki
					if ih < 0 || ih >= s.H {
						continue
					}
					dst := plane[ih*s.W:]
					row := src[y*ow : (y+1)*ow]
					if s.Stride == 1 && wlo < whi {
						// Same sums as the general loop, over slices the
						// compiler can drop the bounds checks of.
						d := dst[wlo-s.Pad+kj : whi-s.Pad+kj]
						r := row[wlo:whi]
						r = r[:len(d)]
						for j, v := range r {
							d[j] += v
						}
						continue
					}
					for xo := wlo; xo < whi; xo++ {
						dst[xo*s.Stride-s.Pad+kj] += row[xo]
					}
				}
			}
		}
	})
}

// fillRows sets m (rows, n) so that row r is v[r] everywhere (bias broadcast).
func fillRows[F Float](m, v []F, rows, n int) {
	parallelFor(rows, grainFor(n), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := m[r*n : (r+1)*n]
			for i := range row {
				row[i] = v[r]
			}
		}
	})
}

// sumRowsInto does dst[r] += sum over b and i of m[b, r, i] for m (B, rows, n).
func sumRowsInto[F Float](dst, m []F, B, rows, n int) {
	parallelFor(rows, grainFor(B*n), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			var s float64
			for b := 0; b < B; b++ {
				for _, v := range m[(b*rows+r)*n : (b*rows+r+1)*n] {
					s += float64(v)
				}
			}
			dst[r] += F(s)
		}
	})
}
