//go:build cgo

// Baseline JPEG decoding straight to scaled Y'CbCr planes (dctdecode.c).
#ifndef KD_DCTDECODE_H
#define KD_DCTDECODE_H

#include <stddef.h>
#include <stdint.h>

// What kd_dct_decode returns besides 0 (planes written).
enum {
	KD_DCT_UNSUPPORTED = 1, // not a single-scan baseline 8-bit JPEG this decoder handles
	KD_DCT_CORRUPT = 2,     // damaged data: the caller lets libjpeg-turbo report it
};

// kd_dct_info describes an image and the planes kd_dct_decode writes.
typedef struct {
	int width, height, ncomp;
	int hs[3], vs[3];        // sampling factors (1 for a single component)
	int mcusx, mcusy;        // MCUs per row and column
	int restart;             // restart interval in MCUs (0: none)
} kd_dct_info;

// The decoder's tables live in a caller-owned state of kd_dct_state_size()
// bytes (8-byte aligned), one per thread at a time.
size_t kd_dct_state_size(void);

// kd_dct_header parses the markers up to the scan. It returns 0 or one of
// the codes above. A kd_dct_decode of the same bytes right after it reuses
// that parse.
int kd_dct_header(void *state, const uint8_t *data, size_t len, kd_dct_info *info);

// kd_dct_decode decodes the image with its DCT scaled to n/8 (n in 1..8):
// each 8x8 block becomes n x n samples of its component's plane. Plane c
// is written at pc with geom[5c] bytes per row; only the blocks that
// overlap columns [geom[5c+1], geom[5c+2]) and rows [geom[5c+3],
// geom[5c+4]) of that scaled plane are transformed (the others are
// entropy-decoded and dropped), and each transformed block may write up to
// 8 bytes per row, so a row needs 8 - n bytes of slack after the last block.
int kd_dct_decode(void *state, const uint8_t *data, size_t len, int n, uint8_t *p0, uint8_t *p1, uint8_t *p2, const int geom[15]);

// kd_dct_set_simd picks the AVX2/FMA transform (when the CPU has it and
// allow is set) or the portable one; it returns 1 for AVX2.
int kd_dct_set_simd(int allow);

// kd_dct_set_multi sets when the multi-symbol Huffman tables are used: 0
// never, 1 where they pay (the default), 2 always (for tests). It returns
// the new setting.
int kd_dct_set_multi(int mode);

#endif
