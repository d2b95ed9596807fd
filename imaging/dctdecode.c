//go:build cgo

// A baseline JPEG decoder that goes straight from Huffman-coded blocks to
// Y'CbCr planes scaled by n/8 in the DCT domain, transforming only the
// blocks a crop keeps.
//
// Why it exists: the preprocessing hot path decodes a JPEG only to crop
// and shrink it. libjpeg-turbo 2.1 decodes every block at full size (its
// n/8 transforms for n = 3, 5, 6, 7 are scalar and slower than a full
// decode), so most of its inverse transforms feed pixels the resampler
// then averages away or the crop throws away. Here each 8x8 block is
// transformed directly to n x n samples with the reduced transforms
// libjpeg's own scaling uses (see kd_mat), and blocks outside the crop are
// entropy-decoded and dropped.
//
// Scope: single-scan baseline (SOF0/SOF1) 8-bit JPEGs with one component
// or three with only the first subsampled (4:4:4, 4:2:2, 4:2:0, 4:4:0,
// 4:1:1), restart intervals included. Anything else returns
// KD_DCT_UNSUPPORTED, and damaged data KD_DCT_CORRUPT, before or after
// writing planes: the caller then decodes with libjpeg-turbo, which also
// owns the warnings and error messages that decide a reject. So this code
// never has to judge damage, only to detect it and stay in bounds.

#include "dctdecode.h"

#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KD_DCT_AVX2_BUILD 1
#endif

#define FAST_BITS 10

// KD_MB is the peek of the multi-symbol AC tables (kd_build_multi): one
// lookup there decodes a whole AC symbol with its magnitude bits, and
// often the symbol after it. KD_DCB is the DC tables' peek, for a whole
// DC difference. (11 and 13 bits measured slower than 12; 9 to 12 for DC
// the same.)
#define KD_MB 12
#define KD_DCB 10

// Building the four multi-symbol tables of a file takes ~40 us, what
// decoding ~1,100 dense blocks with them saves (a 640x480 q90 photo has
// 7,200 and decodes ~40% faster); below KD_MULTI_MIN_BLOCKS a file's tables
// are built only once they repeat.
#define KD_MULTI_MIN_BLOCKS 4096

// kd_multi_mode: 0 never uses the multi-symbol tables, 1 where they pay,
// 2 always (tests).
static int kd_multi_mode = 1;
int kd_dct_set_multi(int mode) { return kd_multi_mode = mode; }

// The hot path's helpers are forced inline so that the bit reader, a local
// struct of the decode loop, lives in registers.
#define KD_INLINE static inline __attribute__((always_inline))

