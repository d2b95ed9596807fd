// kd_ops.h: the element kernels of every op, one functor per kernel, each
// computing one output element (or one row) per call: f(i) for i in [0, n).
// A runtime runs them with each(n, f): a grid-stride CUDA kernel on the
// device, a plain loop in the host emulation, the same code either way.
// Elementwise kernels take one thread per element. Row kernels (a reduction
// per row: norms, softmax, gradient sums) are written against a Row, the
// threads that share the row: operator()(r, t) strides over the row by
// t.lane() and t.width() and combines partial results with t.sum and t.max.
// The runtime picks the Row: SerialRow (one thread per row: the host
// emulation, and variant 1 on the GPU) or a thread block per row (variant 2,
// the GPU's default). Reductions run in double, as the CPU reference (package
// kernels) accumulates.
#pragma once

#include "kd_common.h"

// ---------------------------------------------------------------- elementwise

struct SiluFwd {
	Ten out, in;
	KD_HD void operator()(long i) const {
		float x = ld(in, i);
		st(out, i, x / (1.f + expf(-x)));
	}
};

struct SiluBwd {
	Ten dinp, dout, in;
	KD_HD void operator()(long i) const {
		double x = ld(in, i), s = 1 / (1 + exp(-x));
		add(dinp, i, (float)(ld(dout, i) * s * (1 + x * (1 - s))));
	}
};

struct GeluFwd {
	Ten out, in;
	KD_HD void operator()(long i) const {
		double x = ld(in, i);
		st(out, i, (float)(0.5 * x * (1 + erf(x / 1.4142135623730951))));
	}
};

struct GeluBwd {
	Ten dinp, dout, in;
	KD_HD void operator()(long i) const {
		double x = ld(in, i);
		double cdf = 0.5 * (1 + erf(x / 1.4142135623730951)), pdf = 0.3989422804014327 * exp(-0.5 * x * x);
		add(dinp, i, (float)(ld(dout, i) * (cdf + x * pdf)));
	}
};

// kd_keep is kernels.dropoutKeep: the mask is a function of (seed, i) alone.
KD_HD bool kd_keep(uint64_t seed, long i, double p) {
	uint64_t z = seed + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * (1.0 / 9007199254740992.0) >= p;
}

struct DropoutFwd {
	Ten out, in;
	double p;
	uint64_t seed;
	KD_HD void operator()(long i) const {
		if (p <= 0) {
			st(out, i, ld(in, i));
			return;
		}
		float scale = (float)(1 / (1 - p));
		st(out, i, kd_keep(seed, i, p) ? ld(in, i) * scale : 0.f);
	}
};

struct DropoutBwd {
	Ten dinp, dout;
	double p;
	uint64_t seed;
	KD_HD void operator()(long i) const {
		float scale = p <= 0 ? 1.f : (float)(1 / (1 - p));
		if (p <= 0 || kd_keep(seed, i, p)) add(dinp, i, ld(dout, i) * scale);
	}
};

struct AddFwd {
	Ten out, a, b;
	KD_HD void operator()(long i) const { st(out, i, ld(a, i) + ld(b, i)); }
};

struct Accumulate {
	Ten dst, src;
	KD_HD void operator()(long i) const { add(dst, i, ld(src, i)); }
};

struct Fill {
	Ten dst;
	float v;
	KD_HD void operator()(long i) const { st(dst, i, v); }
};

// Cast copies src into dst's element type.
struct Cast {
	Ten dst, src;
	KD_HD void operator()(long i) const { st(dst, i, ld(src, i)); }
};

// Scale multiplies in place.
struct Scale {
	Ten x;
	float c;
	KD_HD void operator()(long i) const { st(x, i, ld(x, i) * c); }
};

// ---------------------------------------------------------------- rows

