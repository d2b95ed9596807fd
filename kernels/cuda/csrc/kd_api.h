// kd_api.h: the C ABI of libkediff_cuda (kernels/cuda's Go side calls it)
// over a runtime that the including file defines in namespace rt: the real
// one (kd_cuda.cu: CUDA runtime, cuBLAS) or the host emulation (kd_emu.cc).
//
// Buffers. kd_alloc returns a view address: a range of 4 bytes per element
// reserved with PROT_NONE in the host's address space, which the Go side wraps
// in a []float32 and slices as it slices host buffers. The host can never
// read or write through it (a stray host access faults at once). Every op
// resolves its view arguments back to (allocation, element offset) and so to
// the real memory and its element type (fp32 or bf16), checking that the
// elements it will touch lie inside the allocation.
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "kd_ops.h"

namespace {

struct Alloc {
	uintptr_t view;
	long n;
	int dt;
	void *real;
};

std::vector<Alloc> g_allocs; // sorted by view
std::mutex g_mu;

thread_local char g_err[512];

__attribute__((format(printf, 1, 2))) const char *errf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_err, sizeof g_err, fmt, ap);
	va_end(ap);
	return g_err;
}

// resolve finds the allocation holding view v and checks that need elements
// from v lie inside it. A NULL view resolves to an absent argument.
const char *resolve(const void *v, long need, Ten *t, const char *what) {
	t->p = nullptr;
	t->dt = KD_F32;
	if (!v) return nullptr;
	uintptr_t a = (uintptr_t)v;
	std::lock_guard<std::mutex> lock(g_mu);
	auto it = std::upper_bound(g_allocs.begin(), g_allocs.end(), a, [](uintptr_t x, const Alloc &al) { return x < al.view; });
	if (it == g_allocs.begin()) return errf("argument %s is not a buffer of this device", what);
	--it;
	if (a >= it->view + 4 * (uintptr_t)it->n || (a - it->view) % 4) return errf("argument %s is not a buffer of this device", what);
	long off = (long)((a - it->view) / 4);
	if (need < 0 || off + need > it->n) return errf("argument %s: %ld elements from offset %ld overrun its buffer of %ld", what, need, off, it->n);
	t->p = (char *)it->real + off * kd_size(it->dt);
	t->dt = it->dt;
	return nullptr;
}

// need is resolve for a required argument.
const char *need(const void *v, long n, Ten *t, const char *what) {
	if (!v) return errf("argument %s is missing", what);
	return resolve(v, n, t, what);
}

#define TRY(x)                                                                                                                   \
	do {                                                                                                                         \
		const char *e_ = (x);                                                                                                    \
		if (e_) return e_;                                                                                                       \
	} while (0)

// span is how many elements a (possibly transposed, batched) matrix touches.
long span(long rows, long cols, long ld, long batch, long stride) { return (batch - 1) * stride + (rows - 1) * ld + cols; }

