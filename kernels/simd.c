//go:build cgo

// Vectorised float32 kernels (SiLU, GELU, softmax's exp, im2col/col2im,
// GroupNorm, AdamW, attention softmax, permutes, adds) for
// simd_cgo.go. The loops in simd.h are compiled three times: for AVX-512
// (F/BW/DQ/VL, 16 floats a vector), for AVX2+FMA (8), and for the build's
// baseline; kd_simd_init picks one by CPUID. The exp and erfc here are the
// usual float32 approximations (Cephes expf; Numerical Recipes' erfcc), both
// within about 2 ulp of float32 rounding; the generic Go kernels stay the
// reference and the float64 path.

#include <stddef.h>
#include <string.h>

// The loops vectorise only at -O3 and, for the clamps and selects without
// AVX-512 masks, with -fno-trapping-math (cgo does not accept that flag);
// -fno-math-errno lets sqrt be one instruction.
// These kernels never rely on floating-point exceptions.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

// kd_expf is exp(x) for float32: x = k*ln2 + r, |r| <= ln2/2, a degree-7
// polynomial for e^r (Cephes expf) and 2^k from the exponent bits, applied as
// 2^(k-1) * 2 so that results up to FLT_MAX stay finite. Inputs below -87 give
// 0 (the true result is below 2^-125; a softmax key with logit -inf gets
// exactly 0), inputs above ln(FLT_MAX) give +Inf, NaN gives NaN.
static inline float kd_expf(float x) {
	float xc = x < -87.0f ? -87.0f : x;
	xc = xc > 88.72283f ? 88.72283f : xc;
	float t = xc * 1.44269504088896341f + 12582912.0f; // 1.5*2^23: round to nearest
	float k = t - 12582912.0f;
	int ki;
	memcpy(&ki, &t, 4);
	ki -= 0x4B400000;
	float r = xc - k * 0.693359375f;
	r = r - k * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	int under = x < -87.0f, over = x > 88.72283f;
	int bits = ((ki + 126) << 23) & (under - 1); // 2^(k-1), or 0 below -87
	float s;
	memcpy(&s, &bits, 4);
	float e = (p * s) * 2.0f;
	return over ? __builtin_inff() : e;
}

// kd_phi is the standard normal CDF Phi(x) = erfc(-x/sqrt2)/2, with erfc from
// Numerical Recipes' erfcc (relative error below 1.2e-7 for every z >= 0), so
// the lower tail keeps its relative accuracy (no 1 - erf cancellation).
static inline float kd_phi(float x) {
	float z = (x < 0 ? -x : x) * 0.707106781186547524f;
	float t = 1.0f / (1.0f + 0.5f * z);
	float p = 0.17087277f;
	p = p * t - 0.82215223f;
	p = p * t + 1.48851587f;
	p = p * t - 1.13520398f;
	p = p * t + 0.27886807f;
	p = p * t - 0.18628806f;
	p = p * t + 0.09678418f;
	p = p * t + 0.37409196f;
	p = p * t + 1.00002368f;
	p = p * t - 1.26551223f;
	float half = 0.5f * t * kd_expf(p - z * z); // erfc(z)/2 = Phi(-|x|)
	return x < 0 ? half : 1.0f - half;
}

// kd_ow_range is conv.go's owRange: the output columns [lo, hi) whose input
// column ow*S-P+kj lies inside [0, W).
static inline void kd_ow_range(long W, long S, long P, long kj, long OW, long *lo, long *hi) {
	long num = P - kj, last = W - 1 + P - kj;
	long l = num > 0 ? (num + S - 1) / S : 0;
	if (last < 0) {
		*lo = *hi = 0;
		return;
	}
	long h = last / S + 1;
	h = h < OW ? h : OW;
	*lo = l < h ? l : h;
	*hi = h;
}

#define KD_FN(f) f##_base
#define KD_ATTR
#include "simd.h"
#undef KD_FN
#undef KD_ATTR

#if defined(__x86_64__) && defined(__GNUC__)
#define KD_X86 1
#define KD_FN(f) f##_avx2
#define KD_ATTR __attribute__((target("avx2,fma")))
#include "simd.h"
#undef KD_FN
#undef KD_ATTR
#define KD_FN(f) f##_avx512
#if defined(__clang__)
#define KD_ATTR __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#else // GCC would otherwise keep to 256-bit vectors
#define KD_ATTR __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512")))
#endif
#include "simd.h"
#undef KD_FN
#undef KD_ATTR
#endif

