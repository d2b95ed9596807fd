//go:build cgo

package imaging

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// Our own declarations of the TurboJPEG 2.x API subset we call, so that the
// build needs neither turbojpeg.h nor -lturbojpeg: the library is opened at
// run time with dlopen and the functions are looked up with dlsym.
typedef void *kd_tjhandle;
typedef struct { int num; int denom; } kd_tjscalingfactor;

typedef kd_tjhandle (*kd_init_fn)(void);
typedef int (*kd_destroy_fn)(kd_tjhandle);
typedef int (*kd_header3_fn)(kd_tjhandle, const unsigned char *, unsigned long, int *, int *, int *, int *);
typedef int (*kd_decompress2_fn)(kd_tjhandle, const unsigned char *, unsigned long, unsigned char *, int, int, int, int, int);
typedef kd_tjscalingfactor *(*kd_scaling_fn)(int *);
typedef int (*kd_compress2_fn)(kd_tjhandle, const unsigned char *, int, int, int, int, unsigned char **, unsigned long *, int, int, int);
typedef unsigned long (*kd_bufsize_fn)(int, int, int);
typedef char *(*kd_errstr2_fn)(kd_tjhandle);
typedef int (*kd_errcode_fn)(kd_tjhandle);
typedef int (*kd_dec_yuv_fn)(kd_tjhandle, const unsigned char *, unsigned long, unsigned char **, int, int *, int, int);
typedef int (*kd_enc_yuv_fn)(kd_tjhandle, const unsigned char **, int, const int *, int, int, unsigned char **, unsigned long *, int, int);
typedef int (*kd_plane_fn)(int, int, int);

static struct {
	void *lib;
	kd_init_fn initDecompress, initCompress;
	kd_destroy_fn destroy;
	kd_header3_fn header3;
	kd_decompress2_fn decompress2;
	kd_scaling_fn scaling;
	kd_compress2_fn compress2;
	kd_bufsize_fn bufSize;
	kd_errstr2_fn errStr2;
	kd_errcode_fn errCode;
	// Planar YUV entry points (TurboJPEG >= 1.4); NULL disables the YUV path.
	kd_dec_yuv_fn decYUV;
	kd_enc_yuv_fn encYUV;
	kd_plane_fn planeW, planeH;
	int hasV3;
} kd_tj;

// kd_tj_open loads the library. It returns NULL on success or a static
// description of what is missing.
static const char *kd_tj_open(const char *path, char *errbuf, int errlen) {
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char *e = dlerror();
		strncpy(errbuf, e ? e : "dlopen failed", errlen - 1);
		errbuf[errlen - 1] = 0;
		return errbuf;
	}
#define KD_SYM(field, name, type) \
	kd_tj.field = (type)dlsym(lib, name); \
	if (kd_tj.field == NULL) { dlclose(lib); return "symbol " name " not found (need the TurboJPEG 2.x API)"; }
	KD_SYM(initDecompress, "tjInitDecompress", kd_init_fn)
	KD_SYM(initCompress, "tjInitCompress", kd_init_fn)
	KD_SYM(destroy, "tjDestroy", kd_destroy_fn)
	KD_SYM(header3, "tjDecompressHeader3", kd_header3_fn)
	KD_SYM(decompress2, "tjDecompress2", kd_decompress2_fn)
	KD_SYM(scaling, "tjGetScalingFactors", kd_scaling_fn)
	KD_SYM(compress2, "tjCompress2", kd_compress2_fn)
	KD_SYM(bufSize, "tjBufSize", kd_bufsize_fn)
	KD_SYM(errStr2, "tjGetErrorStr2", kd_errstr2_fn)
	KD_SYM(errCode, "tjGetErrorCode", kd_errcode_fn)
#undef KD_SYM
	kd_tj.decYUV = (kd_dec_yuv_fn)dlsym(lib, "tjDecompressToYUVPlanes");
	kd_tj.encYUV = (kd_enc_yuv_fn)dlsym(lib, "tjCompressFromYUVPlanes");
	kd_tj.planeW = (kd_plane_fn)dlsym(lib, "tjPlaneWidth");
	kd_tj.planeH = (kd_plane_fn)dlsym(lib, "tjPlaneHeight");
	kd_tj.hasV3 = dlsym(lib, "tj3Init") != NULL;
	kd_tj.lib = lib;
	return NULL;
}