// SoftmaxFwd: row r of (N,C).
struct SoftmaxFwd {
	Ten out, in;
	long C;
	template <class R> KD_HD void operator()(long r, R &t) const {
		double m = -INFINITY;
		for (long j = t.lane(); j < C; j += t.width()) m = fmax(m, (double)ld(in, r * C + j));
		m = t.max(m);
		double s = 0;
		for (long j = t.lane(); j < C; j += t.width()) s += exp((double)ld(in, r * C + j) - m);
		s = t.sum(s);
		for (long j = t.lane(); j < C; j += t.width()) st(out, r * C + j, (float)(exp((double)ld(in, r * C + j) - m) / s));
	}
};

struct SoftmaxBwd {
	Ten dinp, dout, out;
	long C;
	template <class R> KD_HD void operator()(long r, R &t) const {
		double dot = 0;
		for (long j = t.lane(); j < C; j += t.width()) dot += (double)ld(out, r * C + j) * ld(dout, r * C + j);
		dot = t.sum(dot);
		for (long j = t.lane(); j < C; j += t.width()) add(dinp, r * C + j, (float)(ld(out, r * C + j) * (ld(dout, r * C + j) - dot)));
	}
};

// AttnSoftmax: row r of att (B*NH*Nq, Nk) in place, logits alpha * s_j * l_j
// over the keys the mask keeps (masked keys get 0; an all-masked row is all
// 0), as kernels.softmaxRow.
struct AttnSoftmax {
	Ten att, scale, mask;
	long Nk, perB; // perB = NH*Nq rows per sample
	double alpha;
	template <class R> KD_HD void operator()(long r, R &t) const {
		long b = r / perB;
		double m = -INFINITY;
		for (long j = t.lane(); j < Nk; j += t.width()) {
			if (mask.p && ld(mask, b * Nk + j) == 0) continue;
			double l = alpha * ld(att, r * Nk + j);
			if (scale.p) l *= ld(scale, b * Nk + j);
			m = fmax(m, (double)kd_round(att, (float)l));
		}
		m = t.max(m);
		if (m == -INFINITY) { // every lane sees the same m: the row is all masked
			for (long j = t.lane(); j < Nk; j += t.width()) st(att, r * Nk + j, 0.f);
			return;
		}
		double s = 0;
		for (long j = t.lane(); j < Nk; j += t.width()) {
			if (mask.p && ld(mask, b * Nk + j) == 0) continue;
			double l = alpha * ld(att, r * Nk + j);
			if (scale.p) l *= ld(scale, b * Nk + j);
			s += exp((double)kd_round(att, (float)l) - m);
		}
		s = t.sum(s);
		for (long j = t.lane(); j < Nk; j += t.width()) {
			if (mask.p && ld(mask, b * Nk + j) == 0) {
				st(att, r * Nk + j, 0.f);
				continue;
			}
			double l = alpha * ld(att, r * Nk + j);
			if (scale.p) l *= ld(scale, b * Nk + j);
			st(att, r * Nk + j, (float)(exp((double)kd_round(att, (float)l) - m) / s));
		}
	}
};

// AttnSoftmaxBwd: row r of g (the probabilities' gradient) becomes the
// logits' gradient in place: p * (g - sum(p*g)) * alpha * s_j.
struct AttnSoftmaxBwd {
	Ten g, att, scale;
	long Nk, perB;
	double alpha;
	template <class R> KD_HD void operator()(long r, R &t) const {
		long b = r / perB;
		double dot = 0;
		for (long j = t.lane(); j < Nk; j += t.width()) dot += (double)ld(att, r * Nk + j) * ld(g, r * Nk + j);
		dot = t.sum(dot);
		for (long j = t.lane(); j < Nk; j += t.width()) {
			double d = (double)ld(att, r * Nk + j) * (ld(g, r * Nk + j) - dot) * alpha;
			if (scale.p) d *= ld(scale, b * Nk + j);
			st(g, r * Nk + j, (float)d);
		}
	}
};

// ---------------------------------------------------------------- norms

