//go:build cgo

package caption

/*
#cgo CFLAGS: -O2
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// kd_resize_plane resamples one sw x sh plane to dw x dh: horizontally into
// tmp (dw x sh), then vertically into out. Output x sums xn[x] taps
// src[xf[x] + k] * xw[x*xk + k] from zero in tap order, each product and sum
// rounded to float (no fused multiply-add: the x86-64 baseline and the AVX2
// target below have none); rows likewise with yf, yn, yw, yk.
#if defined(__x86_64__)
// kd_tr8 transposes the 8x8 block r[0..7].
__attribute__((target("avx2"))) static inline void kd_tr8(__m256 *r) {
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
	r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
	r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
	r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
	r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
	r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
	r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
	r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// kd_horizontal_avx2 is the horizontal pass, eight rows at a time: the
// strip is transposed into cols (8*sw floats: column c's eight values at
// cols[8c]), each output column is summed as one vector over the eight rows,
// into outs (8*dw floats), which is transposed back into tmp. Leftover rows
// go through the scalar loop.
__attribute__((target("avx2"))) static int kd_horizontal_avx2(const float *src, int sw, int sh, int dw,
		const int32_t *xf, const int32_t *xn, const float *xw, int xk, float *tmp, float *cols, float *outs) {
	int y0 = 0;
	for (; y0 + 8 <= sh; y0 += 8) {
		const float *s = src + (long)y0 * sw;
		int c = 0;
		for (; c + 8 <= sw; c += 8) {
			__m256 r[8];
			for (int j = 0; j < 8; j++)
				r[j] = _mm256_loadu_ps(s + (long)j * sw + c);
			kd_tr8(r);
			for (int i = 0; i < 8; i++)
				_mm256_storeu_ps(cols + (long)(c + i) * 8, r[i]);
		}
		for (; c < sw; c++)
			for (int j = 0; j < 8; j++)
				cols[(long)c * 8 + j] = s[(long)j * sw + c];
		for (int x = 0; x < dw; x++) {
			const float *w = xw + (long)x * xk, *in = cols + (long)xf[x] * 8;
			__m256 acc = _mm256_setzero_ps();
			for (int k = 0; k < xn[x]; k++)
				acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(in + (long)k * 8), _mm256_set1_ps(w[k])));
			_mm256_storeu_ps(outs + (long)x * 8, acc);
		}
		float *t = tmp + (long)y0 * dw;
		int x = 0;
		for (; x + 8 <= dw; x += 8) {
			__m256 r[8];
			for (int i = 0; i < 8; i++)
				r[i] = _mm256_loadu_ps(outs + (long)(x + i) * 8);
			kd_tr8(r);
			for (int j = 0; j < 8; j++)
				_mm256_storeu_ps(t + (long)j * dw + x, r[j]);
		}
		for (; x < dw; x++)
			for (int j = 0; j < 8; j++)
				t[(long)j * dw + x] = outs[(long)x * 8 + j];
	}
	return y0;
}

// kd_vertical_avx2 is the vertical pass, eight output columns at a time.
__attribute__((target("avx2"))) static void kd_vertical_avx2(const float *tmp, int dw, int dh,
		const int32_t *yf, const int32_t *yn, const float *yw, int yk, float *out) {
	for (int y = 0; y < dh; y++) {
		const float *w = yw + (long)y * yk;
		const float *base = tmp + (long)yf[y] * dw;
		float *o = out + (long)y * dw;
		int x = 0;
		for (; x + 8 <= dw; x += 8) {
			__m256 s = _mm256_setzero_ps();
			for (int k = 0; k < yn[y]; k++)
				s = _mm256_add_ps(s, _mm256_mul_ps(_mm256_loadu_ps(base + (long)k * dw + x), _mm256_set1_ps(w[k])));
			_mm256_storeu_ps(o + x, s);
		}
		for (; x < dw; x++) {
			float s = 0;
			for (int k = 0; k < yn[y]; k++)
				s += base[(long)k * dw + x] * w[k];
			o[x] = s;
		}
	}
}

__attribute__((target("avx2"))) static void kd_affine_avx2(const float *in, float *out, long n, float scale, float shift) {
	__m256 a = _mm256_set1_ps(scale), c = _mm256_set1_ps(shift);
	long i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(in + i), a), c));
	for (; i < n; i++)
		out[i] = in[i] * scale + shift;
}
#endif

// kd_affine writes out[i] = in[i]*scale + shift (two roundings).
static int kd_affine(const float *in, float *out, long n, float scale, float shift) {
#if defined(__x86_64__)
	if (!__builtin_cpu_supports("avx2"))
		return 0;
	kd_affine_avx2(in, out, n, scale, shift);
	return 1;
#else
	return 0;
#endif
}

static int kd_resize_plane(const float *src, int sw, int sh, int dw, int dh,
		const int32_t *xf, const int32_t *xn, const float *xw, int xk,
		const int32_t *yf, const int32_t *yn, const float *yw, int yk, float *tmp, float *out,
		float *cols, float *outs) {
#if defined(__x86_64__)
	if (!__builtin_cpu_supports("avx2"))
		return 0;
	for (int y = kd_horizontal_avx2(src, sw, sh, dw, xf, xn, xw, xk, tmp, cols, outs); y < sh; y++) {
		const float *row = src + (long)y * sw;
		float *t = tmp + (long)y * dw;
		for (int x = 0; x < dw; x++) {
			const float *in = row + xf[x], *w = xw + (long)x * xk;
			float s = 0;
			for (int k = 0; k < xn[x]; k++)
				s += in[k] * w[k];
			t[x] = s;
		}
	}
	kd_vertical_avx2(tmp, dw, dh, yf, yn, yw, yk, out);
	return 1;
#else
	return 0;
#endif
}
*/
import "C"