static const char *kd_tj_lib_file(void) {
	Dl_info info;
	if (dladdr((void *)kd_tj.decompress2, &info) && info.dli_fname) return info.dli_fname;
	return "";
}
static int kd_tj_has_v3(void) { return kd_tj.hasV3; }

static kd_tjhandle kd_init_decompress(void) { return kd_tj.initDecompress(); }
static kd_tjhandle kd_init_compress(void) { return kd_tj.initCompress(); }
static void kd_destroy(kd_tjhandle h) { if (h) kd_tj.destroy(h); }

typedef struct { int rc, w, h, subsamp, cs; } kd_header_t;

// kd_header returns the result by value so that no Go variable's address
// crosses into C (which would move it to the heap).
static kd_header_t kd_header(kd_tjhandle h, const unsigned char *buf, unsigned long n) {
	kd_header_t r = {0, 0, 0, 0, 0};
	r.rc = kd_tj.header3(h, buf, n, &r.w, &r.h, &r.subsamp, &r.cs);
	return r;
}

static int kd_decompress(kd_tjhandle h, const unsigned char *buf, unsigned long n, unsigned char *dst, int w, int pitch, int ht, int pf, int flags) {
	return kd_tj.decompress2(h, buf, n, dst, w, pitch, ht, pf, flags);
}

// kd_compress writes into dst (capacity cap, at least tjBufSize) without
// letting TurboJPEG reallocate it; the output pointer lives on the C stack.
static long kd_compress(kd_tjhandle h, const unsigned char *src, int w, int pitch, int ht, int pf, unsigned char *dst, unsigned long cap, int subsamp, int q, int flags) {
	unsigned char *out = dst;
	unsigned long size = cap;
	if (kd_tj.compress2(h, src, w, pitch, ht, pf, &out, &size, subsamp, q, flags | 1024) != 0) return -1;
	return (long)size;
}

static int kd_has_yuv(void) { return kd_tj.decYUV && kd_tj.encYUV && kd_tj.planeW && kd_tj.planeH; }
static int kd_plane_w(int c, int w, int s) { return kd_tj.planeW(c, w, s); }
static int kd_plane_h(int c, int h, int s) { return kd_tj.planeH(c, h, s); }

// The plane pointer and stride arrays live on the C stack so that no Go
// memory holds pointers handed to C.
static int kd_decompress_yuv(kd_tjhandle h, const unsigned char *buf, unsigned long n,
		unsigned char *y, unsigned char *u, unsigned char *v, int ys, int cs, int w, int ht, int flags) {
	unsigned char *planes[3] = {y, u, v};
	int strides[3] = {ys, cs, cs};
	return kd_tj.decYUV(h, buf, n, planes, w, strides, ht, flags);
}

static long kd_compress_yuv(kd_tjhandle h, const unsigned char *y, const unsigned char *u, const unsigned char *v,
		int ys, int cs, int w, int ht, int subsamp, unsigned char *dst, unsigned long cap, int q, int flags) {
	const unsigned char *planes[3] = {y, u, v};
	int strides[3] = {ys, cs, cs};
	unsigned char *out = dst;
	unsigned long size = cap;
	if (kd_tj.encYUV(h, planes, w, strides, ht, subsamp, &out, &size, q, flags | 1024) != 0) return -1;
	return (long)size;
}

static unsigned long kd_bufsize(int w, int h, int subsamp) { return kd_tj.bufSize(w, h, subsamp); }
static const char *kd_errstr(kd_tjhandle h) { return kd_tj.errStr2(h); }
static int kd_errcode(kd_tjhandle h) { return kd_tj.errCode(h); }

static int kd_nscaling(void) { int n = 0; if (kd_tj.scaling(&n) == NULL) return 0; return n; }
static int kd_scaling_num(int i) { int n = 0; return kd_tj.scaling(&n)[i].num; }
static int kd_scaling_denom(int i) { int n = 0; return kd_tj.scaling(&n)[i].denom; }
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// TurboJPEG constants (turbojpeg.h, 2.x API), declared here so that the build
// needs no header.
const (
	tjpfRGB          = 0
	tjsamp420        = 2
	tjcsCMYK         = 3
	tjcsYCCK         = 4
	tjflagLimitScans = 32768
	tjerrWarning     = 0
)

type scalingFactor struct{ num, denom int }

var turbo struct {
	once    sync.Once
	ok      bool
	desc    string
	factors []scalingFactor // sorted by increasing num/denom
}