// NormStats: row r of n contiguous values: mean and 1/sqrt(var + eps), two
// passes in double (biased variance), as kernels.meanRstd. Used by GroupNorm
// (rows = (b, g), n = C/G*HW) and LayerNorm (rows of C).
struct NormStats {
	Ten in, mean, rstd;
	long n;
	double eps;
	template <class R> KD_HD void operator()(long r, R &t) const {
		double s = 0;
		for (long i = t.lane(); i < n; i += t.width()) s += ld(in, r * n + i);
		double m = t.sum(s) / n, ss = 0;
		for (long i = t.lane(); i < n; i += t.width()) {
			double d = ld(in, r * n + i) - m;
			ss += d * d;
		}
		ss = t.sum(ss);
		if (t.lane() == 0) {
			st(mean, r, (float)m);
			st(rstd, r, (float)(1 / sqrt(ss / n + eps)));
		}
	}
};

// GroupNormApply: element i of (B,C,HW) as kernels.GroupNormForward folds it:
// a = rstd*w[c], b = bias[c] - mean*a, y = x*a + b.
struct GroupNormApply {
	Ten out, in, mean, rstd, w, b;
	long C, HW, G;
	KD_HD void operator()(long i) const {
		long c = i / HW % C, bg = i / (C * HW) * G + c / (C / G);
		float a = ld(rstd, bg) * ld(w, c);
		float sh = ld(b, c) - ld(mean, bg) * a;
		st(out, i, ld(in, i) * a + sh);
	}
};

// GroupNormParamGrads: channel c: dw[c] += sum dy*(x-m)*rs, db[c] += sum dy.
struct GroupNormParamGrads {
	Ten dw, db, dout, in, mean, rstd;
	long B, C, HW, G;
	template <class R> KD_HD void operator()(long c, R &t) const {
		double sw = 0, sb = 0;
		for (long k = t.lane(); k < B * HW; k += t.width()) {
			long b = k / HW, bg = b * G + c / (C / G), o = (b * C + c) * HW + k % HW;
			double g = ld(dout, o);
			sw += g * (ld(in, o) - ld(mean, bg)) * ld(rstd, bg);
			sb += g;
		}
		sw = t.sum(sw);
		sb = t.sum(sb);
		if (t.lane() == 0) {
			add(dw, c, (float)sw);
			add(db, c, (float)sb);
		}
	}
};

// GroupNormInputGrads: group bg: dx = rstd * (d - mean(d) - xhat * mean(d*xhat)),
// d = dout * w.
struct GroupNormInputGrads {
	Ten dinp, dout, in, w, mean, rstd;
	long C, HW, G;
	template <class R> KD_HD void operator()(long bg, R &t) const {
		long cg = C / G, n = cg * HW, c0 = (bg % G) * cg;
		double m = ld(mean, bg), rs = ld(rstd, bg), sdx = 0, sdxx = 0;
		for (long i = t.lane(); i < n; i += t.width()) {
			double d = (double)ld(dout, bg * n + i) * ld(w, c0 + i / HW);
			sdx += d;
			sdxx += d * (ld(in, bg * n + i) - m) * rs;
		}
		sdx = t.sum(sdx) / n;
		sdxx = t.sum(sdxx) / n;
		for (long i = t.lane(); i < n; i += t.width()) {
			double xhat = (ld(in, bg * n + i) - m) * rs;
			double d = (double)ld(dout, bg * n + i) * ld(w, c0 + i / HW);
			add(dinp, bg * n + i, (float)(rs * (d - sdx - xhat * sdxx)));
		}
	}
};

// LayerNormApply: element i of (N,C): y = float((x-m)*rs)*w + b.
struct LayerNormApply {
	Ten out, in, mean, rstd, w, b;
	long C;
	KD_HD void operator()(long i) const {
		long r = i / C, c = i % C;
		float xn = (float)(((double)ld(in, i) - ld(mean, r)) * ld(rstd, r));
		st(out, i, xn * ld(w, c) + ld(b, c));
	}
};

struct LayerNormParamGrads {
	Ten dw, db, dout, in, mean, rstd;
	long N, C;
	template <class R> KD_HD void operator()(long c, R &t) const {
		double sw = 0, sb = 0;
		for (long r = t.lane(); r < N; r += t.width()) {
			double g = ld(dout, r * C + c);
			sw += g * (ld(in, r * C + c) - ld(mean, r)) * ld(rstd, r);
			sb += g;
		}
		sw = t.sum(sw);
		sb = t.sum(sb);
		if (t.lane() == 0) {
			add(dw, c, (float)sw);
			add(db, c, (float)sb);
		}
	}
};

