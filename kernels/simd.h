// Float32 elementwise kernels, written as plain loops for the C compiler to
// vectorise. simd.c includes this file once per instruction set with KD_FN
// (the name suffix) and KD_ATTR (the target attribute) defined; see simd.c.
// No include guard on purpose.

KD_ATTR static void KD_FN(kd_silu_fwd)(float *out, const float *in, long n) {
	for (long i = 0; i < n; i++) {
		float x = in[i];
		out[i] = x / (1.0f + kd_expf(-x));
	}
}

// dinp += dout * s * (1 + x*(1-s)), s = sigmoid(x) = 1/(1+e), e = exp(-x),
// with 1-s as e*s for x > 0, where 1-s would round away.
KD_ATTR static void KD_FN(kd_silu_bwd)(float *dinp, const float *dout, const float *in, long n) {
	for (long i = 0; i < n; i++) {
		float x = in[i];
		float e = kd_expf(-x);
		float s = 1.0f / (1.0f + e);
		float oms = x > 0 ? e * s : 1.0f - s;
		dinp[i] += dout[i] * (s * (1.0f + x * oms));
	}
}

// out = x * Phi(x)
KD_ATTR static void KD_FN(kd_gelu_fwd)(float *out, const float *in, long n) {
	for (long i = 0; i < n; i++) {
		float x = in[i];
		out[i] = x * kd_phi(x);
	}
}

// dinp += dout * (Phi(x) + x*phi(x))
KD_ATTR static void KD_FN(kd_gelu_bwd)(float *dinp, const float *dout, const float *in, long n) {
	for (long i = 0; i < n; i++) {
		float x = in[i];
		float pdf = 0.398942280401432678f * kd_expf(-0.5f * x * x);
		dinp[i] += dout[i] * (kd_phi(x) + x * pdf);
	}
}

// y[j] = exp(y[j] - m), returning the sum in float64 (softmax rows).
KD_ATTR static double KD_FN(kd_exp_shift)(float *y, long n, float m) {
	double sum = 0;
#pragma omp simd reduction(+ : sum)
	for (long j = 0; j < n; j++) {
		float e = kd_expf(y[j] - m);
		y[j] = e;
		sum += e;
	}
	return sum;
}

// im2col rows [r0, r1) of the (g*C*K*K) rows (sample-major, as conv.go's
// im2col): col[(c*K+ki)*K+kj, i*OH*OW + oh*OW+ow] = x[i, c, oh*S-P+ki, ow*S-P+kj].
KD_ATTR static void KD_FN(kd_im2col)(float *col, const float *x, const long *sh, long r0, long r1) {
	long g = sh[0], C = sh[1], H = sh[2], W = sh[3], K = sh[4], S = sh[5], P = sh[6], OH = sh[7], OW = sh[8];
	long kk = K * K, ohw = OH * OW, ld = g * ohw, ckk = C * kk;
	for (long ir = r0; ir < r1; ir++) {
		long i = ir / ckk, r = ir % ckk;
		long c = r / kk, ki = r % kk / K, kj = r % K;
		const float *plane = x + (i * C + c) * H * W;
		float *dst = col + r * ld + i * ohw;
		long lo, hi;
		kd_ow_range(W, S, P, kj, OW, &lo, &hi);
		for (long y = 0; y < OH; y++) {
			float *row = dst + y * OW;
			long ih = y * S - P + ki;
			if (ih < 0 || ih >= H) {
				memset(row, 0, OW * sizeof(float));
				continue;
			}
			for (long xo = 0; xo < lo; xo++) row[xo] = 0;
			for (long xo = hi; xo < OW; xo++) row[xo] = 0;
			const float *src = plane + ih * W;
			if (S == 1) {
				for (long xo = lo; xo < hi; xo++) row[xo] = src[xo - P + kj];
			} else {
				for (long xo = lo; xo < hi; xo++) row[xo] = src[xo * S - P + kj];
			}
		}
	}
}

