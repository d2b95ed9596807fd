//go:build cgo

package onnx

/*
#cgo CFLAGS: -O2
#include <stdint.h>
#include <immintrin.h>

// color.YCbCrToRGB's arithmetic: 16.16 fixed point, clamped to 0..255.
static inline int kd_clamp(int32_t v) {
	v >>= 16;
	return v < 0 ? 0 : (v > 255 ? 255 : v);
}

// kd_map is one channel's ValueMap: v -> (float)v * mul / div + add, each
// step rounded to float (written so that no multiply-add can be fused).
typedef struct { float mul, div, add; } kd_map;

static inline float kd_value(int v, kd_map m) {
	float t = (float)v * m.mul;
	t = t / m.div;
	return t + m.add;
}

static inline void kd_pixel(int yy, int cb, int cr, const kd_map *m, float *r, float *g, float *b) {
	int32_t yy1 = (int32_t)yy * 0x10101, cb1 = cb - 128, cr1 = cr - 128;
	*r = kd_value(kd_clamp(yy1 + 91881 * cr1), m[0]);
	*g = kd_value(kd_clamp(yy1 - 22554 * cb1 - 46802 * cr1), m[1]);
	*b = kd_value(kd_clamp(yy1 + 116130 * cb1), m[2]);
}

#if defined(__x86_64__)
// kd_vmap maps eight channel values. The target has no FMA, so the
// multiply and the add stay two roundings, as in kd_value; the division
// by 1 is skipped (exact).
__attribute__((target("avx2"))) static inline __m256 kd_vmap(__m256i v, kd_map m, int div) {
	__m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(m.mul));
	if (div)
		t = _mm256_div_ps(t, _mm256_set1_ps(m.div));
	return _mm256_add_ps(t, _mm256_set1_ps(m.add));
}

// Eight pixels: luma in y (int32 lanes), chroma in cb, cr.
__attribute__((target("avx2"))) static inline void kd_eight(__m256i y, __m256i cb, __m256i cr,
		const kd_map *m, int div, float *r, float *g, float *b) {
	const __m256i c128 = _mm256_set1_epi32(128), zero = _mm256_setzero_si256(), c255 = _mm256_set1_epi32(255);
	__m256i yy1 = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi32(y, 16), _mm256_slli_epi32(y, 8)), y);
	cb = _mm256_sub_epi32(cb, c128);
	cr = _mm256_sub_epi32(cr, c128);
	__m256i vr = _mm256_add_epi32(yy1, _mm256_mullo_epi32(cr, _mm256_set1_epi32(91881)));
	__m256i vg = _mm256_sub_epi32(_mm256_sub_epi32(yy1, _mm256_mullo_epi32(cb, _mm256_set1_epi32(22554))),
		_mm256_mullo_epi32(cr, _mm256_set1_epi32(46802)));
	__m256i vb = _mm256_add_epi32(yy1, _mm256_mullo_epi32(cb, _mm256_set1_epi32(116130)));
	vr = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(vr, 16), zero), c255);
	vg = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(vg, 16), zero), c255);
	vb = _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(vb, 16), zero), c255);
	_mm256_storeu_ps(r, kd_vmap(vr, m[0], div));
	_mm256_storeu_ps(g, kd_vmap(vg, m[1], div));
	_mm256_storeu_ps(b, kd_vmap(vb, m[2], div));
}

// kd_row_avx2 converts pixels x0..w-1 of one row whose chroma column is
// (px + x) >> hs, px + x0 a multiple of 1<<hs (hs 0 or 1), and returns how
// many it did (a multiple of 16 from x0; the caller finishes the rest).
__attribute__((target("avx2"))) static int kd_row_avx2(const uint8_t *Y, const uint8_t *Cb, const uint8_t *Cr,
		int px, int x0, int w, int hs, const kd_map *m, float *r, float *g, float *b) {
	int div = m[0].div != 1 || m[1].div != 1 || m[2].div != 1;
	int x = x0;
	for (; x + 16 <= w; x += 16) {
		__m128i y16 = _mm_loadu_si128((const __m128i *)(Y + x));
		__m128i cb16, cr16;
		if (hs == 0) {
			cb16 = _mm_loadu_si128((const __m128i *)(Cb + x));
			cr16 = _mm_loadu_si128((const __m128i *)(Cr + x));
		} else {
			int c = (px + x) >> 1;
			__m128i cb8 = _mm_loadl_epi64((const __m128i *)(Cb + c));
			__m128i cr8 = _mm_loadl_epi64((const __m128i *)(Cr + c));
			cb16 = _mm_unpacklo_epi8(cb8, cb8);
			cr16 = _mm_unpacklo_epi8(cr8, cr8);
		}
		kd_eight(_mm256_cvtepu8_epi32(y16), _mm256_cvtepu8_epi32(cb16), _mm256_cvtepu8_epi32(cr16),
			m, div, r + x, g + x, b + x);
		kd_eight(_mm256_cvtepu8_epi32(_mm_srli_si128(y16, 8)), _mm256_cvtepu8_epi32(_mm_srli_si128(cb16, 8)),
			_mm256_cvtepu8_epi32(_mm_srli_si128(cr16, 8)), m, div, r + x + 8, g + x + 8, b + x + 8);
	}
	return x - x0;
}
#endif

// kd_ycbcr_planes converts a w x h YCbCr image: Y, Cb, Cr point at its
// top-left luma and chroma samples; the chroma of pixel (x, y) is at row
// (py + y) >> vs, column (px + x) >> hs, where px, py are the image's
// origin modulo the subsampling. Output pixel (x, y) goes to index
// y*ostride + x of r, g, b.
static void kd_ycbcr_planes(const uint8_t *Y, const uint8_t *Cb, const uint8_t *Cr, int ystride, int cstride,
		int px, int py, int w, int h, int hs, int vs, const kd_map *m, float *r, float *g, float *b, int ostride) {
	int simd = 0;
#if defined(__x86_64__)
	simd = __builtin_cpu_supports("avx2") && hs <= 1;
#endif
	for (int y = 0; y < h; y++) {
		const uint8_t *yr = Y + (long)y * ystride;
		long co = (long)((py + y) >> vs) * cstride;
		const uint8_t *cbr = Cb + co, *crr = Cr + co;
		float *ro = r + (long)y * ostride, *go = g + (long)y * ostride, *bo = b + (long)y * ostride;
		int x = 0;
		// Scalar up to the first pixel that starts a chroma sample.
		for (; x < w && ((px + x) & ((1 << hs) - 1)) != 0; x++) {
			int c = (px + x) >> hs;
			kd_pixel(yr[x], cbr[c], crr[c], m, ro + x, go + x, bo + x);
		}
#if defined(__x86_64__)
		if (simd)
			x += kd_row_avx2(yr, cbr, crr, px, x, w, hs, m, ro, go, bo);
#endif
		for (; x < w; x++) {
			int c = (px + x) >> hs;
			kd_pixel(yr[x], cbr[c], crr[c], m, ro + x, go + x, bo + x);
		}
	}
}
*/
import "C"