struct LayerNormInputGrads {
	Ten dinp, dout, in, w, mean, rstd;
	long C;
	template <class R> KD_HD void operator()(long r, R &t) const {
		double m = ld(mean, r), rs = ld(rstd, r), sdx = 0, sdxx = 0;
		for (long i = t.lane(); i < C; i += t.width()) {
			double d = (double)ld(dout, r * C + i) * ld(w, i);
			sdx += d;
			sdxx += d * (ld(in, r * C + i) - m) * rs;
		}
		sdx = t.sum(sdx) / C;
		sdxx = t.sum(sdxx) / C;
		for (long i = t.lane(); i < C; i += t.width()) {
			double d = (double)ld(dout, r * C + i) * ld(w, i);
			add(dinp, r * C + i, (float)(rs * (d - sdx - (ld(in, r * C + i) - m) * rs * sdxx)));
		}
	}
};

// ---------------------------------------------------------------- layout

// BiasRows: out (B, rows, n) element i += bias[row].
struct BiasRows {
	Ten out, bias;
	long rows, n;
	KD_HD void operator()(long i) const { add(out, i, ld(bias, i / n % rows)); }
};

// SumRows: dst[r] += sum over b, i of m[b, r, i] for m (B, rows, n).
struct SumRows {
	Ten dst, m;
	long B, rows, n;
	template <class R> KD_HD void operator()(long r, R &t) const {
		double s = 0;
		for (long k = t.lane(); k < B * n; k += t.width()) s += ld(m, (k / n * rows + r) * n + k % n);
		s = t.sum(s);
		if (t.lane() == 0) add(dst, r, (float)s);
	}
};

// Permute: out (A,C,B,D) element i = in (A,B,C,D).
struct Permute {
	Ten out, in;
	long A, B, C, D;
	KD_HD void operator()(long i) const {
		long d = i % D, b = i / D % B, c = i / (D * B) % C, a = i / (D * B * C);
		st(out, i, ld(in, ((a * B + b) * C + c) * D + d));
	}
};

// PermuteBwd: dinp (A,B,C,D) element i += dout (A,C,B,D).
struct PermuteBwd {
	Ten dinp, dout;
	long A, B, C, D;
	KD_HD void operator()(long i) const {
		long d = i % D, c = i / D % C, b = i / (D * C) % B, a = i / (D * C * B);
		add(dinp, i, ld(dout, ((a * C + c) * B + b) * D + d));
	}
};

// Concat: out (B, C1+C2, HW) element i from a (B,C1,HW) or b (B,C2,HW).
struct Concat {
	Ten out, a, b;
	long C1, C2, HW;
	KD_HD void operator()(long i) const {
		long n1 = C1 * HW, n = (C1 + C2) * HW, s = i / n, j = i % n;
		st(out, i, j < n1 ? ld(a, s * n1 + j) : ld(b, s * C2 * HW + j - n1));
	}
};

struct ConcatBwd {
	Ten da, db, dout;
	long C1, C2, HW;
	KD_HD void operator()(long i) const {
		long n1 = C1 * HW, n = (C1 + C2) * HW, s = i / n, j = i % n;
		if (j < n1) {
			if (da.p) add(da, s * n1 + j, ld(dout, i));
		} else if (db.p) {
			add(db, s * C2 * HW + j - n1, ld(dout, i));
		}
	}
};

// Upsample: out (N,2H,2W) element i = in (N,H,W) at (y/2, x/2).
struct Upsample {
	Ten out, in;
	long H, W;
	KD_HD void operator()(long i) const {
		long x = i % (2 * W), y = i / (2 * W) % (2 * H), n = i / (4 * H * W);
		st(out, i, ld(in, (n * H + y / 2) * W + x / 2));
	}
};