// col2im over (sample, channel) planes [p0, p1): the adjoint of kd_im2col,
// dx[i, c, ih, iw] += col[row, i*OH*OW + oh*OW+ow].
KD_ATTR static void KD_FN(kd_col2im)(float *dx, const float *col, const long *sh, long p0, long p1) {
	long g = sh[0], C = sh[1], H = sh[2], W = sh[3], K = sh[4], S = sh[5], P = sh[6], OH = sh[7], OW = sh[8];
	long kk = K * K, ohw = OH * OW, ld = g * ohw;
	for (long ic = p0; ic < p1; ic++) {
		long i = ic / C, c = ic % C;
		float *plane = dx + ic * H * W;
		for (long k = 0; k < kk; k++) {
			long ki = k / K, kj = k % K;
			const float *src = col + (c * kk + k) * ld + i * ohw;
			long lo, hi;
			kd_ow_range(W, S, P, kj, OW, &lo, &hi);
			for (long y = 0; y < OH; y++) {
				long ih = y * S - P + ki;
				if (ih < 0 || ih >= H) continue;
				float *d = plane + ih * W;
				const float *row = src + y * OW;
				if (S == 1) {
					for (long xo = lo; xo < hi; xo++) d[xo - P + kj] += row[xo];
				} else {
					for (long xo = lo; xo < hi; xo++) d[xo * S - P + kj] += row[xo];
				}
			}
		}
	}
}

// GroupNorm forward over groups [bg0, bg1) of n = cg*HW elements: norm.go's
// GroupNormForward (float64 statistics, affine folded into one multiply-add).
KD_ATTR static void KD_FN(kd_groupnorm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                            const float *b, const long *sh, double eps, long bg0, long bg1) {
	long G = sh[0], cg = sh[1], HW = sh[2], n = cg * HW;
	for (long bg = bg0; bg < bg1; bg++) {
		const float *x = inp + bg * n;
		float *y = out + bg * n;
		double s = 0;
#pragma omp simd reduction(+ : s)
		for (long i = 0; i < n; i++) s += x[i];
		double m = s / n, ss = 0;
#pragma omp simd reduction(+ : ss)
		for (long i = 0; i < n; i++) {
			double d = x[i] - m;
			ss += d * d;
		}
		double rs = 1 / __builtin_sqrt(ss / n + eps);
		mean[bg] = (float)m;
		rstd[bg] = (float)rs;
		long c0 = (bg % G) * cg;
		for (long ci = 0; ci < cg; ci++) {
			float a = (float)rs * w[c0 + ci];
			float bb = b[c0 + ci] - (float)m * a;
			const float *xs = x + ci * HW;
			float *ys = y + ci * HW;
			for (long i = 0; i < HW; i++) ys[i] = xs[i] * a + bb;
		}
	}
}

// GroupNorm weight and bias gradients for channels [c0, c1), summed over the
// batch in float64 (norm.go's GroupNormBackward, first loop).
KD_ATTR static void KD_FN(kd_groupnorm_bwd_params)(float *dw, float *db, const float *dout, const float *inp,
                                                   const float *mean, const float *rstd, const long *sh, long c0, long c1) {
	long G = sh[0], cg = sh[1], HW = sh[2], B = sh[3], C = G * cg;
	for (long c = c0; c < c1; c++) {
		double sw = 0, sb = 0;
		for (long b = 0; b < B; b++) {
			long bg = b * G + c / cg;
			double m = mean[bg], rs = rstd[bg];
			const float *dy = dout + (b * C + c) * HW, *x = inp + (b * C + c) * HW;
			double tw = 0, tb = 0;
#pragma omp simd reduction(+ : tw, tb)
			for (long i = 0; i < HW; i++) {
				tw += (double)dy[i] * ((double)x[i] - m);
				tb += dy[i];
			}
			sw += tw * rs;
			sb += tb;
		}
		dw[c] += (float)sw;
		db[c] += (float)sb;
	}
}