// gemm is row-major C = alpha op(A) op(B) + beta C over batch matrices (strides
// in elements), A and B of any element types: when they differ, the fp32 one
// is rounded to bf16 first (mixed precision: bf16 inputs, fp32 accumulation),
// and a bf16 C takes bf16 inputs too (cuBLAS has no fp32 x fp32 -> bf16).
const char *gemm(bool ta, bool tb, long M, long N, long K, float alpha, Ten A, long lda, long sA, Ten B, long ldb, long sB, float beta,
                 Ten C, long ldc, long sC, long batch) {
	if (M <= 0 || N <= 0 || batch <= 0) return nullptr;
	bool toBF = A.dt != B.dt || C.dt == KD_BF16;
	Ten *ops[2] = {&A, &B};
	for (int k = 0; k < 2 && toBF; k++) {
		Ten &X = *ops[k];
		if (X.dt == KD_BF16) continue;
		long n = k == 0 ? span(ta ? K : M, ta ? M : K, lda, batch, sA) : span(tb ? N : K, tb ? K : N, ldb, batch, sB);
		const char *e = nullptr;
		Ten bf{rt::scratch(k, 2 * (size_t)n, &e), KD_BF16};
		if (e) return e;
		TRY(rt::each(n, Cast{bf, X}));
		X = bf;
	}
	return rt::gemm(ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
}

// ---------------------------------------------------------------- ops

enum Op {
	OP_GEMM,
	OP_CONV_FWD,
	OP_CONV_BWD,
	OP_GROUPNORM_FWD,
	OP_GROUPNORM_BWD,
	OP_LAYERNORM_FWD,
	OP_LAYERNORM_BWD,
	OP_LINEAR_FWD,
	OP_LINEAR_BWD,
	OP_SILU_FWD,
	OP_SILU_BWD,
	OP_GELU_FWD,
	OP_GELU_BWD,
	OP_DROPOUT_FWD,
	OP_DROPOUT_BWD,
	OP_SOFTMAX_FWD,
	OP_SOFTMAX_BWD,
	OP_ATTN_FWD,
	OP_ATTN_BWD,
	OP_PERMUTE,
	OP_PERMUTE_BWD,
	OP_EMBED_FWD,
	OP_EMBED_BWD,
	OP_TIMESTEP,
	OP_UPSAMPLE_FWD,
	OP_UPSAMPLE_BWD,
	OP_POOL_FWD,
	OP_POOL_BWD,
	OP_ADD,
	OP_ACCUMULATE,
	OP_SCALESHIFT_FWD,
	OP_SCALESHIFT_BWD,
	OP_CONCAT_FWD,
	OP_CONCAT_BWD,
	OP_MSE_FWD,
	OP_MSE_BWD,
	OP_CLIP,
	OP_ADAMW,
	OP_EMA,
	OP_COUNT
};

const char *const op_names[OP_COUNT] = {
    "gemm",           "conv_fwd",    "conv_bwd",    "groupnorm_fwd", "groupnorm_bwd", "layernorm_fwd",  "layernorm_bwd",
    "linear_fwd",     "linear_bwd",  "silu_fwd",    "silu_bwd",      "gelu_fwd",      "gelu_bwd",       "dropout_fwd",
    "dropout_bwd",    "softmax_fwd", "softmax_bwd", "attn_fwd",      "attn_bwd",      "permute",        "permute_bwd",
    "embed_fwd",      "embed_bwd",   "timestep",    "upsample_fwd",  "upsample_bwd",  "pool_fwd",       "pool_bwd",
    "add",            "accumulate",  "scaleshift_fwd", "scaleshift_bwd", "concat_fwd", "concat_bwd",   "mse_fwd",
    "mse_bwd",        "clip",        "adamw",       "ema"};

// Conv geometry from n[0..7] = B, C, H, W, OC, K, S, P.
struct ConvG {
	long B, C, H, W, OC, K, S, P, OH, OW;
	explicit ConvG(const long *n) : B(n[0]), C(n[1]), H(n[2]), W(n[3]), OC(n[4]), K(n[5]), S(n[6]), P(n[7]) {
		OH = (H + 2 * P - K) / S + 1;
		OW = (W + 2 * P - K) / S + 1;
	}
	bool direct() const { return K == 1 && S == 1 && P == 0; }
	long ckk() const { return C * K * K; }
	long ohw() const { return OH * OW; }
};

// convGroup is how many samples share one im2col scratch (at most 256 MiB of it).
long convGroup(const ConvG &g) { return std::max(1L, std::min(g.B, (long)((256L << 20) / 4 / std::max(1L, g.ckk() * g.ohw())))); }

const char *conv_fwd(void **p, const long *n) {
	ConvG g(n);
	if (g.B <= 0 || g.OH <= 0 || g.OW <= 0) return errf("conv: bad shape");
	Ten out, in, w, bias;
	TRY(need(p[0], g.B * g.OC * g.ohw(), &out, "out"));
	TRY(need(p[1], g.B * g.C * g.H * g.W, &in, "inp"));
	TRY(need(p[2], g.OC * g.ckk(), &w, "weight"));
	TRY(resolve(p[3], g.OC, &bias, "bias"));
	long ohw = g.ohw(), chw = g.C * g.H * g.W;
	if (g.direct()) {
		TRY(gemm(false, false, g.OC, ohw, g.C, 1, w, g.C, 0, in, ohw, chw, 0, out, ohw, g.OC * ohw, g.B));
	} else {
		long grp = convGroup(g);
		for (long b0 = 0; b0 < g.B; b0 += grp) {
			long k = std::min(grp, g.B - b0);
			const char *e = nullptr;
			Ten col{rt::scratch(2, 4 * (size_t)(k * g.ckk() * ohw), &e), KD_F32};
			if (e) return e;
			Ten x = in;
			x.p = (char *)in.p + b0 * chw * kd_size(in.dt);
			col.dt = in.dt;
			TRY(rt::each(k * g.ckk() * ohw, Im2col{col, x, g.C, g.H, g.W, g.K, g.S, g.P, g.OH, g.OW}));
			Ten o = out;
			o.p = (char *)out.p + b0 * g.OC * ohw * kd_size(out.dt);
			TRY(gemm(false, false, g.OC, ohw, g.ckk(), 1, w, g.ckk(), 0, col, ohw, g.ckk() * ohw, 0, o, ohw, g.OC * ohw, k));
		}
	}
	if (bias.p) TRY(rt::each(g.B * g.OC * ohw, BiasRows{out, bias, g.OC, ohw}));
	return nullptr;
}

const char *conv_bwd(void **p, const long *n) {
	ConvG g(n);
	Ten dinp, dw, db, dout, in, w;
	TRY(resolve(p[0], g.B * g.C * g.H * g.W, &dinp, "dinp"));
	TRY(need(p[1], g.OC * g.ckk(), &dw, "dweight"));
	TRY(resolve(p[2], g.OC, &db, "dbias"));
	TRY(need(p[3], g.B * g.OC * g.ohw(), &dout, "dout"));
	TRY(need(p[4], g.B * g.C * g.H * g.W, &in, "inp"));
	TRY(need(p[5], g.OC * g.ckk(), &w, "weight"));
	long ohw = g.ohw(), chw = g.C * g.H * g.W, ckk = g.ckk();
	if (db.p) TRY(rt::rows(g.OC, SumRows{db, dout, g.B, g.OC, ohw}));
	auto at = [](Ten t, long off) {
		t.p = (char *)t.p + off * kd_size(t.dt);
		return t;
	};
	if (g.direct()) {
		for (long b = 0; b < g.B; b++)
			TRY(gemm(false, true, g.OC, g.C, ohw, 1, at(dout, b * g.OC * ohw), ohw, 0, at(in, b * chw), ohw, 0, 1, dw, g.C, 0, 1));
		if (dinp.p) TRY(gemm(true, false, g.C, ohw, g.OC, 1, w, g.C, 0, dout, ohw, g.OC * ohw, 1, dinp, ohw, chw, g.B));
		return nullptr;
	}
	long grp = convGroup(g);
	for (long b0 = 0; b0 < g.B; b0 += grp) {
		long k = std::min(grp, g.B - b0);
		const char *e = nullptr;
		Ten col{rt::scratch(2, 4 * (size_t)(k * ckk * ohw), &e), in.dt};
		if (e) return e;
		TRY(rt::each(k * ckk * ohw, Im2col{col, at(in, b0 * chw), g.C, g.H, g.W, g.K, g.S, g.P, g.OH, g.OW}));
		for (long b = 0; b < k; b++)
			TRY(gemm(false, true, g.OC, ckk, ohw, 1, at(dout, (b0 + b) * g.OC * ohw), ohw, 0, at(col, b * ckk * ohw), ohw, 0, 1, dw, ckk, 0, 1));
		if (!dinp.p) continue;
		Ten dcol{rt::scratch(3, 4 * (size_t)(k * ckk * ohw), &e), KD_F32};
		if (e) return e;
		TRY(gemm(true, false, ckk, ohw, g.OC, 1, w, ckk, 0, at(dout, b0 * g.OC * ohw), ohw, g.OC * ohw, 0, dcol, ohw, ckk * ohw, k));
		TRY(rt::each(k * chw, Col2im{at(dinp, b0 * chw), dcol, g.C, g.H, g.W, g.K, g.S, g.P, g.OH, g.OW}));
	}
	return nullptr;
}

const char *attn_fwd(void **p, const long *n) {
	long B = n[0], NH = n[1], Nq = n[2], Nk = n[3], D = n[4], BH = B * NH;
	Ten out, att, q, k, v, scale, mask;
	TRY(need(p[0], BH * Nq * D, &out, "out"));
	TRY(need(p[1], BH * Nq * Nk, &att, "att"));
	TRY(need(p[2], BH * Nq * D, &q, "q"));
	TRY(need(p[3], BH * Nk * D, &k, "k"));
	TRY(need(p[4], BH * Nk * D, &v, "v"));
	TRY(resolve(p[5], B * Nk, &scale, "keyScale"));
	TRY(resolve(p[6], B * Nk, &mask, "keyMask"));
	TRY(gemm(false, true, Nq, Nk, D, 1, q, D, Nq * D, k, D, Nk * D, 0, att, Nk, Nq * Nk, BH));
	TRY(rt::rows(BH * Nq, AttnSoftmax{att, scale, mask, Nk, NH * Nq, 1 / sqrt((double)D)}));
	return gemm(false, false, Nq, D, Nk, 1, att, Nk, Nq * Nk, v, D, Nk * D, 0, out, D, Nq * D, BH);
}

const char *attn_bwd(void **p, const long *n) {
	long B = n[0], NH = n[1], Nq = n[2], Nk = n[3], D = n[4], BH = B * NH;
	Ten dq, dk, dv, scr, dout, att, q, k, v, scale;
	TRY(need(p[0], BH * Nq * D, &dq, "dq"));
	TRY(need(p[1], BH * Nk * D, &dk, "dk"));
	TRY(need(p[2], BH * Nk * D, &dv, "dv"));
	TRY(need(p[3], BH * Nq * Nk, &scr, "scratch"));
	TRY(need(p[4], BH * Nq * D, &dout, "dout"));
	TRY(need(p[5], BH * Nq * Nk, &att, "att"));
	TRY(need(p[6], BH * Nq * D, &q, "q"));
	TRY(need(p[7], BH * Nk * D, &k, "k"));
	TRY(need(p[8], BH * Nk * D, &v, "v"));
	TRY(resolve(p[9], B * Nk, &scale, "keyScale"));
	TRY(gemm(true, false, Nk, D, Nq, 1, att, Nk, Nq * Nk, dout, D, Nq * D, 1, dv, D, Nk * D, BH));
	TRY(gemm(false, true, Nq, Nk, D, 1, dout, D, Nq * D, v, D, Nk * D, 0, scr, Nk, Nq * Nk, BH));
	TRY(rt::rows(BH * Nq, AttnSoftmaxBwd{scr, att, scale, Nk, NH * Nq, 1 / sqrt((double)D)}));
	TRY(gemm(false, false, Nq, D, Nk, 1, scr, Nk, Nq * Nk, k, D, Nk * D, 1, dq, D, Nq * D, BH));
	return gemm(true, false, Nk, D, Nq, 1, scr, Nk, Nq * Nk, q, D, Nq * D, 1, dk, D, Nk * D, BH);
}

// tokens uploads host token ids to a device scratch, checking their range.
const char *tokens(const int32_t *host, long N, long V, const int32_t **dev) {
	for (long i = 0; i < N; i++)
		if (host[i] < 0 || host[i] >= V) return errf("embedding: token %d at position %ld outside the vocabulary of %ld", host[i], i, V);
	const char *e = nullptr;
	void *d = rt::scratch(4, 4 * (size_t)std::max(1L, N), &e);
	if (e) return e;
	TRY(rt::h2d(d, host, 4 * (size_t)N));
	*dev = (const int32_t *)d;
	return nullptr;
}

const char *run(int op, void **p, const long *n, const double *f, const int32_t *host, double *result) {
	switch (op) {
	case OP_GEMM: {
		// n: ta, tb, M, N, K, lda, ldb, ldc; f: alpha, beta
		bool ta = n[0], tb = n[1];
		long M = n[2], N = n[3], K = n[4];
		Ten A, B, C;
		TRY(need(p[0], ta ? span(K, M, n[5], 1, 0) : span(M, K, n[5], 1, 0), &A, "A"));
		TRY(need(p[1], tb ? span(N, K, n[6], 1, 0) : span(K, N, n[6], 1, 0), &B, "B"));
		TRY(need(p[2], span(M, N, n[7], 1, 0), &C, "C"));
		return gemm(ta, tb, M, N, K, (float)f[0], A, n[5], 0, B, n[6], 0, (float)f[1], C, n[7], 0, 1);
	}
	case OP_CONV_FWD: return conv_fwd(p, n);
	case OP_CONV_BWD: return conv_bwd(p, n);
	case OP_GROUPNORM_FWD: {
		long B = n[0], C = n[1], HW = n[2], G = n[3];
		Ten out, mean, rstd, in, w, b;
		TRY(need(p[0], B * C * HW, &out, "out"));
		TRY(need(p[1], B * G, &mean, "mean"));
		TRY(need(p[2], B * G, &rstd, "rstd"));
		TRY(need(p[3], B * C * HW, &in, "inp"));
		TRY(need(p[4], C, &w, "weight"));
		TRY(need(p[5], C, &b, "bias"));
		TRY(rt::rows(B * G, NormStats{in, mean, rstd, C / G * HW, f[0]}));
		return rt::each(B * C * HW, GroupNormApply{out, in, mean, rstd, w, b, C, HW, G});
	}
	case OP_GROUPNORM_BWD: {
		long B = n[0], C = n[1], HW = n[2], G = n[3];
		Ten dinp, dw, db, dout, in, w, mean, rstd;
		TRY(resolve(p[0], B * C * HW, &dinp, "dinp"));
		TRY(need(p[1], C, &dw, "dweight"));
		TRY(need(p[2], C, &db, "dbias"));
		TRY(need(p[3], B * C * HW, &dout, "dout"));
		TRY(need(p[4], B * C * HW, &in, "inp"));
		TRY(need(p[5], C, &w, "weight"));
		TRY(need(p[6], B * G, &mean, "mean"));
		TRY(need(p[7], B * G, &rstd, "rstd"));
		TRY(rt::rows(C, GroupNormParamGrads{dw, db, dout, in, mean, rstd, B, C, HW, G}));
		if (!dinp.p) return nullptr;
		return rt::rows(B * G, GroupNormInputGrads{dinp, dout, in, w, mean, rstd, C, HW, G});
	}
	case OP_LAYERNORM_FWD: {
		long N = n[0], C = n[1];
		Ten out, mean, rstd, in, w, b;
		TRY(need(p[0], N * C, &out, "out"));
		TRY(need(p[1], N, &mean, "mean"));
		TRY(need(p[2], N, &rstd, "rstd"));
		TRY(need(p[3], N * C, &in, "inp"));
		TRY(need(p[4], C, &w, "weight"));
		TRY(need(p[5], C, &b, "bias"));
		TRY(rt::rows(N, NormStats{in, mean, rstd, C, f[0]}));
		return rt::each(N * C, LayerNormApply{out, in, mean, rstd, w, b, C});
	}
	case OP_LAYERNORM_BWD: {
		long N = n[0], C = n[1];
		Ten dinp, dw, db, dout, in, w, mean, rstd;
		TRY(resolve(p[0], N * C, &dinp, "dinp"));
		TRY(need(p[1], C, &dw, "dweight"));
		TRY(need(p[2], C, &db, "dbias"));
		TRY(need(p[3], N * C, &dout, "dout"));
		TRY(need(p[4], N * C, &in, "inp"));
		TRY(need(p[5], C, &w, "weight"));
		TRY(need(p[6], N, &mean, "mean"));
		TRY(need(p[7], N, &rstd, "rstd"));
		TRY(rt::rows(C, LayerNormParamGrads{dw, db, dout, in, mean, rstd, N, C}));
		if (!dinp.p) return nullptr;
		return rt::rows(N, LayerNormInputGrads{dinp, dout, in, w, mean, rstd, C});
	}
	case OP_LINEAR_FWD: {
		long N = n[0], C = n[1], OC = n[2];
		Ten out, in, w, b;
		TRY(need(p[0], N * OC, &out, "out"));
		TRY(need(p[1], N * C, &in, "inp"));
		TRY(need(p[2], OC * C, &w, "weight"));
		TRY(resolve(p[3], OC, &b, "bias"));
		TRY(gemm(false, true, N, OC, C, 1, in, C, 0, w, C, 0, 0, out, OC, 0, 1));
		if (b.p) TRY(rt::each(N * OC, BiasRows{out, b, OC, 1}));
		return nullptr;
	}
	case OP_LINEAR_BWD: {
		long N = n[0], C = n[1], OC = n[2];
		Ten dinp, dw, db, dout, in, w;
		TRY(resolve(p[0], N * C, &dinp, "dinp"));
		TRY(need(p[1], OC * C, &dw, "dweight"));
		TRY(resolve(p[2], OC, &db, "dbias"));
		TRY(need(p[3], N * OC, &dout, "dout"));
		TRY(need(p[4], N * C, &in, "inp"));
		TRY(need(p[5], OC * C, &w, "weight"));
		if (dinp.p) TRY(gemm(false, false, N, C, OC, 1, dout, OC, 0, w, C, 0, 1, dinp, C, 0, 1));
		TRY(gemm(true, false, OC, C, N, 1, dout, OC, 0, in, C, 0, 1, dw, C, 0, 1));
		if (db.p) TRY(rt::rows(OC, SumRows{db, dout, N, OC, 1}));
		return nullptr;
	}
	case OP_SILU_FWD:
	case OP_GELU_FWD: {
		Ten out, in;
		TRY(need(p[0], n[0], &out, "out"));
		TRY(need(p[1], n[0], &in, "inp"));
		return op == OP_SILU_FWD ? rt::each(n[0], SiluFwd{out, in}) : rt::each(n[0], GeluFwd{out, in});
	}
	case OP_SILU_BWD:
	case OP_GELU_BWD: {
		Ten dinp, dout, in;
		TRY(need(p[0], n[0], &dinp, "dinp"));
		TRY(need(p[1], n[0], &dout, "dout"));
		TRY(need(p[2], n[0], &in, "inp"));
		return op == OP_SILU_BWD ? rt::each(n[0], SiluBwd{dinp, dout, in}) : rt::each(n[0], GeluBwd{dinp, dout, in});
	}
	case OP_DROPOUT_FWD: {
		Ten out, in;
		TRY(need(p[0], n[0], &out, "out"));
		TRY(need(p[1], n[0], &in, "inp"));
		return rt::each(n[0], DropoutFwd{out, in, f[0], (uint64_t)n[1]});
	}
	case OP_DROPOUT_BWD: {
		Ten dinp, dout;
		TRY(need(p[0], n[0], &dinp, "dinp"));
		TRY(need(p[1], n[0], &dout, "dout"));
		return rt::each(n[0], DropoutBwd{dinp, dout, f[0], (uint64_t)n[1]});
	}
	case OP_SOFTMAX_FWD: {
		Ten out, in;
		TRY(need(p[0], n[0] * n[1], &out, "out"));
		TRY(need(p[1], n[0] * n[1], &in, "inp"));
		return rt::rows(n[0], SoftmaxFwd{out, in, n[1]});
	}
	case OP_SOFTMAX_BWD: {
		Ten dinp, dout, out;
		TRY(need(p[0], n[0] * n[1], &dinp, "dinp"));
		TRY(need(p[1], n[0] * n[1], &dout, "dout"));
		TRY(need(p[2], n[0] * n[1], &out, "out"));
		return rt::rows(n[0], SoftmaxBwd{dinp, dout, out, n[1]});
	}
	case OP_ATTN_FWD: return attn_fwd(p, n);
	case OP_ATTN_BWD: return attn_bwd(p, n);
	case OP_PERMUTE:
	case OP_PERMUTE_BWD: {
		long A = n[0], B = n[1], C = n[2], D = n[3], N = A * B * C * D;
		Ten a, b;
		TRY(need(p[0], N, &a, op == OP_PERMUTE ? "out" : "dinp"));
		TRY(need(p[1], N, &b, op == OP_PERMUTE ? "inp" : "dout"));
		return op == OP_PERMUTE ? rt::each(N, Permute{a, b, A, B, C, D}) : rt::each(N, PermuteBwd{a, b, A, B, C, D});
	}
	case OP_EMBED_FWD:
	case OP_EMBED_BWD: {
		long N = n[0], V = n[1], C = n[2];
		Ten a, b;
		TRY(need(p[0], op == OP_EMBED_FWD ? N * C : V * C, &a, op == OP_EMBED_FWD ? "out" : "dtable"));
		TRY(need(p[1], op == OP_EMBED_FWD ? V * C : N * C, &b, op == OP_EMBED_FWD ? "table" : "dout"));
		if (N == 0) return nullptr;
		const int32_t *tok = nullptr;
		TRY(tokens(host, N, V, &tok));
		return op == OP_EMBED_FWD ? rt::each(N * C, EmbedFwd{a, b, tok, C}) : rt::each(C, EmbedBwd{a, b, tok, N, C});
	}
	case OP_TIMESTEP: {
		Ten out, t;
		TRY(need(p[0], n[0] * n[1], &out, "out"));
		TRY(need(p[1], n[0], &t, "t"));
		return rt::each(n[0] * n[1], Timestep{out, t, n[1], f[0]});
	}
	case OP_UPSAMPLE_FWD:
	case OP_UPSAMPLE_BWD: {
		long N = n[0], H = n[1], W = n[2];
		Ten a, b;
		bool fwd = op == OP_UPSAMPLE_FWD;
		TRY(need(p[0], fwd ? 4 * N * H * W : N * H * W, &a, fwd ? "out" : "dinp"));
		TRY(need(p[1], fwd ? N * H * W : 4 * N * H * W, &b, fwd ? "inp" : "dout"));
		return fwd ? rt::each(4 * N * H * W, Upsample{a, b, H, W}) : rt::each(N * H * W, UpsampleBwd{a, b, H, W});
	}
	case OP_POOL_FWD:
	case OP_POOL_BWD: {
		long N = n[0], H = n[1], W = n[2], o = N * (H / 2) * (W / 2);
		Ten a, b;
		bool fwd = op == OP_POOL_FWD;
		TRY(need(p[0], fwd ? o : N * H * W, &a, fwd ? "out" : "dinp"));
		TRY(need(p[1], fwd ? N * H * W : o, &b, fwd ? "inp" : "dout"));
		return fwd ? rt::each(o, Pool{a, b, H, W}) : rt::each(N * H * W, PoolBwd{a, b, H, W});
	}
	case OP_ADD: {
		Ten out, a, b;
		TRY(need(p[0], n[0], &out, "out"));
		TRY(need(p[1], n[0], &a, "a"));
		TRY(need(p[2], n[0], &b, "b"));
		return rt::each(n[0], AddFwd{out, a, b});
	}
	case OP_ACCUMULATE: {
		Ten dst, src;
		TRY(need(p[0], n[0], &dst, "dst"));
		TRY(need(p[1], n[0], &src, "src"));
		return rt::each(n[0], Accumulate{dst, src});
	}
	case OP_SCALESHIFT_FWD: {
		long B = n[0], C = n[1], HW = n[2];
		Ten out, in, scale, shift;
		TRY(need(p[0], B * C * HW, &out, "out"));
		TRY(need(p[1], B * C * HW, &in, "inp"));
		TRY(resolve(p[2], B * C, &scale, "scale"));
		TRY(need(p[3], B * C, &shift, "shift"));
		return rt::each(B * C * HW, ScaleShift{out, in, scale, shift, HW});
	}
	case OP_SCALESHIFT_BWD: {
		long B = n[0], C = n[1], HW = n[2];
		Ten dinp, dscale, dshift, dout, in, scale;
		TRY(resolve(p[0], B * C * HW, &dinp, "dinp"));
		TRY(resolve(p[1], B * C, &dscale, "dscale"));
		TRY(need(p[2], B * C, &dshift, "dshift"));
		TRY(need(p[3], B * C * HW, &dout, "dout"));
		TRY(need(p[4], B * C * HW, &in, "inp"));
		TRY(resolve(p[5], B * C, &scale, "scale"));
		return rt::rows(B * C, ScaleShiftBwd{dinp, dscale, dshift, dout, in, scale, HW});
	}
	case OP_CONCAT_FWD:
	case OP_CONCAT_BWD: {
		long B = n[0], C1 = n[1], C2 = n[2], HW = n[3];
		bool fwd = op == OP_CONCAT_FWD;
		Ten x, a, b;
		if (fwd) {
			TRY(need(p[0], B * (C1 + C2) * HW, &x, "out"));
			TRY(need(p[1], B * C1 * HW, &a, "a"));
			TRY(need(p[2], B * C2 * HW, &b, "b"));
			return rt::each(B * (C1 + C2) * HW, Concat{x, a, b, C1, C2, HW});
		}
		TRY(resolve(p[0], B * C1 * HW, &a, "da"));
		TRY(resolve(p[1], B * C2 * HW, &b, "db"));
		TRY(need(p[2], B * (C1 + C2) * HW, &x, "dout"));
		return rt::each(B * (C1 + C2) * HW, ConcatBwd{a, b, x, C1, C2, HW});
	}
	case OP_MSE_FWD: {
		long B = n[0], C = n[1], HW = n[2];
		Ten eh, e, w;
		TRY(need(p[0], B * C * HW, &eh, "epsHat"));
		TRY(need(p[1], B * C * HW, &e, "eps"));
		TRY(resolve(p[2], B * HW, &w, "weight"));
		const char *err = nullptr;
		double *part = (double *)rt::scratch(5, 8 * (size_t)B, &err);
		if (err) return err;
		TRY(rt::rows(B, MSEPart{eh, e, w, part, C, HW}));
		std::vector<double> h(B);
		TRY(rt::d2h(h.data(), part, 8 * (size_t)B));
		double s = 0;
		for (double v : h) s += v;
		*result = s / (double)(B * C * HW);
		return nullptr;
	}
	case OP_MSE_BWD: {
		long B = n[0], C = n[1], HW = n[2];
		Ten d, eh, e, w;
		TRY(need(p[0], B * C * HW, &d, "dEpsHat"));
		TRY(need(p[1], B * C * HW, &eh, "epsHat"));
		TRY(need(p[2], B * C * HW, &e, "eps"));
		TRY(resolve(p[3], B * HW, &w, "weight"));
		return rt::each(B * C * HW, MSEBwd{d, eh, e, w, 2 * f[0] / (double)(B * C * HW), C, HW});
	}
	case OP_CLIP: {
		long N = n[0], chunks = 4096;
		Ten g;
		TRY(need(p[0], N, &g, "grads"));
		const char *err = nullptr;
		double *part = (double *)rt::scratch(5, 8 * (size_t)chunks, &err);
		if (err) return err;
		TRY(rt::rows(chunks, SumSqPart{g, part, N, chunks}));
		std::vector<double> h(chunks);
		TRY(rt::d2h(h.data(), part, 8 * (size_t)chunks));
		double ss = 0;
		for (double v : h) ss += v;
		double norm = sqrt(ss), coef = f[0] / (norm + 1e-6);
		*result = norm;
		if (coef < 1 && !isnan(norm) && !isinf(norm)) return rt::each(N, Scale{g, (float)coef});
		return nullptr;
	}
	case OP_ADAMW: {
		// n: count, step; f: lr, beta1, beta2, eps, weight decay
		long N = n[0], step = n[1];
		Ten pa, g, m, v;
		TRY(need(p[0], N, &pa, "params"));
		TRY(need(p[1], N, &g, "grads"));
		TRY(need(p[2], N, &m, "m"));
		TRY(need(p[3], N, &v, "v"));
		double bc1 = 1 - pow(f[1], (double)step), bc2 = 1 - pow(f[2], (double)step);
		return rt::each(N, AdamW{pa, g, m, v, (float)f[1], (float)f[2], (float)(1 - f[0] * f[4]), (float)(f[0] / bc1), (float)sqrt(bc2), (float)f[3]});
	}
	case OP_EMA: {
		Ten ema, x;
		TRY(need(p[0], n[0], &ema, "ema"));
		TRY(need(p[1], n[0], &x, "params"));
		return rt::each(n[0], EMA{ema, x, (float)f[0]});
	}
	}
	return errf("unknown op %d", op);
}

} // namespace