struct UpsampleBwd {
	Ten dinp, dout;
	long H, W;
	KD_HD void operator()(long i) const {
		long x = i % W, y = i / W % H, n = i / (H * W), W2 = 2 * W;
		long o = (n * 2 * H + 2 * y) * W2 + 2 * x;
		add(dinp, i, ld(dout, o) + ld(dout, o + 1) + ld(dout, o + W2) + ld(dout, o + W2 + 1));
	}
};

// Pool: out (N,H/2,W/2) element i = the mean of its 2x2 block of in (N,H,W).
struct Pool {
	Ten out, in;
	long H, W;
	KD_HD void operator()(long i) const {
		long ow = W / 2, oh = H / 2, x = i % ow, y = i / ow % oh, n = i / (ow * oh);
		long o = (n * H + 2 * y) * W + 2 * x;
		st(out, i, (ld(in, o) + ld(in, o + 1) + ld(in, o + W) + ld(in, o + W + 1)) * 0.25f);
	}
};

// PoolBwd: dinp (N,H,W) element i += dout/4 of its block (odd edges get none).
struct PoolBwd {
	Ten dinp, dout;
	long H, W;
	KD_HD void operator()(long i) const {
		long ow = W / 2, oh = H / 2, x = i % W, y = i / W % H, n = i / (H * W);
		if (x / 2 >= ow || y / 2 >= oh) return;
		add(dinp, i, ld(dout, (n * oh + y / 2) * ow + x / 2) * 0.25f);
	}
};

// ScaleShift: out (B,C,HW) element i = x * (1 + scale[bc]) + shift[bc].
struct ScaleShift {
	Ten out, in, scale, shift;
	long HW;
	KD_HD void operator()(long i) const {
		long bc = i / HW;
		float a = 1.f;
		if (scale.p) a += ld(scale, bc);
		st(out, i, ld(in, i) * a + ld(shift, bc));
	}
};

// ScaleShiftBwd: row bc: dshift += sum dy, dscale += sum dy*x, dinp += dy*a.
struct ScaleShiftBwd {
	Ten dinp, dscale, dshift, dout, in, scale;
	long HW;
	template <class R> KD_HD void operator()(long bc, R &t) const {
		float a = 1.f;
		if (scale.p) a += ld(scale, bc);
		double ds = 0, dt = 0;
		for (long p = t.lane(); p < HW; p += t.width()) {
			double g = ld(dout, bc * HW + p);
			dt += g;
			if (dscale.p) ds += g * ld(in, bc * HW + p);
			if (dinp.p) add(dinp, bc * HW + p, ld(dout, bc * HW + p) * a);
		}
		dt = t.sum(dt);
		ds = t.sum(ds);
		if (t.lane() == 0) {
			add(dshift, bc, (float)dt);
			if (dscale.p) add(dscale, bc, (float)ds);
		}
	}
};

// ---------------------------------------------------------------- embeddings

struct EmbedFwd {
	Ten out, table;
	const int32_t *tok; // device copy of the token ids
	long C;
	KD_HD void operator()(long i) const { st(out, i, ld(table, (long)tok[i / C] * C + i % C)); }
};

// EmbedBwd: column j of dtable: every token adds its row (tokens repeat, so
// the work is split by column, as on the CPU).
struct EmbedBwd {
	Ten dtable, dout;
	const int32_t *tok;
	long N, C;
	KD_HD void operator()(long j) const {
		for (long i = 0; i < N; i++) add(dtable, (long)tok[i] * C + j, ld(dout, i * C + j));
	}
};

// Timestep: element (b, i) of GLIDE's sinusoidal embedding, with the
// frequency and argument rounded to float32 as kernels.TimestepEmbedding.
struct Timestep {
	Ten out, t;
	long dim;
	double maxPeriod;
	KD_HD void operator()(long i) const {
		long b = i / dim, k = i % dim, half = dim / 2;
		if (k >= 2 * half) {
			st(out, i, 0.f);
			return;
		}
		long f = k < half ? k : k - half;
		float freq = (float)exp(-log(maxPeriod) * (double)(float)f / (double)half);
		double arg = (double)(ld(t, b) * freq);
		st(out, i, (float)(k < half ? cos(arg) : sin(arg)));
	}
};

// ---------------------------------------------------------------- convolution