// loadTurbo opens libturbojpeg once per process.
func loadTurbo() bool {
	turbo.once.Do(func() {
		path := os.Getenv("KEDIFF_TURBOJPEG")
		if path == "off" {
			turbo.desc = "pure Go (libturbojpeg disabled by KEDIFF_TURBOJPEG=off)"
			return
		}
		if path == "" {
			path = "libturbojpeg.so.0"
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		var errbuf [512]C.char
		if msg := C.kd_tj_open(cpath, &errbuf[0], C.int(len(errbuf))); msg != nil {
			turbo.desc = fmt.Sprintf("pure Go (libturbojpeg not loaded from %q: %s; install libturbojpeg0 or set KEDIFF_TURBOJPEG to the library's path)", path, C.GoString(msg))
			return
		}
		n := int(C.kd_nscaling())
		for i := 0; i < n; i++ {
			turbo.factors = append(turbo.factors, scalingFactor{int(C.kd_scaling_num(C.int(i))), int(C.kd_scaling_denom(C.int(i)))})
		}
		// tjGetScalingFactors lists the largest first; keep them ascending.
		for i, j := 0, len(turbo.factors)-1; i < j; i, j = i+1, j-1 {
			turbo.factors[i], turbo.factors[j] = turbo.factors[j], turbo.factors[i]
		}
		file := C.GoString(C.kd_tj_lib_file())
		if real, err := filepath.EvalSymlinks(file); err == nil {
			file = real
		}
		api := "2.x"
		if C.kd_tj_has_v3() != 0 {
			api = "3.x"
		}
		turbo.desc = fmt.Sprintf("libjpeg-turbo (TurboJPEG %s API, %s)", api, file)
		turbo.ok = true
	})
	return turbo.ok
}

// Backend describes the JPEG codec this process uses: libjpeg-turbo with the
// library file it was loaded from, or the pure-Go fallback and why.
func Backend() string {
	loadTurbo()
	return turbo.desc
}

// tjCodec holds one decompressor and one compressor handle. It is not safe
// for concurrent use.
type tjCodec struct {
	dec, enc C.kd_tjhandle
}

func newTJCodec(compress bool) (*tjCodec, error) {
	if !loadTurbo() {
		return nil, fmt.Errorf("imaging: %s", turbo.desc)
	}
	c := &tjCodec{dec: C.kd_init_decompress()}
	if c.dec == nil {
		return nil, fmt.Errorf("imaging: tjInitDecompress failed (out of memory?)")
	}
	if compress {
		c.enc = C.kd_init_compress()
		if c.enc == nil {
			C.kd_destroy(c.dec)
			return nil, fmt.Errorf("imaging: tjInitCompress failed (out of memory?)")
		}
	}
	return c, nil
}

func (c *tjCodec) close() {
	if c == nil {
		return
	}
	C.kd_destroy(c.dec)
	C.kd_destroy(c.enc)
	c.dec, c.enc = nil, nil
}

func cbytes(b []byte) (*C.uchar, C.ulong) {
	return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.ulong(len(b))
}

// header returns the declared size and colour space of a JPEG.
func (c *tjCodec) header(data []byte) (w, h, colorspace int, err error) {
	p, n := cbytes(data)
	r := C.kd_header(c.dec, p, n)
	if r.rc != 0 {
		return 0, 0, 0, fmt.Errorf("%s", C.GoString(C.kd_errstr(c.dec)))
	}
	return int(r.w), int(r.h), int(r.cs), nil
}

// decode decompresses into dst (len >= w*h*3) as packed RGB at the scaled
// size w x h, which must be one of the library's scaled sizes. A warning
// (for example a truncated file) is returned as an error with warning=true.
func (c *tjCodec) decode(data, dst []byte, w, h int) (warning bool, err error) {
	return c.decodeFlags(data, dst, w, h, 0)
}

func (c *tjCodec) decodeFlags(data, dst []byte, w, h, flags int) (warning bool, err error) {
	p, n := cbytes(data)
	if C.kd_decompress(c.dec, p, n, (*C.uchar)(unsafe.Pointer(unsafe.SliceData(dst))), C.int(w), C.int(w*3), C.int(h), tjpfRGB, C.int(tjflagLimitScans|flags)) != 0 {
		msg := C.GoString(C.kd_errstr(c.dec))
		return C.kd_errcode(c.dec) == tjerrWarning, fmt.Errorf("%s", msg)
	}
	return false, nil
}

// encodeBound is the worst-case JPEG size for a w x h image.
func encodeBound(w, h int) int { return int(C.kd_bufsize(C.int(w), C.int(h), tjsamp420)) }

// encode compresses packed RGB src (w x h) into dst, which must hold
// encodeBound(w, h) bytes, and returns the number of bytes written.
func (c *tjCodec) encode(src []byte, w, h, quality int, dst []byte) (int, error) {
	return c.encodeFlags(src, w, h, quality, dst, 0)
}

func (c *tjCodec) encodeFlags(src []byte, w, h, quality int, dst []byte, flags int) (int, error) {
	return c.encodeSubsamp(src, w, h, quality, dst, flags, tjsamp420)
}

// encodeSubsamp is encodeFlags with a chosen chroma subsampling (tests make
// inputs with it); dst must hold tjBufSize for that subsampling.
func (c *tjCodec) encodeSubsamp(src []byte, w, h, quality int, dst []byte, flags, subsamp int) (int, error) {
	sp := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(src)))
	dp := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(dst)))
	n := C.kd_compress(c.enc, sp, C.int(w), C.int(w*3), C.int(h), tjpfRGB, dp, C.ulong(len(dst)), C.int(subsamp), C.int(quality), C.int(flags))
	if n < 0 {
		return 0, fmt.Errorf("tjCompress2: %s", C.GoString(C.kd_errstr(c.enc)))
	}
	return int(n), nil
}

