//go:build cgo

package imaging

/*
#cgo CFLAGS: -O3
#include <stdint.h>

// The resampling passes in C so that the compiler can vectorise them; they
// compute exactly what hpass and vpass in resize.go compute.

static inline uint8_t kd_clamp8(int32_t v) {
	v >>= 22;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static void kd_vpass(const uint8_t *restrict src, long srcStride, long colOff, int rowBase,
		const int32_t *start, const int32_t *cnt, const int32_t *w, int n, int dstLen,
		int32_t *restrict acc, uint8_t *restrict dst, long dstStride, int width) {
	for (int i = 0; i < dstLen; i++) {
		for (int j = 0; j < width; j++) acc[j] = 1 << 21;
		const int32_t *ws = w + (long)i * n;
		int s = start[i] - rowBase, c = cnt[i];
		for (int t = 0; t < c; t++) {
			const uint8_t *restrict row = src + (long)(s + t) * srcStride + colOff;
			int32_t wt = ws[t];
			for (int j = 0; j < width; j++) acc[j] += (int32_t)row[j] * wt;
		}
		uint8_t *restrict out = dst + (long)i * dstStride;
		for (int j = 0; j < width; j++) out[j] = kd_clamp8(acc[j]);
	}
}

static void kd_hpass(const uint8_t *restrict src, long srcStride, int r0, int r1, int base,
		const int32_t *start, const int32_t *cnt, const int32_t *w, int n, int dstLen,
		uint8_t *restrict dst, long dstStride) {
	for (int y = r0; y < r1; y++) {
		const uint8_t *row = src + (long)y * srcStride;
		uint8_t *out = dst + (long)(y - r0) * dstStride;
		for (int i = 0; i < dstLen; i++) {
			const uint8_t *px = row + (long)(start[i] - base) * 3;
			const int32_t *ws = w + (long)i * n;
			int32_t r = 1 << 21, g = 1 << 21, b = 1 << 21;
			for (int t = 0, c = cnt[i]; t < c; t++) {
				int32_t wt = ws[t];
				r += (int32_t)px[3 * t] * wt;
				g += (int32_t)px[3 * t + 1] * wt;
				b += (int32_t)px[3 * t + 2] * wt;
			}
			out[3 * i] = kd_clamp8(r);
			out[3 * i + 1] = kd_clamp8(g);
			out[3 * i + 2] = kd_clamp8(b);
		}
	}
}
*/
import "C"

import "unsafe"

const haveCPasses = true

func u8p(b []byte) *C.uint8_t   { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }
func i32p(b []int32) *C.int32_t { return (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(b))) }

// vpassC is vpass in C. Bounds are the caller's duty, as in vpass (which
// would panic where this would read out of range): resample only passes
// kernels built for these buffers.
func vpassC(src []byte, srcStride, colOff, rowBase int, k *kernel, acc []int32, dst []byte, dstStride, n int) {
	C.kd_vpass(u8p(src), C.long(srcStride), C.long(colOff), C.int(rowBase),
		i32p(k.start), i32p(k.cnt), i32p(k.w), C.int(k.n), C.int(k.dstLen),
		i32p(acc), u8p(dst), C.long(dstStride), C.int(n))
}

// hpassC is hpass in C.
func hpassC(src []byte, srcStride, r0, r1, base int, k *kernel, dst []byte, dstStride int) {
	C.kd_hpass(u8p(src), C.long(srcStride), C.int(r0), C.int(r1), C.int(base),
		i32p(k.start), i32p(k.cnt), i32p(k.w), C.int(k.n), C.int(k.dstLen),
		u8p(dst), C.long(dstStride))
}