// natural-order index of each zig-zag position; positions past 63, which
// the multi-symbol loop may store to before it sees that a block overran,
// all go to a scratch slot 64.
static const uint8_t kd_zz[96] = {
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
	64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

// kd_ment is a multi-symbol entry: the symbol whose code and magnitude bits
// start the peek, when they fit, and the next symbol too when it also fits
// (kd_ac_entry). The decode loop stores both coefficients without
// branching: a lone symbol stores its value twice at one position, and an
// end of block stores a zero at a position not yet written.
typedef struct {
	uint8_t chk;   // zig-zag positions the entry advances (d1 + d2 + 1); +64 when it ends the block; 255 for none
	uint8_t d1;    // zeros before the first coefficient (its run; a ZRL is 15 zeros and a 0)
	uint8_t d2;    // positions from the first coefficient to the second (0: none)
	uint8_t flags; // KD_M_EOB, KD_M_ALONE
	int16_t v1, v2; // the coefficients (v2 = v1 when none); for DC, v1 is the difference
} kd_ment;

enum { KD_M_EOB = 1, KD_M_ALONE = 2 }; // ends with an end of block; ...which is its only symbol

typedef struct {
	// fast[peek of FAST_BITS]: code length << 8 | symbol; 0 for longer codes.
	uint16_t fast[1 << FAST_BITS];
	// ac[peek]: for an AC code whose length plus magnitude bits fit in the
	// peek, value << 16 | run << 8 | total bits; 0 otherwise.
	int32_t ac[1 << FAST_BITS];
	int32_t maxcode[18]; // largest code of each length, -1 for none
	int32_t delta[17];   // vals index minus code, per length
	uint8_t vals[256];
	// The multi-symbol tables, indexed by a peek of KD_MB bits (KD_DCB for
	// DC) and built by kd_build_multi when they are worth it (multiReady).
	// mlen, the bits an entry consumes (0: decode the slow way), is apart
	// from the rest: it is all the bit reader waits for, and at 4 KB it
	// stays in L1.
	uint8_t mlen[1 << KD_MB];
	kd_ment ment[1 << KD_MB];
	int multiReady;
	int uses;    // files in a row that defined this table with the same bytes
	int present; // defined by the current file
	// The DHT bytes the tables were built from: most files carry the same
	// standard tables, so the next file's identical ones are not rebuilt.
	uint8_t raw[16 + 256];
	int rawlen;
} kd_huff;

typedef struct {
	const uint8_t *p, *end;
	uint64_t buf; // next bits, most significant first
	int n;        // valid bits in buf
	int marker;   // reading stopped at a marker at p
	int pad;      // zero bytes fed after the data or a marker
} kd_bits;

typedef struct {
	kd_dct_info info;
	int id[3], tq[3], td[3], ta[3];
	uint16_t q[4][64]; // natural order
	int qpresent[4];
	kd_huff dc[4], ac[4];
	size_t scan;      // offset of the entropy-coded data
	size_t parsedLen; // nonzero: kd_dct_header parsed a file of this length for kd_dct_decode
} kd_dec;

static int kd_u16(const uint8_t *p) { return p[0] << 8 | p[1]; }

// kd_build_huff builds the lookup tables of one DHT table; nonzero means
// the table is malformed.
static int kd_build_huff(kd_huff *h, const uint8_t *counts, const uint8_t *vals, int nvals, int isac) {
	memset(h->fast, 0, sizeof h->fast);
	memset(h->ac, 0, sizeof h->ac);
	h->multiReady = 0;
	memcpy(h->vals, vals, nvals);
	if (!isac)
		for (int i = 0; i < nvals; i++)
			if (vals[i] > 15) return 1; // a DC category past 15 (libjpeg rejects the table too)
	int code = 0, k = 0;
	for (int l = 1; l <= 16; l++) {
		int c = counts[l - 1];
		h->delta[l] = k - code;
		for (int i = 0; i < c; i++, k++, code++) {
			if (code >= (1 << l)) return 1; // over-subscribed: checked before the fill indexes with it
			if (l <= FAST_BITS) {
				int shift = FAST_BITS - l;
				for (int j = 0; j < 1 << shift; j++)
					h->fast[(code << shift) | j] = (uint16_t)(l << 8 | vals[k]);
			}
		}
		h->maxcode[l] = c ? code - 1 : -1;
		if (code >= (1 << l)) return 1; // over-subscribed, or an all-ones code (as libjpeg checks)
		code <<= 1;
	}
	h->maxcode[17] = 0x7fffffff;
	if (isac) {
		for (int i = 0; i < 1 << FAST_BITS; i++) {
			int e = h->fast[i];
			if (!e) continue;
			int l = e >> 8, rs = e & 255, r = rs >> 4, s = rs & 15;
			if (s == 0 || l + s > FAST_BITS) continue;
			int bits = (i >> (FAST_BITS - l - s)) & ((1 << s) - 1);
			int v = bits < (1 << (s - 1)) ? bits - (1 << s) + 1 : bits;
			h->ac[i] = (int32_t)((uint32_t)v << 16) | r << 8 | (l + s);
		}
	}
	h->present = 1;
	return 0;
}

KD_INLINE int kd_extend_bits(unsigned bits, int s) { return bits < (1u << (s - 1)) ? (int)bits - (1 << s) + 1 : (int)bits; }

// kd_ac_entry makes AC entry i of the multi-symbol table from codes (code
// length << 8 | symbol, indexed by a peek of KD_MB bits); it returns the
// bits the entry consumes, 0 where the slow path must decode.
static int kd_ac_entry(const uint16_t *codes, unsigned i, kd_ment *m) {
	const unsigned mask = (1u << KD_MB) - 1;
	*m = (kd_ment){.chk = 255};
	unsigned e1 = codes[i];
	if (!e1) return 0;
	int l1 = e1 >> 8, r1 = (e1 >> 4) & 15, s1 = e1 & 15;
	if (s1 == 0 && r1 != 15) { // as libjpeg: any such symbol ends the block
		*m = (kd_ment){.chk = 64 + 1, .flags = KD_M_EOB | KD_M_ALONE};
		return l1;
	}
	if (l1 + s1 > KD_MB) return 0;
	int v1 = s1 ? kd_extend_bits((i >> (KD_MB - l1 - s1)) & ((1u << s1) - 1), s1) : 0;
	int used = l1 + s1, d2 = 0, v2 = v1, eob = 0;
	if (used < KD_MB) {
		int rem = KD_MB - used;
		unsigned j = (i << used) & mask; // the bits after the first symbol, zero-filled
		unsigned e2 = codes[j];
		int l2 = e2 >> 8, r2 = (e2 >> 4) & 15, s2 = e2 & 15;
		if (e2 && l2 <= rem) {
			if (s2 == 0 && r2 != 15) {
				eob = 1;
				used += l2;
			} else if (l2 + s2 <= rem) {
				d2 = 1 + r2;
				v2 = s2 ? kd_extend_bits((j >> (KD_MB - l2 - s2)) & ((1u << s2) - 1), s2) : 0;
				used += l2 + s2;
			}
		}
	}
	*m = (kd_ment){.chk = (uint8_t)(r1 + d2 + 1 + 64 * eob), .d1 = (uint8_t)r1, .d2 = (uint8_t)d2,
		.flags = (uint8_t)(eob ? KD_M_EOB : 0), .v1 = (int16_t)v1, .v2 = (int16_t)v2};
	return used;
}

// kd_dc_entry makes DC entry i (a peek of KD_DCB bits): the difference in v1.
static int kd_dc_entry(const uint16_t *codes, unsigned i, kd_ment *m) {
	unsigned e1 = codes[i << (KD_MB - KD_DCB)];
	int l = e1 >> 8, s = e1 & 255;
	*m = (kd_ment){0};
	if (!e1 || s > 11 || l + s > KD_DCB) return 0;
	m->v1 = (int16_t)(s ? kd_extend_bits((i >> (KD_DCB - l - s)) & ((1u << s) - 1), s) : 0);
	return l + s;
}

// kd_build_multi fills the multi-symbol tables from the DHT bytes
// kd_build_huff accepted.
static void kd_build_multi(kd_huff *h, int isac) {
	uint16_t codes[1 << KD_MB]; // code length << 8 | symbol, for codes of up to KD_MB bits
	memset(codes, 0, sizeof codes);
	const uint8_t *counts = h->raw, *vals = h->raw + 16;
	int code = 0, k = 0;
	for (int l = 1; l <= KD_MB; l++) {
		for (int i = 0; i < counts[l - 1]; i++, k++, code++) {
			int shift = KD_MB - l;
			for (int j = 0; j < 1 << shift; j++) codes[(code << shift) | j] = (uint16_t)(l << 8 | vals[k]);
		}
		code <<= 1;
	}
	if (isac)
		for (unsigned i = 0; i < 1u << KD_MB; i++) h->mlen[i] = (uint8_t)kd_ac_entry(codes, i, &h->ment[i]);
	else
		for (unsigned i = 0; i < 1u << KD_DCB; i++) h->mlen[i] = (uint8_t)kd_dc_entry(codes, i, &h->ment[i]);
	h->multiReady = 1;
}

// kd_parse reads the markers up to the first scan.
static int kd_parse(kd_dec *d, const uint8_t *data, size_t len) {
	const uint8_t *p = data, *end = data + len;
	int sof = 0;
	memset(&d->info, 0, sizeof d->info);
	memset(d->qpresent, 0, sizeof d->qpresent);
	for (int i = 0; i < 4; i++) d->dc[i].present = d->ac[i].present = 0;
	if (len < 4 || p[0] != 0xFF || p[1] != 0xD8) return KD_DCT_UNSUPPORTED;
	p += 2;
	for (;;) {
		if (p >= end || *p != 0xFF) return KD_DCT_CORRUPT;
		while (p < end && *p == 0xFF) p++;
		if (p >= end) return KD_DCT_CORRUPT;
		int m = *p++;
		if (m == 0xD8 || m == 0xD9 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) return KD_DCT_UNSUPPORTED;
		if (end - p < 2) return KD_DCT_CORRUPT;
		int L = kd_u16(p);
		if (L < 2 || end - p < L) return KD_DCT_CORRUPT;
		const uint8_t *s = p + 2, *se = p + L;
		p = se;
		switch (m) {
		case 0xC0:
		case 0xC1: { // baseline / extended sequential Huffman
			if (sof || se - s < 6) return KD_DCT_CORRUPT;
			int prec = s[0], h = kd_u16(s + 1), w = kd_u16(s + 3), nc = s[5];
			if (prec != 8 || h == 0 || w == 0 || (nc != 1 && nc != 3)) return KD_DCT_UNSUPPORTED;
			if (se - s < 6 + 3 * nc) return KD_DCT_CORRUPT;
			for (int c = 0; c < nc; c++) {
				d->id[c] = s[6 + 3 * c];
				d->info.hs[c] = s[7 + 3 * c] >> 4;
				d->info.vs[c] = s[7 + 3 * c] & 15;
				d->tq[c] = s[8 + 3 * c];
				if (d->tq[c] > 3) return KD_DCT_CORRUPT;
			}
			kd_dct_info *in = &d->info;
			in->width = w, in->height = h, in->ncomp = nc;
			if (nc == 1) {
				in->hs[0] = in->vs[0] = 1;
			} else {
				int h0 = in->hs[0], v0 = in->vs[0];
				if (!(h0 == 1 || h0 == 2 || h0 == 4) || !(v0 == 1 || v0 == 2)) return KD_DCT_UNSUPPORTED;
				for (int c = 1; c < 3; c++)
					if (in->hs[c] != 1 || in->vs[c] != 1) return KD_DCT_UNSUPPORTED;
			}
			in->mcusx = (w + 8 * in->hs[0] - 1) / (8 * in->hs[0]);
			in->mcusy = (h + 8 * in->vs[0] - 1) / (8 * in->vs[0]);
			sof = 1;
			break;
		}
		case 0xC4: // DHT
			while (s < se) {
				if (se - s < 17) return KD_DCT_CORRUPT;
				int tc = s[0] >> 4, th = s[0] & 15, total = 0;
				if (tc > 1 || th > 3) return KD_DCT_CORRUPT;
				for (int i = 0; i < 16; i++) total += s[1 + i];
				if (total > 256 || se - s < 17 + total) return KD_DCT_CORRUPT;
				kd_huff *h = tc ? &d->ac[th] : &d->dc[th];
				if (h->rawlen == 16 + total && memcmp(h->raw, s + 1, 16 + total) == 0) {
					h->present = 1;
					if (h->uses < 1 << 20) h->uses++;
				} else {
					h->uses = 1;
					h->rawlen = 0;
					if (kd_build_huff(h, s + 1, s + 17, total, tc)) return KD_DCT_CORRUPT;
					memcpy(h->raw, s + 1, 16 + total);
					h->rawlen = 16 + total;
				}
				s += 17 + total;
			}
			break;
		case 0xDB: // DQT
			while (s < se) {
				int pq = s[0] >> 4, tq = s[0] & 15;
				if (pq > 1 || tq > 3) return KD_DCT_CORRUPT;
				if (se - s < 1 + 64 * (pq + 1)) return KD_DCT_CORRUPT;
				for (int k = 0; k < 64; k++)
					d->q[tq][kd_zz[k]] = pq ? (uint16_t)kd_u16(s + 1 + 2 * k) : s[1 + k];
				d->qpresent[tq] = 1;
				s += 1 + 64 * (pq + 1);
			}
			break;
		case 0xDD: // DRI
			if (se - s < 2) return KD_DCT_CORRUPT;
			d->info.restart = kd_u16(s);
			break;
		case 0xDA: { // SOS
			if (!sof) return KD_DCT_CORRUPT;
			int ns = se - s >= 1 ? s[0] : 0;
			if (ns != d->info.ncomp || se - s < 4 + 2 * ns) return KD_DCT_UNSUPPORTED;
			for (int i = 0; i < ns; i++) {
				if (s[1 + 2 * i] != d->id[i]) return KD_DCT_UNSUPPORTED;
				d->td[i] = s[2 + 2 * i] >> 4;
				d->ta[i] = s[2 + 2 * i] & 15;
				if (d->td[i] > 3 || d->ta[i] > 3 || !d->dc[d->td[i]].present || !d->ac[d->ta[i]].present ||
					!d->qpresent[d->tq[i]])
					return KD_DCT_CORRUPT;
			}
			const uint8_t *t = s + 1 + 2 * ns;
			if (t[0] != 0 || t[1] != 63 || t[2] != 0) return KD_DCT_UNSUPPORTED;
			d->scan = (size_t)(p - data);
			return 0;
		}
		case 0xC2: case 0xC3: case 0xC5: case 0xC6: case 0xC7: case 0xC9: case 0xCA:
		case 0xCB: case 0xCD: case 0xCE: case 0xCF: case 0xCC: case 0xDC:
			return KD_DCT_UNSUPPORTED; // progressive, lossless, arithmetic, DNL
		default:
			break; // APPn, COM and the like
		}
	}
}

size_t kd_dct_state_size(void) { return sizeof(kd_dec); }

int kd_dct_header(void *state, const uint8_t *data, size_t len, kd_dct_info *info) {
	kd_dec *d = state;
	int r = kd_parse(d, data, len);
	d->parsedLen = r == 0 ? len : 0;
	if (r == 0) *info = d->info;
	return r;
}

// kd_refill tops the bit buffer up to at least 56 bits. Past the data or at
// a marker it feeds zero bytes and counts them in pad.
KD_INLINE void kd_refill(kd_bits *b) {
	if (b->n >= 56) return; // (the whole-byte count below would be 0)
	if (!b->marker && b->end - b->p >= 8) {
		uint64_t w;
		memcpy(&w, b->p, 8);
		uint64_t x = ~w; // a 0xFF byte of w is a zero byte of x
		if (((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) == 0) {
			int k = (63 - b->n) >> 3;
			w = __builtin_bswap64(w) & (~0ULL << (64 - 8 * k));
			b->buf |= w >> b->n;
			b->n += 8 * k;
			b->p += k;
			return;
		}
	}
	while (b->n <= 56) {
		unsigned c = 0;
		if (b->marker || b->p >= b->end) {
			b->pad++;
		} else {
			c = *b->p;
			if (c == 0xFF) {
				if (b->p + 1 < b->end && b->p[1] == 0) {
					b->p += 2;
				} else {
					b->marker = 1; // leave p on the marker
					c = 0;
					b->pad++;
				}
			} else {
				b->p++;
			}
		}
		b->buf |= (uint64_t)c << (56 - b->n);
		b->n += 8;
	}
}

// kd_refill_eager tops the buffer up on every call without branching on
// the bit count, where the next 8 bytes hold no 0xFF (almost always; n is
// at most 63 here, as a bit was taken since the last refill): the
// bits past the whole bytes it counts are the right next bits too, so
// loading them again later is harmless (the lookahead refill of F. Giesen's
// "Reading bits in far too many ways"). Elsewhere it is kd_refill.
KD_INLINE void kd_refill_eager(kd_bits *b) {
	// At a marker p stays on its 0xFF, so the check below sends that case
	// to kd_refill too.
	if (__builtin_expect(b->end - b->p >= 8, 1)) {
		uint64_t w;
		memcpy(&w, b->p, 8);
		uint64_t x = ~w;
		if (__builtin_expect(((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) == 0, 1)) {
			b->buf |= __builtin_bswap64(w) >> b->n;
			b->p += (63 - b->n) >> 3;
			b->n |= 56;
			return;
		}
	}
	if (b->n < 32) kd_refill(b);
}

KD_INLINE int kd_huff_decode(kd_bits *b, const kd_huff *h) {
	unsigned e = h->fast[b->buf >> (64 - FAST_BITS)];
	if (e) {
		int l = e >> 8;
		b->buf <<= l;
		b->n -= l;
		return e & 255;
	}
	int32_t code16 = (int32_t)(b->buf >> 48);
	for (int l = FAST_BITS + 1; l <= 16; l++) {
		int32_t code = code16 >> (16 - l);
		if (code <= h->maxcode[l]) {
			b->buf <<= l;
			b->n -= l;
			return h->vals[(code + h->delta[l]) & 255];
		}
	}
	return -1;
}

KD_INLINE int kd_extend(uint32_t v, int s) { return v < (1u << (s - 1)) ? (int)v - (1 << s) + 1 : (int)v; }

KD_INLINE int kd_getbits(kd_bits *b, int s) {
	uint32_t v = (uint32_t)(b->buf >> (64 - s));
	b->buf <<= s;
	b->n -= s;
	return kd_extend(v, s);
}

// kd_decode_block reads one block's coefficients into blk (natural order,
// zero on entry; only when keep is set: dropped blocks store nothing) and returns the zig-zag index of the last nonzero one,
// or -1 for damaged data.
KD_INLINE int kd_decode_block(kd_bits *b, const kd_huff *dc, const kd_huff *ac, int *pred, int32_t *blk, int keep) {
	if (b->n < 32) kd_refill(b);
	int s = kd_huff_decode(b, dc);
	if (s < 0 || s > 11) return -1;
	if (s) *pred += kd_getbits(b, s);
	blk[0] = (int16_t)*pred; // as libjpeg, whose coefficients are 16-bit
	int last = 0;
	for (int k = 1; k < 64;) {
		if (b->n < 32) kd_refill(b);
		int32_t e = ac->ac[b->buf >> (64 - FAST_BITS)];
		if (e) {
			k += (e >> 8) & 15;
			int l = e & 255;
			b->buf <<= l;
			b->n -= l;
			if (k > 63) return -1;
			if (keep) blk[kd_zz[k]] = e >> 16;
			last = k++;
			continue;
		}
		int rs = kd_huff_decode(b, ac);
		if (rs < 0) return -1;
		int r = rs >> 4;
		s = rs & 15;
		if (s == 0) {
			if (r != 15) break; // end of block
			k += 16;
			if (k > 64) return -1;
			continue;
		}
		k += r;
		if (k > 63) return -1;
		int v = kd_getbits(b, s);
		if (keep) blk[kd_zz[k]] = v;
		last = k++;
	}
	return last;
}

// kd_decode_block_m is kd_decode_block with the multi-symbol tables: it
// always stores (dropped blocks go to a scratch block) and returns the
// zig-zag index of the last coded coefficient, or -1 for damaged data.
// The bit reader's state is copied into locals so that it stays in
// registers. An entry that would run past the end of the block (a
// coefficient at 63 followed by the next block's bits) is redone one symbol
// at a time.
KD_INLINE int kd_decode_block_m(kd_bits *bp, const kd_huff *dc, const kd_huff *ac, int *pred, int32_t *blk) {
	kd_bits b = *bp;
	const kd_huff *restrict h = ac; // one base register for both tables
	if (b.n < 32) kd_refill(&b);
	unsigned dl = dc->mlen[b.buf >> (64 - KD_DCB)];
	if (dl) {
		*pred += dc->ment[b.buf >> (64 - KD_DCB)].v1;
		b.buf <<= dl;
		b.n -= dl;
	} else {
		int s = kd_huff_decode(&b, dc);
		if (s < 0 || s > 11) return -1;
		if (s) *pred += kd_getbits(&b, s);
	}
	blk[0] = (int16_t)*pred;
	unsigned k = 1;
	for (;;) {
		kd_refill_eager(&b);
		unsigned idx = (unsigned)(b.buf >> (64 - KD_MB));
		unsigned l = h->mlen[idx];
		const kd_ment *m = &h->ment[idx];
		unsigned k1 = k + m->d1;
		blk[kd_zz[k1]] = m->v1;
		unsigned k2 = k1 + m->d2;
		blk[kd_zz[k2]] = m->v2;
		if (k + m->chk < 64) {
			b.buf <<= l;
			b.n -= l;
			k = k2 + 1;
			continue;
		}
		// The block ends here, or the entry is not usable as it is.
		unsigned f = m->flags;
		if (l && ((f & KD_M_ALONE) || k2 + 1 + (f & KD_M_EOB) <= 64)) {
			b.buf <<= l;
			b.n -= l;
			k = (f & KD_M_ALONE) ? k : k2 + 1;
			break;
		}
		int rs = kd_huff_decode(&b, ac);
		if (rs < 0) return -1;
		int r = rs >> 4, s = rs & 15;
		if (s == 0) {
			if (r != 15) break; // end of block
			k += 16;
			if (k > 64) return -1;
		} else {
			k += r;
			if (k > 63) return -1;
			blk[kd_zz[k]] = kd_getbits(&b, s);
			k++;
		}
		if (k >= 64) break;
	}
	*bp = b;
	return (int)k - 1;
}

// kd_bjob is one block of an MCU for kd_decode_mcu: its tables, its DC
// predictor, where its coefficients go (zero on entry, in natural order)
// and, once decoded, the zig-zag index of its last coded coefficient.
typedef struct {
	const kd_huff *dc, *ac;
	int *pred;
	int32_t *blk;
	int last;
} kd_bjob;

KD_INLINE int kd_decode_mcu_impl(kd_bits *bp, kd_bjob *jobs, int nb, const int multi) {
	kd_bits b = *bp;
	for (int i = 0; i < nb; i++) {
		kd_bjob *j = &jobs[i];
		int last = multi ? kd_decode_block_m(&b, j->dc, j->ac, j->pred, j->blk)
		                 : kd_decode_block(&b, j->dc, j->ac, j->pred, j->blk, 1);
		if (last < 0) return -1;
		j->last = last;
	}
	*bp = b;
	return 0;
}

// kd_decode_mcu entropy-decodes the blocks of one MCU; nonzero means
// damaged data. It is kept out of kd_dct_decode, whose outer loops hold
// many values: inlined there, the Huffman loop's table and bit-reader
// pointers were spilled to the stack and reloaded for every symbol.
static __attribute__((noinline)) int kd_decode_mcu_multi(kd_bits *bp, kd_bjob *jobs, int nb) {
	return kd_decode_mcu_impl(bp, jobs, nb, 1);
}

static __attribute__((noinline)) int kd_decode_mcu_single(kd_bits *bp, kd_bjob *jobs, int nb) {
	return kd_decode_mcu_impl(bp, jobs, nb, 0);
}

// kd_mat[n][x][u]: weight of coefficient u in sample x of an n-sample
// block row; zero for x >= n and u >= kd_taps[n]. The reduced transforms
// follow libjpeg's: for n = 1, 2 and 4 (jidctred.c) the mean of each 8/n
// samples of the full 8-point inverse DCT, which uses all 8 coefficients;
// for n = 3, 5, 6 and 7 (jidctint.c) the n-point inverse DCT of the low n
// coefficients. Both keep JPEG's normalisation (C(u)/2, C(0) = 1/sqrt(2)).
// kd_matT is the transpose.
static float kd_mat[9][8][8], kd_matT[9][8][8];
static int kd_taps[9];

static double kd_basis(int N, int x, int u) {
	double c = u == 0 ? sqrt(0.5) : 1.0;
	return c / 2 * cos((2 * x + 1) * u * M_PI / (2.0 * N));
}

static void kd_init_mats(void) {
	for (int n = 1; n <= 8; n++) {
		int box = 8 % n == 0;
		kd_taps[n] = box ? 8 : n;
		for (int x = 0; x < n; x++)
			for (int u = 0; u < kd_taps[n]; u++) {
				double v = 0;
				if (box) {
					int f = 8 / n;
					for (int j = 0; j < f; j++) v += kd_basis(8, x * f + j, u) / f;
				} else {
					v = kd_basis(n, x, u);
				}
				kd_mat[n][x][u] = (float)v;
				kd_matT[n][u][x] = (float)v;
			}
	}
}

static inline uint8_t kd_clamp(float v) {
	int i = (int)lrintf(v);
	return i < 0 ? 0 : i > 255 ? 255 : (uint8_t)i;
}

static void kd_idct_plain(const int32_t *blk, const float *qf, int n, uint8_t *out, long stride) {
	float r[8][8];
	int K = kd_taps[n];
	for (int v = 0; v < K; v++)
		for (int x = 0; x < n; x++) {
			float s = 0;
			for (int u = 0; u < K; u++) s += (float)blk[v * 8 + u] * qf[v * 8 + u] * kd_mat[n][x][u];
			r[v][x] = s;
		}
	for (int y = 0; y < n; y++)
		for (int x = 0; x < n; x++) {
			float s = 128.0f;
			for (int v = 0; v < K; v++) s += kd_mat[n][y][v] * r[v][x];
			out[y * stride + x] = kd_clamp(s);
		}
}

#ifdef KD_DCT_AVX2_BUILD
// Rows then columns, one 8-float vector per row of samples; lanes past n
// carry zeros. Each output row stores 8 bytes (hence the slack).
// kd_idct_avx2_n is specialised for each n (kd_idct_avx2 dispatches with
// a constant), so that its loops unroll: with variable trip counts the
// loop branches mispredicted more than the arithmetic cost.
__attribute__((target("avx2,fma"), always_inline))
static inline void kd_idct_avx2_n(const int32_t *blk, const float *qf, const int n, uint8_t *out, long stride) {
	const int K = 8 % n == 0 ? 8 : n;
	__m256 r[8];
	for (int v = 0; v < K; v++) {
		__m256 c = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(blk + v * 8))), _mm256_loadu_ps(qf + v * 8));
		// Lane u of c broadcast by a permute: a store and reload of c
		// would stall on store-to-load forwarding.
		__m256 a = _mm256_mul_ps(_mm256_permutevar8x32_ps(c, _mm256_setzero_si256()), _mm256_loadu_ps(kd_matT[n][0]));
		for (int u = 1; u < K; u++)
			a = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(c, _mm256_set1_epi32(u)), _mm256_loadu_ps(kd_matT[n][u]), a);
		r[v] = a;
	}
	for (int y = 0; y < n; y++) {
		__m256 a = _mm256_set1_ps(128.0f);
		for (int v = 0; v < K; v++) a = _mm256_fmadd_ps(_mm256_set1_ps(kd_mat[n][y][v]), r[v], a);
		__m256i i = _mm256_cvtps_epi32(a);
		__m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
		_mm_storel_epi64((__m128i *)(out + y * stride), _mm_packus_epi16(w, w));
	}
}