// ---------------------------------------------------------------- exported

extern "C" {

// kd_init selects device (the emulation has one) and reports its name and
// memory.
const char *kd_init(int device, char *name, int name_len, long long *total) { return rt::init(device, name, name_len, total); }

int kd_op_count(void) { return OP_COUNT; }

// kd_set_variant picks version v of a kernel family (KD_VAR_ROWS: 1 or 2)
// for the ops that follow and returns the previous one; -1 for an unknown
// family or version.
int kd_set_variant(int family, int v) {
	if (family != KD_VAR_ROWS || v < 1 || v > 2) return -1;
	int old = kd_variants[family];
	kd_variants[family] = v;
	return old;
}
const char *kd_op_name(int op) { return op >= 0 && op < OP_COUNT ? op_names[op] : ""; }

// kd_alloc allocates n zeroed elements of dtype and returns their view.
void *kd_alloc(long n, int dtype, const char **err) {
	rt::bind();
	*err = nullptr;
	if (n <= 0) return nullptr;
	if (dtype != KD_F32 && dtype != KD_BF16) {
		*err = errf("unknown element type");
		return nullptr;
	}
	void *view = mmap(nullptr, 4 * (size_t)n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (view == MAP_FAILED) {
		*err = errf("reserving %ld view bytes failed", 4 * n);
		return nullptr;
	}
	void *real = rt::dmalloc(kd_size(dtype) * (size_t)n, err);
	if (*err) {
		munmap(view, 4 * (size_t)n);
		return nullptr;
	}
	std::lock_guard<std::mutex> lock(g_mu);
	kd_mem_add((long long)(kd_size(dtype) * n));
	Alloc a{(uintptr_t)view, n, dtype, real};
	g_allocs.insert(std::upper_bound(g_allocs.begin(), g_allocs.end(), a.view, [](uintptr_t x, const Alloc &al) { return x < al.view; }), a);
	return view;
}

void kd_free(void *view) {
	rt::bind();
	std::lock_guard<std::mutex> lock(g_mu);
	for (auto it = g_allocs.begin(); it != g_allocs.end(); ++it)
		if (it->view == (uintptr_t)view) {
			kd_mem_add(-(long long)(kd_size(it->dt) * it->n));
			rt::dfree(it->real);
			munmap(view, 4 * (size_t)it->n);
			g_allocs.erase(it);
			return;
		}
}

// kd_dtype is the element type of the buffer holding view (-1: none).
int kd_dtype(const void *view) {
	Ten t;
	if (!view || resolve(view, 0, &t, "view")) return -1;
	return t.dt;
}

// kd_upload copies n host floats into the buffer at view, converting to its type.
const char *kd_upload(void *view, const float *src, long n) {
	rt::bind();
	Ten t;
	TRY(need(view, n, &t, "dst"));
	if (t.dt == KD_F32) return rt::h2d(t.p, src, 4 * (size_t)n);
	std::vector<uint16_t> h(n);
	for (long i = 0; i < n; i++) h[i] = kd_f2bf(src[i]);
	return rt::h2d(t.p, h.data(), 2 * (size_t)n);
}

// kd_download copies n elements at view into host floats (waiting for the
// work before it).
const char *kd_download(float *dst, const void *view, long n) {
	rt::bind();
	Ten t;
	TRY(need(view, n, &t, "src"));
	if (t.dt == KD_F32) return rt::d2h(dst, t.p, 4 * (size_t)n);
	std::vector<uint16_t> h(n);
	TRY(rt::d2h(h.data(), t.p, 2 * (size_t)n));
	for (long i = 0; i < n; i++) dst[i] = kd_bf2f(h[i]);
	return nullptr;
}

const char *kd_zero(void *view, long n) {
	rt::bind();
	Ten t;
	TRY(need(view, n, &t, "buffer"));
	return rt::dzero(t.p, kd_size(t.dt) * (size_t)n);
}

const char *kd_sync(void) {
	rt::bind();
	return rt::sync();
}

// kd_device_pointer gives the device address of the n elements at view and
// their element type, for libraries that take device memory (NCCL).
const char *kd_device_pointer(const void *view, long n, void **dev, int *dtype) {
	Ten t;
	TRY(need(view, n, &t, "buffer"));
	*dev = t.p;
	*dtype = t.dt;
	return nullptr;
}

// kd_stream is the stream every op runs on (a cudaStream_t; 0 in the
// emulation), so other libraries can queue work after the kernels'.
void *kd_stream(void) { return rt::stream(); }

// kd_mem reports the device memory kediff holds (buffers and scratch) and
// its peak since the last reset (reset != 0 sets the peak to what is live).
void kd_mem(long long *live, long long *peak, int reset) {
	std::lock_guard<std::mutex> lock(g_mu);
	if (reset) kd_mem_peak = kd_mem_live;
	*live = kd_mem_live;
	*peak = kd_mem_peak;
}

// kd_run runs op with its view arguments p, integer arguments n, float
// arguments f and host token ids host; result receives a scalar result
// (losses, norms).
const char *kd_run(int op, void **p, const long *n, const double *f, const int32_t *host, double *result) {
	rt::bind();
	return run(op, p, n, f, host, result);
}

} // extern "C"