// AdamW over [lo, hi): the float32 operations of params.go's AdamWUpdate,
// with c = {b1, b2, decay, stepSize, bc2Sqrt, eps}. Written with explicit
// vector types because GCC will not vectorise sqrtf while -fmath-errno is on
// (cgo does not accept -fno-math-errno, and the pragma does not reach it).
#define KD_ADAMW_BODY(V, VSQRT)                                                     \
	float b1 = c[0], b2 = c[1], decay = c[2], step = c[3], bc2 = c[4], eps = c[5]; \
	const long w = sizeof(V) / sizeof(float);                                     \
	long i = lo;                                                                  \
	for (; i + w <= hi; i += w) {                                                  \
		V gi, mi, vi, pi;                                                          \
		memcpy(&gi, g + i, sizeof(V));                                             \
		memcpy(&mi, m + i, sizeof(V));                                             \
		memcpy(&vi, v + i, sizeof(V));                                             \
		memcpy(&pi, p + i, sizeof(V));                                             \
		mi = b1 * mi + (1 - b1) * gi;                                              \
		vi = b2 * vi + (1 - b2) * gi * gi;                                         \
		V denom = (V)VSQRT(vi) / bc2 + eps;                                        \
		pi = pi * decay - step * (mi / denom);                                     \
		memcpy(m + i, &mi, sizeof(V));                                             \
		memcpy(v + i, &vi, sizeof(V));                                             \
		memcpy(p + i, &pi, sizeof(V));                                             \
	}                                                                             \
	kd_adamw_base(p, g, m, v, c, i, hi);

static void kd_adamw_base(float *p, const float *g, float *m, float *v, const float *c, long lo, long hi) {
	float b1 = c[0], b2 = c[1], decay = c[2], step = c[3], bc2 = c[4], eps = c[5];
	for (long i = lo; i < hi; i++) {
		float gi = g[i];
		float mi = b1 * m[i] + (1 - b1) * gi;
		float vi = b2 * v[i] + (1 - b2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		float denom = __builtin_sqrtf(vi) / bc2 + eps;
		p[i] = p[i] * decay - step * (mi / denom);
	}
}

#ifdef KD_X86
#include <immintrin.h>
typedef float kd_v8 __attribute__((vector_size(32)));
typedef float kd_v16 __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"))) static void kd_adamw_avx2(float *p, const float *g, float *m, float *v,
                                                              const float *c, long lo, long hi) {
	KD_ADAMW_BODY(kd_v8, _mm256_sqrt_ps)
}
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) static void kd_adamw_avx512(
    float *p, const float *g, float *m, float *v, const float *c, long lo, long hi) {
	KD_ADAMW_BODY(kd_v16, _mm512_sqrt_ps)
}
#endif

static void (*kd_silu_fwd_p)(float *, const float *, long) = kd_silu_fwd_base;
static void (*kd_silu_bwd_p)(float *, const float *, const float *, long) = kd_silu_bwd_base;
static void (*kd_gelu_fwd_p)(float *, const float *, long) = kd_gelu_fwd_base;
static void (*kd_gelu_bwd_p)(float *, const float *, const float *, long) = kd_gelu_bwd_base;
static double (*kd_exp_shift_p)(float *, long, float) = kd_exp_shift_base;
static void (*kd_im2col_p)(float *, const float *, const long *, long, long) = kd_im2col_base;
static void (*kd_col2im_p)(float *, const float *, const long *, long, long) = kd_col2im_base;
static void (*kd_add_p)(float *, const float *, const float *, long) = kd_add_base;
static void (*kd_acc_p)(float *, const float *, long) = kd_acc_base;
static void (*kd_scale_p)(float *, float, long) = kd_scale_base;
static void (*kd_attn_softmax_p)(float *, const float *, const float *, double, long, long, long, long) = kd_attn_softmax_base;
static void (*kd_attn_softmax_bwd_p)(float *, const float *, const float *, double, long, long, long, long) = kd_attn_softmax_bwd_base;
static void (*kd_permute0213_p)(float *, const float *, const long *, long, long) = kd_permute0213_base;
static void (*kd_permute0213_bwd_p)(float *, const float *, const long *, long, long) = kd_permute0213_bwd_base;
static double (*kd_sumsq_p)(const float *, long, long) = kd_sumsq_base;
static void (*kd_adamw_p)(float *, const float *, float *, float *, const float *, long, long) = kd_adamw_base;
static void (*kd_groupnorm_fwd_p)(float *, float *, float *, const float *, const float *, const float *, const long *, double, long, long) = kd_groupnorm_fwd_base;
static void (*kd_groupnorm_bwd_params_p)(float *, float *, const float *, const float *, const float *, const float *, const long *, long, long) = kd_groupnorm_bwd_params_base;
static void (*kd_groupnorm_bwd_input_p)(float *, const float *, const float *, const float *, const float *, const float *, const long *, long, long) = kd_groupnorm_bwd_input_base;