// GroupNorm input gradient over groups [bg0, bg1) (norm.go's second loop):
// dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat*xhat)), dxhat = dout*w.
KD_ATTR static void KD_FN(kd_groupnorm_bwd_input)(float *dinp, const float *dout, const float *inp, const float *w,
                                                  const float *mean, const float *rstd, const long *sh, long bg0, long bg1) {
	long G = sh[0], cg = sh[1], HW = sh[2], n = cg * HW;
	for (long bg = bg0; bg < bg1; bg++) {
		double m = mean[bg], rs = rstd[bg];
		long c0 = (bg % G) * cg;
		const float *x = inp + bg * n, *dy = dout + bg * n;
		float *dx = dinp + bg * n;
		double sdx = 0, sdxx = 0;
		for (long ci = 0; ci < cg; ci++) {
			double wc = w[c0 + ci], tx = 0, txx = 0;
			const float *xs = x + ci * HW, *dys = dy + ci * HW;
#pragma omp simd reduction(+ : tx, txx)
			for (long i = 0; i < HW; i++) {
				tx += dys[i];
				txx += (double)dys[i] * ((double)xs[i] - m);
			}
			sdx += tx * wc;
			sdxx += txx * wc;
		}
		sdx /= n;
		sdxx = sdxx * rs / n;
		for (long ci = 0; ci < cg; ci++) {
			double wc = w[c0 + ci];
			const float *xs = x + ci * HW, *dys = dy + ci * HW;
			float *dxs = dx + ci * HW;
			for (long i = 0; i < HW; i++) {
				double xhat = ((double)xs[i] - m) * rs;
				dxs[i] += (float)(rs * ((double)dys[i] * wc - sdx - xhat * sdxx));
			}
		}
	}
}

// Attention softmax over rows [r0, r1) of att (rows, Nk), in place:
// att = softmax(alpha * scale[b,j] * att[j]) over keys with mask[b,j] != 0,
// b = row / rpb; scale and mask may be NULL. attention.go's softmaxRow.
KD_ATTR static void KD_FN(kd_attn_softmax)(float *att, const float *scale, const float *mask, double alpha,
                                           long Nk, long rpb, long r0, long r1) {
	for (long r = r0; r < r1; r++) {
		float *y = att + r * Nk;
		long b = r / rpb;
		const float *sc = scale ? scale + b * Nk : 0, *mk = mask ? mask + b * Nk : 0;
		if (sc) {
			for (long j = 0; j < Nk; j++) y[j] = (float)(alpha * y[j] * sc[j]);
		} else {
			for (long j = 0; j < Nk; j++) y[j] = (float)(alpha * y[j]);
		}
		if (mk) {
			for (long j = 0; j < Nk; j++) y[j] = mk[j] == 0 ? -__builtin_inff() : y[j];
		}
		float m = -__builtin_inff();
#pragma omp simd reduction(max : m)
		for (long j = 0; j < Nk; j++) m = y[j] > m ? y[j] : m;
		if (m == -__builtin_inff()) {
			memset(y, 0, Nk * sizeof(float));
			continue;
		}
		double sum = KD_FN(kd_exp_shift)(y, Nk, m);
		float inv = (float)(1 / sum);
		for (long j = 0; j < Nk; j++) y[j] *= inv;
	}
}

// Attention softmax backward over rows [r0, r1), in place on g (the gradient
// of the probabilities p): g = p * (g - sum_j p_j g_j) * alpha * scale[b,j].
KD_ATTR static void KD_FN(kd_attn_softmax_bwd)(float *g, const float *att, const float *scale, double alpha,
                                               long Nk, long rpb, long r0, long r1) {
	for (long r = r0; r < r1; r++) {
		float *gr = g + r * Nk;
		const float *p = att + r * Nk;
		const float *sc = scale ? scale + (r / rpb) * Nk : 0;
		double dot = 0;
#pragma omp simd reduction(+ : dot)
		for (long j = 0; j < Nk; j++) dot += (double)p[j] * gr[j];
		if (sc) {
			for (long j = 0; j < Nk; j++) gr[j] = (float)((double)p[j] * (gr[j] - dot) * alpha * sc[j]);
		} else {
			for (long j = 0; j < Nk; j++) gr[j] = (float)((double)p[j] * (gr[j] - dot) * alpha);
		}
	}
}