__attribute__((target("avx2,fma")))
static void kd_idct_avx2(const int32_t *blk, const float *qf, int n, uint8_t *out, long stride) {
	switch (n) {
	case 1: kd_idct_avx2_n(blk, qf, 1, out, stride); break;
	case 2: kd_idct_avx2_n(blk, qf, 2, out, stride); break;
	case 3: kd_idct_avx2_n(blk, qf, 3, out, stride); break;
	case 4: kd_idct_avx2_n(blk, qf, 4, out, stride); break;
	case 5: kd_idct_avx2_n(blk, qf, 5, out, stride); break;
	case 6: kd_idct_avx2_n(blk, qf, 6, out, stride); break;
	case 7: kd_idct_avx2_n(blk, qf, 7, out, stride); break;
	default: kd_idct_avx2_n(blk, qf, 8, out, stride); break;
	}
}
#endif

static int kd_dct_avx2 = -1;

int kd_dct_set_simd(int allow) {
	if (kd_mat[1][0][0] == 0) kd_init_mats();
	kd_dct_avx2 = 0;
#ifdef KD_DCT_AVX2_BUILD
	__builtin_cpu_init();
	kd_dct_avx2 = allow && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
	return kd_dct_avx2;
}

// kd_zero_block clears a block with plain stores (a 256-byte memset
// became rep stos, which starts slowly).
static inline void kd_zero_block(int32_t *blk) {
#if defined(__SSE2__)
	__m128i z = _mm_setzero_si128();
	for (int i = 0; i < 64; i += 4) _mm_store_si128((__m128i *)(blk + i), z);
#else
	memset(blk, 0, 64 * sizeof *blk);
#endif
}

