//go:build cgo

package imaging

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Resampling passes over one 8-bit plane with 14-bit weights (kernel.w16,
// n8 per output). SSE2 is part of x86-64, so no run-time dispatch is
// needed; pmaddwd does two 16-bit products and their sum per 32-bit lane.
// Elsewhere the scalar loops compute the same values.

static inline uint8_t kd_round14(int32_t v) {
	v = (v + (1 << 13)) >> 14;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

// kd_vpass8: output row i, columns [0, width), is the weighted sum of the
// source rows start[i].., from byte colOff.
static void kd_vpass8(const uint8_t *src, long stride, long colOff,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride, int width) {
	for (int i = 0; i < dstLen; i++) {
		const int16_t *ws = w + (long)i * n8;
		const uint8_t *base = src + (long)start[i] * stride + colOff;
		uint8_t *out = dst + (long)i * dstStride;
		int c = cnt[i], j = 0;
#if defined(__SSE2__)
		const __m128i zero = _mm_setzero_si128(), half = _mm_set1_epi32(1 << 13);
		for (; j + 16 <= width; j += 16) {
			__m128i a0 = half, a1 = half, a2 = half, a3 = half;
			for (int t = 0; t < c; t += 2) {
				// Rows t and t+1 interleaved bytewise, widened to 16 bits:
				// (r0[k], r1[k]) pairs that pmaddwd weighs with (w0, w1).
				// An odd last tap pairs its row with itself at weight 0.
				int t1 = t + 1 < c ? t + 1 : t;
				int32_t w1 = t + 1 < c ? ws[t + 1] : 0;
				__m128i wp = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)ws[t] | ((uint32_t)(uint16_t)w1 << 16)));
				__m128i r0 = _mm_loadu_si128((const __m128i *)(base + (long)t * stride + j));
				__m128i r1 = _mm_loadu_si128((const __m128i *)(base + (long)t1 * stride + j));
				__m128i lo = _mm_unpacklo_epi8(r0, r1), hi = _mm_unpackhi_epi8(r0, r1);
				a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi8(lo, zero), wp));
				a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi8(lo, zero), wp));
				a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi8(hi, zero), wp));
				a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi8(hi, zero), wp));
			}
			a0 = _mm_srai_epi32(a0, 14); a1 = _mm_srai_epi32(a1, 14);
			a2 = _mm_srai_epi32(a2, 14); a3 = _mm_srai_epi32(a3, 14);
			__m128i p = _mm_packus_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3));
			_mm_storeu_si128((__m128i *)(out + j), p);
		}
#endif
		for (; j < width; j++) {
			int32_t s = 0;
			for (int t = 0; t < c; t++) s += (int32_t)base[(long)t * stride + j] * ws[t];
			out[j] = kd_round14(s);
		}
	}
}

// kd_hpass8: rows [r0, r1) of src resampled horizontally; source column x
// is at byte x-base of its row. The SSE2 loop reads n8 bytes from each
// output's first tap (weights past cnt are zero), so the source buffer
// must have n8 bytes of slack after the last row's used columns.
static void kd_hpass8(const uint8_t *src, long stride, int r0, int r1, int base,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride) {
	for (int y = r0; y < r1; y++) {
		const uint8_t *row = src + (long)y * stride - base;
		uint8_t *out = dst + (long)(y - r0) * dstStride;
		int i = 0;
#if defined(__SSE2__)
		const __m128i zero = _mm_setzero_si128(), half = _mm_set1_epi32(1 << 13);
		for (; i + 4 <= dstLen; i += 4) {
			__m128i s[4];
			for (int k = 0; k < 4; k++) {
				const uint8_t *p = row + start[i + k];
				const int16_t *ws = w + (long)(i + k) * n8;
				__m128i a = zero;
				for (int t = 0; t < n8; t += 8) {
					__m128i v = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p + t)), zero);
					a = _mm_add_epi32(a, _mm_madd_epi16(v, _mm_loadu_si128((const __m128i *)(ws + t))));
				}
				s[k] = a;
			}
			// Transpose-add: lane k of the result is the sum of s[k].
			__m128i t0 = _mm_add_epi32(_mm_unpacklo_epi32(s[0], s[1]), _mm_unpackhi_epi32(s[0], s[1]));
			__m128i t1 = _mm_add_epi32(_mm_unpacklo_epi32(s[2], s[3]), _mm_unpackhi_epi32(s[2], s[3]));
			__m128i r = _mm_add_epi32(_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1));
			r = _mm_srai_epi32(_mm_add_epi32(r, half), 14);
			r = _mm_packs_epi32(r, r);
			r = _mm_packus_epi16(r, r);
			int32_t q = _mm_cvtsi128_si32(r);
			memcpy(out + i, &q, 4);
		}