// Permute (A,B,C,D) -> (A,C,B,D) for the output rows ac in [lo, hi) of A*C.
// With D = 1 it is a transpose of each (B,C) matrix, done 16 output rows at
// a time so that every input cache line is read once.
KD_ATTR static void KD_FN(kd_permute0213)(float *out, const float *inp, const long *sh, long lo, long hi) {
	long B = sh[1], C = sh[2], D = sh[3];
	if (D == 1) {
		for (long ac = lo; ac < hi;) {
			long a = ac / C, c = ac % C, n = C - c;
			n = n < hi - ac ? n : hi - ac;
			n = n < 16 ? n : 16;
			const float *in = inp + a * B * C + c;
			float *o = out + ac * B;
			for (long b = 0; b < B; b++)
				for (long k = 0; k < n; k++) o[k * B + b] = in[b * C + k];
			ac += n;
		}
		return;
	}
	for (long ac = lo; ac < hi; ac++) {
		long a = ac / C, c = ac % C;
		float *o = out + ac * B * D;
		const float *in = inp + (a * B * C + c) * D;
		for (long b = 0; b < B; b++) memcpy(o + b * D, in + b * C * D, D * sizeof(float));
	}
}

// Permute0213's adjoint, accumulating: dinp (A,B,C,D) += dout (A,C,B,D),
// for the dinp rows ab in [lo, hi) of A*B (D = 1: 16 rows at a time).
KD_ATTR static void KD_FN(kd_permute0213_bwd)(float *dinp, const float *dout, const long *sh, long lo, long hi) {
	long B = sh[1], C = sh[2], D = sh[3];
	if (D == 1) {
		for (long ab = lo; ab < hi;) {
			long a = ab / B, b = ab % B, n = B - b;
			n = n < hi - ab ? n : hi - ab;
			n = n < 16 ? n : 16;
			float *d = dinp + ab * C;
			const float *g = dout + a * C * B + b;
			for (long c = 0; c < C; c++)
				for (long k = 0; k < n; k++) d[k * C + c] += g[c * B + k];
			ab += n;
		}
		return;
	}
	for (long ab = lo; ab < hi; ab++) {
		long a = ab / B, b = ab % B;
		float *d = dinp + ab * C * D;
		const float *g = dout + (a * C * B + b) * D;
		for (long c = 0; c < C; c++) {
			float *dc = d + c * D;
			const float *gc = g + c * B * D;
			for (long i = 0; i < D; i++) dc[i] += gc[i];
		}
	}
}

// Sum of squares in float64 over [lo, hi) (ClipGradNorm).
KD_ATTR static double KD_FN(kd_sumsq)(const float *x, long lo, long hi) {
	double s = 0;
#pragma omp simd reduction(+ : s)
	for (long i = lo; i < hi; i++) s += (double)x[i] * x[i];
	return s;
}

// out[i] = a[i] + b[i] over [0, n) (AddForward).
KD_ATTR static void KD_FN(kd_add)(float *out, const float *a, const float *b, long n) {
	for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// dst[i] += src[i] over [0, n) (Accumulate).
KD_ATTR static void KD_FN(kd_acc)(float *dst, const float *src, long n) {
	for (long i = 0; i < n; i++) dst[i] += src[i];
}

// x[i] *= c over [0, n) (ClipGradNorm's scaling).
KD_ATTR static void KD_FN(kd_scale)(float *x, float c, long n) {
	for (long i = 0; i < n; i++) x[i] *= c;
}