// kd_flat writes a block with only a DC coefficient: n x n of one value.
static inline void kd_flat(float dc, int n, uint8_t *out, long stride) {
	uint64_t v = kd_clamp(dc / 8 + 128.0f) * 0x0101010101010101ULL;
	for (int y = 0; y < n; y++) memcpy(out + y * stride, &v, 8); // the 8-byte slack, as the transforms use
}

// kd_marker_after checks that the bits left are the padding of the last
// byte and that marker m follows; it moves past the marker.
KD_INLINE int kd_at_marker(kd_bits *b, int m) {
	kd_refill(b);
	int real = b->n - 8 * b->pad;
	if (!b->marker || real < 0 || real >= 8) return 0;
	if (b->end - b->p < 2 || b->p[1] != m) return 0;
	b->p += 2;
	b->buf = 0;
	b->n = b->marker = b->pad = 0;
	return 1;
}

int kd_dct_decode(void *state, const uint8_t *data, size_t len, int n, uint8_t *p0, uint8_t *p1, uint8_t *p2,
	const int geom[15]) {
	uint8_t *planes[3] = {p0, p1, p2};
	int strides[3];
	kd_dec *dp = state;
	if (n < 1 || n > 8) return KD_DCT_UNSUPPORTED;
	// The header call just before parsed this file: its tables and scan
	// offset stand (a state without one parses here).
	if (dp->parsedLen != len) {
		int r = kd_parse(dp, data, len);
		if (r) return r;
	}
	dp->parsedLen = 0;
	// Multi-symbol tables for large images, and for tables that repeat
	// from file to file (most files carry the standard ones).
	int blocks = dp->info.mcusx * dp->info.mcusy * (dp->info.ncomp == 1 ? 1 : dp->info.hs[0] * dp->info.vs[0] + 2);
	int multi[3];
	for (int c = 0; c < dp->info.ncomp; c++) {
		kd_huff *dch = &dp->dc[dp->td[c]], *ach = &dp->ac[dp->ta[c]];
		int worth = kd_multi_mode == 2 || (kd_multi_mode == 1 && blocks >= KD_MULTI_MIN_BLOCKS);
		if (kd_multi_mode && !dch->multiReady && (worth || dch->uses > 1)) kd_build_multi(dch, 0);
		if (kd_multi_mode && !ach->multiReady && (worth || ach->uses > 1)) kd_build_multi(ach, 1);
		multi[c] = kd_multi_mode && dch->multiReady && ach->multiReady;
	}
	const kd_dec *restrict D = dp;
	const kd_dct_info *in = &D->info;
	int nc = in->ncomp;
	float qf[3][64];
	int bx0[3], bx1[3], by0[3], by1[3], pred[3] = {0, 0, 0};
	for (int c = 0; c < nc; c++) {
		for (int i = 0; i < 64; i++) qf[c][i] = D->q[D->tq[c]][i];
		const int *g = geom + 5 * c;
		strides[c] = g[0];
		bx0[c] = g[1] / n, bx1[c] = (g[2] + n - 1) / n;
		by0[c] = g[3] / n, by1[c] = (g[4] + n - 1) / n;
	}
	void (*idct)(const int32_t *, const float *, int, uint8_t *, long) = kd_idct_plain;
#ifdef KD_DCT_AVX2_BUILD
	if (kd_dct_avx2) idct = kd_idct_avx2;
#endif
	kd_bits b = {data + D->scan, data + len, 0, 0, 0, 0};
	// The blocks of one MCU, decoded together by kd_decode_mcu; slot 64 of
	// each takes the stores of a multi-symbol entry that overran the block.
	int32_t mcu[10][72] __attribute__((aligned(32)));
	memset(mcu, 0, sizeof mcu);
	kd_bjob jobs[10];
	int jc[10], jh[10], jv[10], nb = 0, multiAll = 1;
	for (int c = 0; c < nc; c++) {
		multiAll &= multi[c];
		for (int v = 0; v < in->vs[c]; v++)
			for (int h = 0; h < in->hs[c]; h++, nb++) {
				jobs[nb] = (kd_bjob){&D->dc[D->td[c]], &D->ac[D->ta[c]], &pred[c], mcu[nb], 0};
				jc[nb] = c, jv[nb] = v, jh[nb] = h;
			}
	}
	int togo = in->restart, next = 0;
	for (int my = 0; my < in->mcusy; my++) {
		if (b.pad > 16) return KD_DCT_CORRUPT; // ran past the data
		for (int mx = 0; mx < in->mcusx; mx++) {
			if (in->restart) {
				if (togo == 0) {
					if (!kd_at_marker(&b, 0xD0 + (next & 7))) return KD_DCT_CORRUPT;
					next++;
					pred[0] = pred[1] = pred[2] = 0;
					togo = in->restart;
				}
				togo--;
			}
			if ((multiAll ? kd_decode_mcu_multi : kd_decode_mcu_single)(&b, jobs, nb)) return KD_DCT_CORRUPT;
			for (int i = 0; i < nb; i++) {
				int c = jc[i], last = jobs[i].last;
				int32_t *blk = mcu[i];
				int by = my * in->vs[c] + jv[i], bx = mx * in->hs[c] + jh[i];
				if (bx >= bx0[c] && bx < bx1[c] && by >= by0[c] && by < by1[c]) {
					uint8_t *o = planes[c] + (long)by * n * strides[c] + (long)bx * n;
					if (last == 0) kd_flat((float)blk[0] * qf[c][0], n, o, strides[c]);
					else idct(blk, qf[c], n, o, strides[c]);
				}
				if (last < 16) {
					for (int k = 0; k <= last; k++) blk[kd_zz[k]] = 0;
				} else {
					kd_zero_block(blk);
				}
			}
		}
	}
	if (!kd_at_marker(&b, 0xD9)) return KD_DCT_CORRUPT;
	return 0;
}
