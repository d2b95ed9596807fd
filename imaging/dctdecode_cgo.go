//go:build cgo

package imaging

/*
#cgo LDFLAGS: -lm
#include "dctdecode.h"
*/
import "C"

import (
	"os"
	"unsafe"
)

// dctInfo is what dctdecode.c reads from a JPEG's header.
type dctInfo struct {
	w, h, ncomp  int
	hs, vs       [3]int
	mcusx, mcusy int
}

// KEDIFF_DCT_DECODER=off sends every JPEG through libjpeg-turbo (for
// comparisons); KEDIFF_NO_AVX2=1 keeps the transform portable.
var dctDecoderOn = os.Getenv("KEDIFF_DCT_DECODER") != "off"

func init() { C.kd_dct_set_simd(C.int(b2i(os.Getenv("KEDIFF_NO_AVX2") == ""))) }

// setDCTAVX2 switches the AVX2 transform on or off, for tests, and reports
// whether it is now in use.
func setDCTAVX2(on bool) bool { return C.kd_dct_set_simd(C.int(b2i(on))) != 0 }

// dctState holds dctdecode.c's tables (Huffman lookups, quantisers) for
// one goroutine; the Processor keeps one.
// Its argument blocks are allocated once too: what a cgo call receives a
// pointer to escapes to the heap.
type dctState = *dctMem

type dctMem struct {
	tables []uint64
	info   C.kd_dct_info
	geom   [15]C.int
}

func newDCTState() dctState {
	return &dctMem{tables: make([]uint64, (C.kd_dct_state_size()+7)/8)} // zero: no tables cached
}

func (s *dctMem) ptr() unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(s.tables)) }

// dctHeader parses data's markers; ok=false for a JPEG dctdecode.c does
// not handle (or a damaged one).
func (s *dctMem) header(data []byte) (info dctInfo, ok bool) {
	if len(data) == 0 {
		return info, false
	}
	ci := &s.info
	if C.kd_dct_header(s.ptr(), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(data))), C.size_t(len(data)), ci) != 0 {
		return info, false
	}
	info = dctInfo{w: int(ci.width), h: int(ci.height), ncomp: int(ci.ncomp), mcusx: int(ci.mcusx), mcusy: int(ci.mcusy)}
	for c := range 3 {
		info.hs[c], info.vs[c] = int(ci.hs[c]), int(ci.vs[c])
	}
	return info, true
}

// planeDims returns the stride and rows of component c's plane at scale
// n/8: whole blocks of n x n samples, plus the 8 bytes of slack a row needs
// for the last block's 8-byte stores.
func (in *dctInfo) planeDims(c, n int) (stride, rows int) {
	return in.mcusx*in.hs[c]*n + 8, in.mcusy * in.vs[c] * n
}

// dctWindow is the part of a scaled plane the resampler reads: columns
// [x0, x1), rows [y0, y1).
type dctWindow struct{ x0, x1, y0, y1 int }

// decode decodes data (whose header gave in: pass the same bytes as to
// the header call just before, whose parse it reuses) at scale n/8 into planes
// laid out by planeDims, transforming only the blocks that overlap win.
// ok=false means dctdecode.c declined or found damage; the planes are
// then undefined and the caller decodes with libjpeg-turbo.
func (s *dctMem) decode(data []byte, in *dctInfo, n int, planes [3][]byte, win [3]dctWindow) bool {
	var ptrs [3]*C.uint8_t
	geom := &s.geom
	for c := range in.ncomp {
		stride, rows := in.planeDims(c, n)
		if len(planes[c]) < stride*rows {
			panic("imaging: dctDecode plane too small")
		}
		w := win[c]
		if w.x0 < 0 || w.y0 < 0 || w.x1 > stride-8 || w.y1 > rows {
			panic("imaging: dctDecode window outside the plane")
		}
		ptrs[c] = (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(planes[c])))
		geom[5*c], geom[5*c+1], geom[5*c+2], geom[5*c+3], geom[5*c+4] = C.int(stride), C.int(w.x0), C.int(w.x1), C.int(w.y0), C.int(w.y1)
	}
	r := C.kd_dct_decode(s.ptr(), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(data))), C.size_t(len(data)), C.int(n),
		ptrs[0], ptrs[1], ptrs[2], &geom[0])
	return r == 0
}

// Huffman decoding modes of dctdecode.c, for tests: one symbol per lookup,
// multi-symbol tables where they pay (the default), or always.
const (
	huffSingle = 0
	huffAuto   = 1
	huffMulti  = 2
)

// setHuffMode sets dctdecode.c's Huffman decoding mode (huffSingle, ...).
func setHuffMode(mode int) { C.kd_dct_set_multi(C.int(mode)) }