#endif
		for (; i < dstLen; i++) {
			const uint8_t *p = row + start[i];
			const int16_t *ws = w + (long)i * n8;
			int32_t s = 0;
			for (int t = 0, c = cnt[i]; t < c; t++) s += (int32_t)p[t] * ws[t];
			out[i] = kd_round14(s);
		}
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KD_HAVE_AVX2_BUILD 1

// AVX2 variants, chosen at run time (kd_use_avx2) since the binary must
// also run on x86-64 CPUs without AVX2. They compute exactly what the SSE2
// and scalar loops compute.

__attribute__((target("avx2")))
static void kd_vpass8_avx2(const uint8_t *src, long stride, long colOff,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride, int width) {
	for (int i = 0; i < dstLen; i++) {
		const int16_t *ws = w + (long)i * n8;
		const uint8_t *base = src + (long)start[i] * stride + colOff;
		uint8_t *out = dst + (long)i * dstStride;
		int c = cnt[i], j = 0;
		const __m256i zero = _mm256_setzero_si256(), half = _mm256_set1_epi32(1 << 13);
		// unpack and pack both work within 128-bit lanes, so they undo
		// each other's ordering: lane 0 holds pixels j..j+15, lane 1 the
		// next 16, as in the SSE2 loop.
		for (; j + 32 <= width; j += 32) {
			__m256i a0 = half, a1 = half, a2 = half, a3 = half;
			for (int t = 0; t < c; t += 2) {
				int t1 = t + 1 < c ? t + 1 : t;
				int32_t w1 = t + 1 < c ? ws[t + 1] : 0;
				__m256i wp = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)ws[t] | ((uint32_t)(uint16_t)w1 << 16)));
				__m256i r0 = _mm256_loadu_si256((const __m256i *)(base + (long)t * stride + j));
				__m256i r1 = _mm256_loadu_si256((const __m256i *)(base + (long)t1 * stride + j));
				__m256i lo = _mm256_unpacklo_epi8(r0, r1), hi = _mm256_unpackhi_epi8(r0, r1);
				a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero), wp));
				a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero), wp));
				a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero), wp));
				a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero), wp));
			}
			a0 = _mm256_srai_epi32(a0, 14); a1 = _mm256_srai_epi32(a1, 14);
			a2 = _mm256_srai_epi32(a2, 14); a3 = _mm256_srai_epi32(a3, 14);
			__m256i p = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a3));
			_mm256_storeu_si256((__m256i *)(out + j), p);
		}
		for (; j < width; j++) {
			int32_t s = 0;
			for (int t = 0; t < c; t++) s += (int32_t)base[(long)t * stride + j] * ws[t];
			out[j] = kd_round14(s);
		}
	}
}

__attribute__((target("avx2")))
static void kd_hpass8_avx2(const uint8_t *src, long stride, int r0, int r1, int base,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride) {
	const __m256i half = _mm256_set1_epi32(1 << 13);
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	for (int y = r0; y < r1; y++) {
		const uint8_t *row = src + (long)y * stride - base;
		uint8_t *out = dst + (long)(y - r0) * dstStride;
		int i = 0;
		for (; i + 8 <= dstLen; i += 8) {
			// m[k]: outputs i+2k (lane 0) and i+2k+1 (lane 1).
			__m256i m[4];
			for (int k = 0; k < 4; k++) {
				const uint8_t *pa = row + start[i + 2 * k], *pb = row + start[i + 2 * k + 1];
				const int16_t *wa = w + (long)(i + 2 * k) * n8, *wb = wa + n8;
				__m256i a = _mm256_setzero_si256();
				for (int t = 0; t < n8; t += 8) {
					__m128i v = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(pa + t)), _mm_loadl_epi64((const __m128i *)(pb + t)));
					__m256i wt = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(wa + t))),
						_mm_loadu_si128((const __m128i *)(wb + t)), 1);
					a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_cvtepu8_epi16(v), wt));
				}
				m[k] = a;
			}
			// Two hadds leave the sums as [0 2 4 6 | 1 3 5 7]; reorder.
			__m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]));
			h = _mm256_permutevar8x32_epi32(h, order);
			h = _mm256_srai_epi32(_mm256_add_epi32(h, half), 14);
			__m128i q = _mm_packs_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
			_mm_storel_epi64((__m128i *)(out + i), _mm_packus_epi16(q, q));
		}
		for (; i < dstLen; i++) {
			const uint8_t *p = row + start[i];
			const int16_t *ws = w + (long)i * n8;
			int32_t s = 0;
			for (int t = 0, c = cnt[i]; t < c; t++) s += (int32_t)p[t] * ws[t];
			out[i] = kd_round14(s);
		}
	}
}
#endif