// Im2col: col (g, C*K*K, OH*OW) element i from x (g,C,H,W), 0 in the padding.
struct Im2col {
	Ten col, x;
	long C, H, W, K, S, P, OH, OW;
	KD_HD void operator()(long i) const {
		long ohw = OH * OW, ckk = C * K * K;
		long pix = i % ohw, r = i / ohw % ckk, s = i / (ohw * ckk);
		long c = r / (K * K), ki = r / K % K, kj = r % K;
		long ih = pix / OW * S - P + ki, iw = pix % OW * S - P + kj;
		float v = 0.f;
		if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = ld(x, ((s * C + c) * H + ih) * W + iw);
		st(col, i, v);
	}
};

// Col2im: dx (g,C,H,W) element i += the col entries that read it.
struct Col2im {
	Ten dx, col;
	long C, H, W, K, S, P, OH, OW;
	KD_HD void operator()(long i) const {
		long iw = i % W, ih = i / W % H, c = i / (W * H) % C, s = i / (W * H * C);
		long ohw = OH * OW, ckk = C * K * K;
		double acc = 0;
		for (long ki = 0; ki < K; ki++) {
			long y = ih + P - ki;
			if (y < 0 || y % S) continue;
			long oh = y / S;
			if (oh >= OH) continue;
			for (long kj = 0; kj < K; kj++) {
				long x = iw + P - kj;
				if (x < 0 || x % S) continue;
				long ow = x / S;
				if (ow >= OW) continue;
				acc += ld(col, (s * ckk + (c * K + ki) * K + kj) * ohw + oh * OW + ow);
			}
		}
		add(dx, i, (float)acc);
	}
};

// ---------------------------------------------------------------- loss, optimiser

// MSEPart: sample b's sum of W*(eps - epsHat)^2 (double).
struct MSEPart {
	Ten epsHat, eps, w;
	double *part;
	long C, HW;
	template <class R> KD_HD void operator()(long b, R &t) const {
		double s = 0;
		for (long k = t.lane(); k < C * HW; k += t.width()) {
			long o = b * C * HW + k;
			double d = (double)ld(eps, o) - ld(epsHat, o);
			s += w.p ? d * d * ld(w, b * HW + k % HW) : d * d;
		}
		s = t.sum(s);
		if (t.lane() == 0) part[b] = s;
	}
};

struct MSEBwd {
	Ten dEpsHat, epsHat, eps, w;
	double k;
	long C, HW;
	KD_HD void operator()(long i) const {
		double g = k * ((double)ld(epsHat, i) - ld(eps, i));
		if (w.p) g *= ld(w, i / (C * HW) * HW + i % HW);
		add(dEpsHat, i, (float)g);
	}
};

// SumSqPart: chunk c of the squares of x (double), fixed chunks.
struct SumSqPart {
	Ten x;
	double *part;
	long n, chunks;
	template <class R> KD_HD void operator()(long c, R &t) const {
		double s = 0;
		for (long i = c * n / chunks + t.lane(); i < (c + 1) * n / chunks; i += t.width()) {
			double v = ld(x, i);
			s += v * v;
		}
		s = t.sum(s);
		if (t.lane() == 0) part[c] = s;
	}
};

// AdamW: element i, the float32 operations of kernels.AdamWUpdate.
struct AdamW {
	Ten p, g, m, v;
	float b1, b2, decay, stepSize, bc2Sqrt, eps;
	KD_HD void operator()(long i) const {
		float gi = ld(g, i);
		float mi = b1 * ld(m, i) + (1 - b1) * gi;
		float vi = b2 * ld(v, i) + (1 - b2) * gi * gi;
		st(m, i, mi);
		st(v, i, vi);
		float denom = (float)sqrt((double)vi) / bc2Sqrt + eps;
		st(p, i, ld(p, i) * decay - stepSize * (mi / denom));
	}
};

// EMA: ema = d*ema + (1-d)*x.
struct EMA {
	Ten ema, x;
	float d;
	KD_HD void operator()(long i) const { st(ema, i, d * ld(ema, i) + (1 - d) * ld(x, i)); }
};