func turboFactors() []scalingFactor { return turbo.factors }

// TurboJPEG subsampling and colour-space codes used by the YUV path.
const (
	tjsamp444  = 0
	tjsamp422  = 1
	tjsampGray = 3
	tjsamp440  = 4
	tjsamp411  = 5
	tjcsYCbCr  = 1
	tjcsGray   = 2
)

func haveTurboYUV() bool { return loadTurbo() && C.kd_has_yuv() != 0 }

// headerSub is header plus the chroma subsampling (tjsamp*).
func (c *tjCodec) headerSub(data []byte) (w, h, subsamp, colorspace int, err error) {
	p, n := cbytes(data)
	r := C.kd_header(c.dec, p, n)
	if r.rc != 0 {
		return 0, 0, 0, 0, fmt.Errorf("%s", C.GoString(C.kd_errstr(c.dec)))
	}
	return int(r.w), int(r.h), int(r.subsamp), int(r.cs), nil
}

// planeSize is the size TurboJPEG uses for component c of a w x h image:
// the luma plane is padded to whole chroma samples (e.g. even for 4:2:0).
func planeSize(c, w, h, subsamp int) (int, int) {
	return int(C.kd_plane_w(C.int(c), C.int(w), C.int(subsamp))), int(C.kd_plane_h(C.int(c), C.int(h), C.int(subsamp)))
}

// decodeYUV decompresses into Y, Cb, Cr planes (only y for grayscale) at
// the scaled size w x h, skipping chroma upsampling and colour conversion.
func (c *tjCodec) decodeYUV(data, y, u, v []byte, ys, cs, w, h int) (warning bool, err error) {
	p, n := cbytes(data)
	if C.kd_decompress_yuv(c.dec, p, n, ucp(y), ucp(u), ucp(v), C.int(ys), C.int(cs), C.int(w), C.int(h), tjflagLimitScans) != 0 {
		msg := C.GoString(C.kd_errstr(c.dec))
		return C.kd_errcode(c.dec) == tjerrWarning, fmt.Errorf("%s", msg)
	}
	return false, nil
}

// encodeYUV compresses 4:2:0 planes of a w x h image into dst (at least
// encodeBound(w, h) bytes), skipping colour conversion and downsampling.
func (c *tjCodec) encodeYUV(y, u, v []byte, ys, cs, w, h, quality int, dst []byte) (int, error) {
	n := C.kd_compress_yuv(c.enc, ucp(y), ucp(u), ucp(v), C.int(ys), C.int(cs), C.int(w), C.int(h), tjsamp420,
		ucp(dst), C.ulong(len(dst)), C.int(quality), 0)
	if n < 0 {
		return 0, fmt.Errorf("tjCompressFromYUVPlanes: %s", C.GoString(C.kd_errstr(c.enc)))
	}
	return int(n), nil
}

func ucp(b []byte) *C.uchar { return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))) }
