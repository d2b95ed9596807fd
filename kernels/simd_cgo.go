//go:build cgo

package kernels

/*
#cgo CFLAGS: -fopenmp-simd
#cgo LDFLAGS: -lm
int kd_simd_init(int level);
void kd_silu_fwd(float *out, const float *in, long n);
void kd_silu_bwd(float *dinp, const float *dout, const float *in, long n);
void kd_gelu_fwd(float *out, const float *in, long n);
void kd_gelu_bwd(float *dinp, const float *dout, const float *in, long n);
double kd_exp_shift(float *y, long n, float m);
void kd_im2col(float *col, const float *x, const long *sh, long r0, long r1);
void kd_col2im(float *dx, const float *col, const long *sh, long p0, long p1);
void kd_adamw(float *p, const float *g, float *m, float *v, const float *c, long lo, long hi);
void kd_groupnorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      const long *sh, double eps, long bg0, long bg1);
void kd_groupnorm_bwd_params(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                             const float *rstd, const long *sh, long c0, long c1);
void kd_groupnorm_bwd_input(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                            const float *rstd, const long *sh, long bg0, long bg1);
void kd_attn_softmax(float *att, const float *scale, const float *mask, double alpha, long Nk, long rpb, long r0, long r1);
void kd_attn_softmax_bwd(float *g, const float *att, const float *scale, double alpha, long Nk, long rpb, long r0, long r1);
void kd_permute0213(float *out, const float *inp, const long *sh, long lo, long hi);
void kd_permute0213_bwd(float *dinp, const float *dout, const long *sh, long lo, long hi);
double kd_sumsq(const float *x, long lo, long hi);
void kd_add(float *out, const float *a, const float *b, long n);
void kd_acc(float *dst, const float *src, long n);
void kd_scale(float *x, float c, long n);
*/
import "C"

import "unsafe"

// simdLevel is the vector width (bits) of the float32 elementwise kernels in
// simd.c: 512 (AVX-512), 256 (AVX2+FMA) or 0 (the C baseline, still
// vectorised with SSE2 on amd64). The float32 ops use them whenever cgo is on.
var simdLevel = int(C.kd_simd_init(512))

const haveSIMD = true

// setSIMD selects the widest kernels up to level (512, 256, 0) that the CPU
// supports, or with -1 the generic Go loops, and returns the previous level;
// tests use it to cover every path.
func setSIMD(level int) (was int) {
	was = simdLevel
	if level < 0 {
		simdLevel = -1
		return was
	}
	simdLevel = int(C.kd_simd_init(C.int(level)))
	return was
}

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

func simdSiLUForward(out, in []float32) {
	if len(in) > 0 {
		C.kd_silu_fwd(fp(out[:len(in)]), fp(in), C.long(len(in)))
	}
}

func simdSiLUBackward(dinp, dout, in []float32) {
	if len(in) > 0 {
		C.kd_silu_bwd(fp(dinp[:len(in)]), fp(dout[:len(in)]), fp(in), C.long(len(in)))
	}
}

func simdGELUForward(out, in []float32) {
	if len(in) > 0 {
		C.kd_gelu_fwd(fp(out[:len(in)]), fp(in), C.long(len(in)))
	}
}

func simdGELUBackward(dinp, dout, in []float32) {
	if len(in) > 0 {
		C.kd_gelu_bwd(fp(dinp[:len(in)]), fp(dout[:len(in)]), fp(in), C.long(len(in)))
	}
}

// simdExpShift sets y[j] = exp(y[j] - m) and returns the sum; a y[j] of -Inf
// gives exactly 0.
func simdExpShift(y []float32, m float32) float64 {
	if len(y) == 0 {
		return 0
	}
	return float64(C.kd_exp_shift(fp(y), C.long(len(y)), C.float(m)))
}

// convArgs packs what kd_im2col and kd_col2im need of a conv of g samples.
func convArgs(g int, s ConvShape) *[9]C.long {
	return &[9]C.long{C.long(g), C.long(s.C), C.long(s.H), C.long(s.W), C.long(s.K),
		C.long(s.Stride), C.long(s.Pad), C.long(s.OH()), C.long(s.OW())}
}

// simdIm2col is im2col's rows [lo, hi) of g*C*K*K (see im2col).
func simdIm2col(col, x []float32, g int, s ConvShape, lo, hi int) {
	C.kd_im2col(fp(col), fp(x), &convArgs(g, s)[0], C.long(lo), C.long(hi))
}

// simdCol2im is col2im's (sample, channel) planes [lo, hi) (see col2im).
func simdCol2im(dx, col []float32, g int, s ConvShape, lo, hi int) {
	C.kd_col2im(fp(dx), fp(col), &convArgs(g, s)[0], C.long(lo), C.long(hi))
}