import (
	"unsafe"

	"github.com/kediff/kediff/onnx"
)

// stripPool holds resizeC's transposed strips.
var stripPool onnx.FreeList[[]float32]

// resizeC is resizePlanesInto in C, for x86-64 CPUs with AVX2 (elsewhere
// it returns false and does nothing): the same sums in the same order, so
// the same values. Both passes run eight lanes at a time (the horizontal
// one on transposed strips of eight rows).
func resizeC(src []float32, sw, sh, dw, dh int, xs, ys *packedTaps, tmp, out []float32) bool {
	sc := stripPool.Get()
	defer stripPool.Put(sc)
	if len(*sc) < 8*(sw+dw) {
		*sc = make([]float32, 8*(sw+dw))
	}
	cols, outs := (*sc)[:8*sw], (*sc)[8*sw:]
	for c := range 3 {
		ok := C.kd_resize_plane((*C.float)(unsafe.Pointer(&src[c*sw*sh])), C.int(sw), C.int(sh), C.int(dw), C.int(dh),
			(*C.int32_t)(unsafe.Pointer(&xs.first[0])), (*C.int32_t)(unsafe.Pointer(&xs.n[0])), (*C.float)(unsafe.Pointer(&xs.w[0])), C.int(xs.k),
			(*C.int32_t)(unsafe.Pointer(&ys.first[0])), (*C.int32_t)(unsafe.Pointer(&ys.n[0])), (*C.float)(unsafe.Pointer(&ys.w[0])), C.int(ys.k),
			(*C.float)(unsafe.Pointer(&tmp[c*dw*sh])), (*C.float)(unsafe.Pointer(&out[c*dw*dh])),
			(*C.float)(unsafe.Pointer(&cols[0])), (*C.float)(unsafe.Pointer(&outs[0])))
		if ok == 0 {
			return false
		}
	}
	return true
}

// affineC writes dst[i] = src[i]*scale + shift in C (AVX2; false elsewhere).
func affineC(dst, src []float32, scale, shift float32) bool {
	if len(src) == 0 {
		return true
	}
	dst = dst[:len(src)]
	return C.kd_affine((*C.float)(unsafe.Pointer(&src[0])), (*C.float)(unsafe.Pointer(&dst[0])), C.long(len(src)), C.float(scale), C.float(shift)) != 0
}
