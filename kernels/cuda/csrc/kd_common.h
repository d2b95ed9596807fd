// kd_common.h: what every kediff CUDA kernel shares, on the device and in the
// host emulation alike (this header compiles with nvcc and with a plain C++
// compiler): element types, bf16 conversion, typed loads and stores.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define KD_HD __host__ __device__ __forceinline__
#else
#define KD_HD inline
#endif

// Element types of a buffer (kernels.Purpose picks them: parameters,
// gradients, moments and statistics are fp32; activations are bf16 in bf16
// precision).
enum { KD_F32 = 0, KD_BF16 = 1 };

static inline size_t kd_size(int dt) { return dt == KD_BF16 ? 2 : 4; }

// Device memory accounting (buffers and scratch), for kd_mem.
inline long long kd_mem_live = 0, kd_mem_peak = 0;
inline void kd_mem_add(long long bytes) {
	kd_mem_live += bytes;
	if (kd_mem_live > kd_mem_peak) kd_mem_peak = kd_mem_live;
}

// Ten is a resolved buffer argument: its real address (device memory, or host
// memory in the emulation) and element type. p is NULL for an absent optional
// argument.
struct Ten {
	void *p;
	int dt;
};

KD_HD float kd_u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
	return __uint_as_float(u);
#else
	float f;
	memcpy(&f, &u, 4);
	return f;
#endif
}

KD_HD uint32_t kd_f2u(float f) {
#ifdef __CUDA_ARCH__
	return __float_as_uint(f);
#else
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
#endif
}

// bf16 is the upper half of an IEEE float; float -> bf16 rounds to nearest
// even, and keeps NaN a (quiet) NaN.
KD_HD float kd_bf2f(uint16_t h) { return kd_u2f((uint32_t)h << 16); }

KD_HD uint16_t kd_f2bf(float f) {
	uint32_t u = kd_f2u(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

KD_HD float ld(Ten t, long i) {
	return t.dt == KD_BF16 ? kd_bf2f(((const uint16_t *)t.p)[i]) : ((const float *)t.p)[i];
}

KD_HD void st(Ten t, long i, float v) {
	if (t.dt == KD_BF16)
		((uint16_t *)t.p)[i] = kd_f2bf(v);
	else
		((float *)t.p)[i] = v;
}

// add is +=, as every backward kernel accumulates into its gradients.
KD_HD void add(Ten t, long i, float v) { st(t, i, ld(t, i) + v); }

// kd_round rounds v to t's precision (what storing and loading it would give).
KD_HD float kd_round(Ten t, float v) { return t.dt == KD_BF16 ? kd_bf2f(kd_f2bf(v)) : v; }

// SerialRow is a row kernel's Row (kd_ops.h) when one thread does the whole
// row: lane 0 of width 1, and combining partial results is the identity.
struct SerialRow {
	KD_HD long lane() const { return 0; }
	KD_HD long width() const { return 1; }
	KD_HD double sum(double v) { return v; }
	KD_HD double max(double v) { return v; }
};

// Kernel variants (llm.c's numbered versions): kd_set_variant picks one per
// family at run time, so kediff kernels check and bench can run each. rows:
// 1 = one thread per row, 2 = a thread block per row (the GPU's default; the
// host emulation runs 1 by default and emulates 2 with host threads).
enum { KD_VAR_ROWS = 0, KD_VAR_COUNT };
#ifndef KD_ROWS_DEFAULT
#define KD_ROWS_DEFAULT 2
#endif
inline int kd_variants[KD_VAR_COUNT] = {KD_ROWS_DEFAULT};