// kd_transpose8: dst[x*dstStride + y] = src[y*srcStride + x] for x < w,
// y < h, in 16x16 tiles of SSE2 unpacks (four rounds of interleaving turn
// rows into columns).
static void kd_transpose8(const uint8_t *src, long srcStride, uint8_t *dst, long dstStride, int w, int h) {
	int y0 = 0;
#if defined(__SSE2__)
	for (; y0 + 16 <= h; y0 += 16) {
		int x0 = 0;
		for (; x0 + 16 <= w; x0 += 16) {
			__m128i r[16], t[16];
			for (int i = 0; i < 16; i++) r[i] = _mm_loadu_si128((const __m128i *)(src + (long)(y0 + i) * srcStride + x0));
			for (int i = 0; i < 8; i++) {
				t[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
				t[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
			}
			for (int i = 0; i < 4; i++) {
				r[i] = _mm_unpacklo_epi16(t[2 * i], t[2 * i + 1]);
				r[i + 4] = _mm_unpackhi_epi16(t[2 * i], t[2 * i + 1]);
				r[i + 8] = _mm_unpacklo_epi16(t[8 + 2 * i], t[8 + 2 * i + 1]);
				r[i + 12] = _mm_unpackhi_epi16(t[8 + 2 * i], t[8 + 2 * i + 1]);
			}
			// Now r[4q + g] holds columns 4q..4q+3 of rows 4g..4g+3, one
			// column per 32-bit unit; two more rounds gather each column.
			for (int q = 0; q < 4; q++) {
				__m128i a0 = r[4 * q], a1 = r[4 * q + 1], a2 = r[4 * q + 2], a3 = r[4 * q + 3];
				__m128i b0 = _mm_unpacklo_epi32(a0, a1), b1 = _mm_unpackhi_epi32(a0, a1);
				__m128i b2 = _mm_unpacklo_epi32(a2, a3), b3 = _mm_unpackhi_epi32(a2, a3);
				t[4 * q] = _mm_unpacklo_epi64(b0, b2);
				t[4 * q + 1] = _mm_unpackhi_epi64(b0, b2);
				t[4 * q + 2] = _mm_unpacklo_epi64(b1, b3);
				t[4 * q + 3] = _mm_unpackhi_epi64(b1, b3);
			}
			for (int i = 0; i < 16; i++) _mm_storeu_si128((__m128i *)(dst + (long)(x0 + i) * dstStride + y0), t[i]);
		}
		for (; x0 < w; x0++)
			for (int i = 0; i < 16; i++) dst[(long)x0 * dstStride + y0 + i] = src[(long)(y0 + i) * srcStride + x0];
	}
#endif
	for (; y0 < h; y0++)
		for (int x = 0; x < w; x++) dst[(long)x * dstStride + y0] = src[(long)y0 * srcStride + x];
}

static int kd_use_avx2 = -1;

static void kd_init_simd(int allow) {
#ifdef KD_HAVE_AVX2_BUILD
	__builtin_cpu_init();
	kd_use_avx2 = allow && __builtin_cpu_supports("avx2");
#else
	kd_use_avx2 = 0;
#endif
}

static int kd_simd_level(void) { return kd_use_avx2; }

static void kd_vpass8_any(const uint8_t *src, long stride, long colOff,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride, int width) {
#ifdef KD_HAVE_AVX2_BUILD
	if (kd_use_avx2 > 0) { kd_vpass8_avx2(src, stride, colOff, start, cnt, w, n8, dstLen, dst, dstStride, width); return; }
#endif
	kd_vpass8(src, stride, colOff, start, cnt, w, n8, dstLen, dst, dstStride, width);
}

// kd_hpass8_t is kd_hpass8 over rows [0, rows) of a plane whose columns
// start at source column base, computed as a vertical pass between two
// transposes: the vertical pass does 16-32 outputs per instruction
// sequence where the horizontal one does 4-8. scratch holds cols*rows +
// dstLen*rows bytes. The sums and their rounding are those of kd_hpass8.
static void kd_vpass8_any(const uint8_t *src, long stride, long colOff,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride, int width);

static void kd_hpass8_t(const uint8_t *src, long stride, int rows, int cols, int base,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride, uint8_t *scratch) {
	uint8_t *t = scratch, *o = scratch + (long)cols * rows;
	kd_transpose8(src, stride, t, rows, cols, rows);
	kd_vpass8_any(t - (long)base * rows, rows, 0, start, cnt, w, n8, dstLen, o, rows, rows);
	kd_transpose8(o, rows, dst, dstStride, rows, dstLen);
}

static void kd_hpass8_any(const uint8_t *src, long stride, int r0, int r1, int base,
		const int32_t *start, const int32_t *cnt, const int16_t *w, int n8, int dstLen,
		uint8_t *dst, long dstStride) {
#ifdef KD_HAVE_AVX2_BUILD
	if (kd_use_avx2 > 0) { kd_hpass8_avx2(src, stride, r0, r1, base, start, cnt, w, n8, dstLen, dst, dstStride); return; }
#endif
	kd_hpass8(src, stride, r0, r1, base, start, cnt, w, n8, dstLen, dst, dstStride);
}
*/
import "C"

import (
	"os"
	"unsafe"
)

// KEDIFF_NO_AVX2=1 keeps the plane passes on SSE2 (for comparisons and
// to test that path on AVX2 machines).
func init() { C.kd_init_simd(C.int(b2i(os.Getenv("KEDIFF_NO_AVX2") == ""))) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setAVX2 switches the AVX2 plane passes on (where the CPU has them) or
// off, for tests, and reports whether they are now in use.
func setAVX2(on bool) bool {
	C.kd_init_simd(C.int(b2i(on)))
	return C.kd_simd_level() > 0
}

func i16p(b []int16) *C.int16_t { return (*C.int16_t)(unsafe.Pointer(unsafe.SliceData(b))) }

// planeSlack is the number of bytes hpass8 may read past the used columns
// of the last source row.
func planeSlack(k *kernel) int { return k.n8 + 16 }

// resamplePlane maps one 8-bit plane (srcStride bytes per row) through
// kernels hk and vk, already built for it, into dst. src and tmp-backed
// intermediates need planeSlack(hk) bytes after their last row.
func (p *Processor) resamplePlane(src []byte, srcStride int, hk, vk *kernel, dst []byte, dstStride int) {
	dw, dh := hk.dstLen, vk.dstLen
	switch {
	case hk.identity && vk.identity:
		for y := 0; y < dh; y++ {
			copy(dst[y*dstStride:][:dw], src[(vk.lo+y)*srcStride+hk.lo:][:dw])
		}
	case vk.identity:
		_ = src[(vk.hi-1)*srcStride+hk.hi-1+planeSlack(hk)-16]
		C.kd_hpass8_any(u8p(src), C.long(srcStride), C.int(vk.lo), C.int(vk.hi), 0,
			i32p(hk.start), i32p(hk.cnt), i16p(hk.w16), C.int(hk.n8), C.int(dw), u8p(dst), C.long(dstStride))
	case hk.identity:
		_ = src[(vk.hi-1)*srcStride+hk.lo+dw-1]
		C.kd_vpass8_any(u8p(src), C.long(srcStride), C.long(hk.lo),
			i32p(vk.start), i32p(vk.cnt), i16p(vk.w16), C.int(vk.n8), C.int(dh), u8p(dst), C.long(dstStride), C.int(dw))
	default:
		// Vertical first over the columns the horizontal taps use, as
		// resample does.
		cols := hk.hi - hk.lo
		p.tmp = grow(p.tmp, dh*cols+planeSlack(hk))
		_ = src[(vk.hi-1)*srcStride+hk.hi-1]
		C.kd_vpass8_any(u8p(src), C.long(srcStride), C.long(hk.lo),
			i32p(vk.start), i32p(vk.cnt), i16p(vk.w16), C.int(vk.n8), C.int(dh), u8p(p.tmp), C.long(cols), C.int(cols))
		p.tmpT = grow(p.tmpT, cols*dh+dw*dh)
		C.kd_hpass8_t(u8p(p.tmp), C.long(cols), C.int(dh), C.int(cols), C.int(hk.lo),
			i32p(hk.start), i32p(hk.cnt), i16p(hk.w16), C.int(hk.n8), C.int(dw), u8p(dst), C.long(dstStride), u8p(p.tmpT))
	}
	_ = dst[(dh-1)*dstStride+dw-1]
}
