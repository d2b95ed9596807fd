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