// simdAdamW is AdamWUpdate's loop over [lo, hi) of the full slices, with
// c = {b1, b2, decay, stepSize, bc2Sqrt, eps}.
func simdAdamW(p, g, m, v []float32, c *[6]float32, lo, hi int) {
	if hi > lo {
		C.kd_adamw(fp(p), fp(g[:len(p)]), fp(m[:len(p)]), fp(v[:len(p)]), (*C.float)(unsafe.Pointer(&c[0])), C.long(lo), C.long(hi))
	}
}

// GroupNorm over (B,C,HW) with G groups; the C kernels take {G, C/G, HW, B}.
func gnArgs(B, Cn, HW, G int) *[4]C.long {
	return &[4]C.long{C.long(G), C.long(Cn / G), C.long(HW), C.long(B)}
}

func simdGroupNormForward(out, mean, rstd, inp, w, b []float32, B, Cn, HW, G int, eps float64, lo, hi int) {
	C.kd_groupnorm_fwd(fp(out), fp(mean), fp(rstd), fp(inp), fp(w), fp(b), &gnArgs(B, Cn, HW, G)[0], C.double(eps), C.long(lo), C.long(hi))
}

func simdGroupNormBackwardParams(dw, db, dout, inp, mean, rstd []float32, B, Cn, HW, G int, lo, hi int) {
	C.kd_groupnorm_bwd_params(fp(dw), fp(db), fp(dout), fp(inp), fp(mean), fp(rstd), &gnArgs(B, Cn, HW, G)[0], C.long(lo), C.long(hi))
}

func simdGroupNormBackwardInput(dinp, dout, inp, w, mean, rstd []float32, B, Cn, HW, G int, lo, hi int) {
	C.kd_groupnorm_bwd_input(fp(dinp), fp(dout), fp(inp), fp(w), fp(mean), fp(rstd), &gnArgs(B, Cn, HW, G)[0], C.long(lo), C.long(hi))
}

// fpOrNil is fp, or NULL for a nil slice.
func fpOrNil(s []float32) *C.float {
	if s == nil {
		return nil
	}
	return fp(s)
}

// simdAttnSoftmax is AttentionForward's softmax over rows [lo, hi) of att
// (rows, nk), in place; rpb rows share one batch entry of scale and mask.
func simdAttnSoftmax(att, scale, mask []float32, alpha float64, nk, rpb, lo, hi int) {
	C.kd_attn_softmax(fp(att), fpOrNil(scale), fpOrNil(mask), C.double(alpha), C.long(nk), C.long(rpb), C.long(lo), C.long(hi))
}

// simdAttnSoftmaxBackward is AttentionBackward's softmax backward over rows
// [lo, hi), in place on g.
func simdAttnSoftmaxBackward(g, att, scale []float32, alpha float64, nk, rpb, lo, hi int) {
	C.kd_attn_softmax_bwd(fp(g), fp(att), fpOrNil(scale), C.double(alpha), C.long(nk), C.long(rpb), C.long(lo), C.long(hi))
}

func dims4(A, B, Cn, D int) *[4]C.long {
	return &[4]C.long{C.long(A), C.long(B), C.long(Cn), C.long(D)}
}

func simdPermute0213(out, inp []float32, A, B, Cn, D, lo, hi int) {
	C.kd_permute0213(fp(out), fp(inp), &dims4(A, B, Cn, D)[0], C.long(lo), C.long(hi))
}

func simdPermute0213Backward(dinp, dout []float32, A, B, Cn, D, lo, hi int) {
	C.kd_permute0213_bwd(fp(dinp), fp(dout), &dims4(A, B, Cn, D)[0], C.long(lo), C.long(hi))
}

// simdSumSq is the float64 sum of x[i]^2 over [lo, hi).
func simdSumSq(x []float32, lo, hi int) float64 {
	if hi <= lo {
		return 0
	}
	return float64(C.kd_sumsq(fp(x), C.long(lo), C.long(hi)))
}

func simdAdd(out, a, b []float32) {
	if len(a) > 0 {
		C.kd_add(fp(out[:len(a)]), fp(a), fp(b[:len(a)]), C.long(len(a)))
	}
}

func simdAccumulate(dst, src []float32) {
	if len(src) > 0 {
		C.kd_acc(fp(dst[:len(src)]), fp(src), C.long(len(src)))
	}
}

func simdScale(x []float32, c float32) {
	if len(x) > 0 {
		C.kd_scale(fp(x), C.float(c), C.long(len(x)))
	}
}