import (
	"image"
	"unsafe"
)

// C's kd_map must be ValueMap's layout.
var _ [unsafe.Sizeof(C.kd_map{}) - unsafe.Sizeof(ValueMap{})]struct{}
var _ [unsafe.Sizeof(ValueMap{}) - unsafe.Sizeof(C.kd_map{})]struct{}

// ycbcrPlanesC converts m in C; hs and vs are its chroma shifts (known
// ratio).
func ycbcrPlanesC(m *image.YCbCr, hs, vs int, maps *[3]ValueMap, r, g, bl []float32, stride int) bool {
	b := m.Rect
	px := b.Min.X - b.Min.X>>hs<<hs
	py := b.Min.Y - b.Min.Y>>vs<<vs
	yo := m.YOffset(b.Min.X, b.Min.Y)
	// The chroma sample of the image's origin, less px>>hs (= 0): the C
	// loop indexes columns (px + x) >> hs from the row's first sample.
	co := m.COffset(b.Min.X, b.Min.Y)
	C.kd_ycbcr_planes((*C.uint8_t)(unsafe.Pointer(&m.Y[yo])), (*C.uint8_t)(unsafe.Pointer(&m.Cb[co])),
		(*C.uint8_t)(unsafe.Pointer(&m.Cr[co])), C.int(m.YStride), C.int(m.CStride),
		C.int(px), C.int(py), C.int(b.Dx()), C.int(b.Dy()), C.int(hs), C.int(vs),
		(*C.kd_map)(unsafe.Pointer(maps)),
		(*C.float)(unsafe.Pointer(&r[0])), (*C.float)(unsafe.Pointer(&g[0])), (*C.float)(unsafe.Pointer(&bl[0])), C.int(stride))
	return true
}