// KD_USE points every kernel at the variant compiled with suffix sfx.
#define KD_USE(sfx) do { \
	kd_silu_fwd_p = kd_silu_fwd_##sfx; \
	kd_silu_bwd_p = kd_silu_bwd_##sfx; \
	kd_gelu_fwd_p = kd_gelu_fwd_##sfx; \
	kd_gelu_bwd_p = kd_gelu_bwd_##sfx; \
	kd_exp_shift_p = kd_exp_shift_##sfx; \
	kd_im2col_p = kd_im2col_##sfx; \
	kd_col2im_p = kd_col2im_##sfx; \
	kd_add_p = kd_add_##sfx; \
	kd_acc_p = kd_acc_##sfx; \
	kd_scale_p = kd_scale_##sfx; \
	kd_attn_softmax_p = kd_attn_softmax_##sfx; \
	kd_attn_softmax_bwd_p = kd_attn_softmax_bwd_##sfx; \
	kd_permute0213_p = kd_permute0213_##sfx; \
	kd_permute0213_bwd_p = kd_permute0213_bwd_##sfx; \
	kd_sumsq_p = kd_sumsq_##sfx; \
	kd_adamw_p = kd_adamw_##sfx; \
	kd_groupnorm_fwd_p = kd_groupnorm_fwd_##sfx; \
	kd_groupnorm_bwd_params_p = kd_groupnorm_bwd_params_##sfx; \
	kd_groupnorm_bwd_input_p = kd_groupnorm_bwd_input_##sfx; \
} while (0)

// kd_simd_init picks the widest kernels the CPU (and OS) support; level is
// 512, 256 or 0 (baseline), or -1 to force the baseline. It returns the level used.
int kd_simd_init(int level) {
#ifdef KD_X86
	__builtin_cpu_init();
	int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
	int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (level >= 512 && avx512) {
		KD_USE(avx512);
		return 512;
	}
	if (level >= 256 && avx2) {
		KD_USE(avx2);
		return 256;
	}
#endif
	KD_USE(base);
	return 0;
}

void kd_silu_fwd(float *out, const float *in, long n) { kd_silu_fwd_p(out, in, n); }
void kd_silu_bwd(float *dinp, const float *dout, const float *in, long n) { kd_silu_bwd_p(dinp, dout, in, n); }
void kd_gelu_fwd(float *out, const float *in, long n) { kd_gelu_fwd_p(out, in, n); }
void kd_gelu_bwd(float *dinp, const float *dout, const float *in, long n) { kd_gelu_bwd_p(dinp, dout, in, n); }
double kd_exp_shift(float *y, long n, float m) { return kd_exp_shift_p(y, n, m); }
void kd_im2col(float *col, const float *x, const long *sh, long r0, long r1) { kd_im2col_p(col, x, sh, r0, r1); }
void kd_col2im(float *dx, const float *col, const long *sh, long p0, long p1) { kd_col2im_p(dx, col, sh, p0, p1); }
void kd_adamw(float *p, const float *g, float *m, float *v, const float *c, long lo, long hi) {
	kd_adamw_p(p, g, m, v, c, lo, hi);
}
void kd_groupnorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      const long *sh, double eps, long bg0, long bg1) {
	kd_groupnorm_fwd_p(out, mean, rstd, inp, w, b, sh, eps, bg0, bg1);
}
void kd_groupnorm_bwd_params(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                             const float *rstd, const long *sh, long c0, long c1) {
	kd_groupnorm_bwd_params_p(dw, db, dout, inp, mean, rstd, sh, c0, c1);
}
void kd_groupnorm_bwd_input(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                            const float *rstd, const long *sh, long bg0, long bg1) {
	kd_groupnorm_bwd_input_p(dinp, dout, inp, w, mean, rstd, sh, bg0, bg1);
}
void kd_attn_softmax(float *att, const float *scale, const float *mask, double alpha, long Nk, long rpb, long r0, long r1) { kd_attn_softmax_p(att, scale, mask, alpha, Nk, rpb, r0, r1); }
void kd_attn_softmax_bwd(float *g, const float *att, const float *scale, double alpha, long Nk, long rpb, long r0, long r1) { kd_attn_softmax_bwd_p(g, att, scale, alpha, Nk, rpb, r0, r1); }
void kd_permute0213(float *out, const float *inp, const long *sh, long lo, long hi) { kd_permute0213_p(out, inp, sh, lo, hi); }
void kd_permute0213_bwd(float *dinp, const float *dout, const long *sh, long lo, long hi) { kd_permute0213_bwd_p(dinp, dout, sh, lo, hi); }
double kd_sumsq(const float *x, long lo, long hi) { return kd_sumsq_p(x, lo, hi); }
void kd_add(float *out, const float *a, const float *b, long n) { kd_add_p(out, a, b, n); }
void kd_acc(float *dst, const float *src, long n) { kd_acc_p(dst, src, n); }
void kd_scale(float *x, float c, long n) { kd_scale_p(x, c, n); }
