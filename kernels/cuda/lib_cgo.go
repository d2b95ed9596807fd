//go:build cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

typedef const char *(*kd_init_fn)(int, char *, int, long long *);
typedef int (*kd_op_count_fn)(void);
typedef const char *(*kd_op_name_fn)(int);
typedef void *(*kd_alloc_fn)(long, int, const char **);
typedef void (*kd_free_fn)(void *);
typedef int (*kd_dtype_fn)(const void *);
typedef const char *(*kd_upload_fn)(void *, const float *, long);
typedef const char *(*kd_download_fn)(float *, const void *, long);
typedef const char *(*kd_zero_fn)(void *, long);
typedef const char *(*kd_sync_fn)(void);
typedef const char *(*kd_run_fn)(int, void **, const long *, const double *, const int32_t *, double *);
typedef void (*kd_mem_fn)(long long *, long long *, int);
typedef int (*kd_set_variant_fn)(int, int);
typedef const char *(*kd_device_pointer_fn)(const void *, long, void **, int *);
typedef void *(*kd_stream_fn)(void);

typedef struct {
	void *h;
	kd_init_fn init;
	kd_op_count_fn op_count;
	kd_op_name_fn op_name;
	kd_alloc_fn alloc;
	kd_free_fn free;
	kd_dtype_fn dtype;
	kd_upload_fn upload;
	kd_download_fn download;
	kd_zero_fn zero;
	kd_sync_fn sync;
	kd_run_fn run;
	kd_mem_fn mem;
	kd_set_variant_fn set_variant;
	kd_device_pointer_fn device_pointer;
	kd_stream_fn stream;
} kd_lib;

static const char *kd_open(kd_lib *l, const char *path) {
	l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!l->h) return dlerror();
#define SYM(f, n) if (!(*(void **)&l->f = dlsym(l->h, n))) return "symbol " n " missing";
	SYM(init, "kd_init") SYM(op_count, "kd_op_count") SYM(op_name, "kd_op_name") SYM(alloc, "kd_alloc")
	SYM(free, "kd_free") SYM(dtype, "kd_dtype") SYM(upload, "kd_upload") SYM(download, "kd_download")
	SYM(zero, "kd_zero") SYM(sync, "kd_sync") SYM(run, "kd_run") SYM(mem, "kd_mem")
	SYM(set_variant, "kd_set_variant") SYM(device_pointer, "kd_device_pointer") SYM(stream, "kd_stream")
#undef SYM
	return NULL;
}

static const char *kd_c_init(kd_lib *l, int d, char *name, int n, long long *total) { return l->init(d, name, n, total); }
static int kd_c_op_count(kd_lib *l) { return l->op_count(); }
static const char *kd_c_op_name(kd_lib *l, int op) { return l->op_name(op); }
static void *kd_c_alloc(kd_lib *l, long n, int dt, const char **err) { return l->alloc(n, dt, err); }
static void kd_c_free(kd_lib *l, void *v) { l->free(v); }
static int kd_c_dtype(kd_lib *l, const void *v) { return l->dtype(v); }
static const char *kd_c_upload(kd_lib *l, void *v, const float *src, long n) { return l->upload(v, src, n); }
static const char *kd_c_download(kd_lib *l, float *dst, const void *v, long n) { return l->download(dst, v, n); }
static const char *kd_c_zero(kd_lib *l, void *v, long n) { return l->zero(v, n); }
static const char *kd_c_sync(kd_lib *l) { return l->sync(); }
static int kd_c_set_variant(kd_lib *l, int family, int v) { return l->set_variant(family, v); }
static const char *kd_c_device_pointer(kd_lib *l, uintptr_t v, long n, uintptr_t *dev, int *dt) {
	void *p = NULL;
	const char *e = l->device_pointer((const void *)v, n, &p, dt);
	*dev = (uintptr_t)p;
	return e;
}
static uintptr_t kd_c_stream(kd_lib *l) { return (uintptr_t)l->stream(); }
static void kd_c_mem(kd_lib *l, long long *live, long long *peak, int reset) { l->mem(live, peak, reset); }
static const char *kd_c_run(kd_lib *l, int op, void **p, const long *n, const double *f, const int32_t *host, double *res) {
	return l->run(op, p, n, f, host, res);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// library is an opened libkediff_cuda (or its emulation).
type library struct {
	l    *C.kd_lib
	path string
}

var libs struct {
	sync.Mutex
	open map[string]*library
}

// openLibrary dlopens path once per process and checks that its op table is
// the one this package was built for.
func openLibrary(path string) (*library, error) {
	libs.Lock()
	defer libs.Unlock()
	if l, ok := libs.open[path]; ok {
		return l, nil
	}
	l := &library{l: (*C.kd_lib)(C.calloc(1, C.size_t(unsafe.Sizeof(C.kd_lib{})))), path: path}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	if e := C.kd_open(l.l, cp); e != nil {
		return nil, loadError{fmt.Errorf("%s", C.GoString(e))}
	}
	if n := int(C.kd_c_op_count(l.l)); n != int(opCount) {
		return nil, fmt.Errorf("%s has %d ops, this kediff expects %d: rebuild it from this checkout (go tool task build-cuda)", path, n, opCount)
	}
	for i := range int(opCount) {
		if got := C.GoString(C.kd_c_op_name(l.l, C.int(i))); got != opNames[i] {
			return nil, fmt.Errorf("%s: op %d is %q, this kediff expects %q: rebuild it from this checkout (go tool task build-cuda)", path, i, got, opNames[i])
		}
	}
	if libs.open == nil {
		libs.open = map[string]*library{}
	}
	libs.open[path] = l
	return l, nil
}

func (l *library) init(device int) (name string, total int64, err error) {
	buf := make([]byte, 256)
	var t C.longlong
	if e := C.kd_c_init(l.l, C.int(device), (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)), &t); e != nil {
		return "", 0, fmt.Errorf("%s", C.GoString(e))
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0]))), int64(t), nil
}

func (l *library) alloc(n int, dtype int) (unsafe.Pointer, error) {
	var e *C.char
	v := C.kd_c_alloc(l.l, C.long(n), C.int(dtype), &e)
	if e != nil {
		return nil, fmt.Errorf("%s", C.GoString(e))
	}
	return v, nil
}

func (l *library) free(v unsafe.Pointer) { C.kd_c_free(l.l, v) }

func (l *library) setVariant(family, v int) int {
	return int(C.kd_c_set_variant(l.l, C.int(family), C.int(v)))
}

func (l *library) dtype(v unsafe.Pointer) int { return int(C.kd_c_dtype(l.l, v)) }

func (l *library) upload(v unsafe.Pointer, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return cerr(C.kd_c_upload(l.l, v, (*C.float)(unsafe.Pointer(unsafe.SliceData(src))), C.long(len(src))))
}

func (l *library) download(dst []float32, v unsafe.Pointer) error {
	if len(dst) == 0 {
		return nil
	}
	return cerr(C.kd_c_download(l.l, (*C.float)(unsafe.Pointer(unsafe.SliceData(dst))), v, C.long(len(dst))))
}

func (l *library) zero(v unsafe.Pointer, n int) error {
	if n == 0 {
		return nil
	}
	return cerr(C.kd_c_zero(l.l, v, C.long(n)))
}

func (l *library) sync() error { return cerr(C.kd_c_sync(l.l)) }

// devicePointer resolves n elements at view address v to their device
// address and element type.
func (l *library) devicePointer(v uintptr, n int) (uintptr, int, error) {
	var dev C.uintptr_t
	var dt C.int
	if err := cerr(C.kd_c_device_pointer(l.l, C.uintptr_t(v), C.long(n), &dev, &dt)); err != nil {
		return 0, 0, err
	}
	return uintptr(dev), int(dt), nil
}

func (l *library) stream() uintptr { return uintptr(C.kd_c_stream(l.l)) }

func (l *library) mem(reset bool) (live, peak int64) {
	var lv, pk C.longlong
	r := C.int(0)
	if reset {
		r = 1
	}
	C.kd_c_mem(l.l, &lv, &pk, r)
	return int64(lv), int64(pk)
}

// args is an op's arguments in C memory (the views are not Go pointers, but
// a Go array holding them would be checked by cgo as Go memory).
type args struct {
	p   *[16]unsafe.Pointer
	n   *[16]C.long
	f   *[8]C.double
	res *C.double
}

func newArgs() args {
	return args{
		p:   (*[16]unsafe.Pointer)(C.calloc(16, C.size_t(unsafe.Sizeof(unsafe.Pointer(nil))))),
		n:   (*[16]C.long)(C.calloc(16, C.size_t(unsafe.Sizeof(C.long(0))))),
		f:   (*[8]C.double)(C.calloc(8, C.size_t(unsafe.Sizeof(C.double(0))))),
		res: (*C.double)(C.calloc(1, C.size_t(unsafe.Sizeof(C.double(0))))),
	}
}

func (l *library) run(o op, a args, host []int32) (float64, error) {
	var h *C.int32_t
	if len(host) > 0 {
		h = (*C.int32_t)(unsafe.Pointer(unsafe.SliceData(host)))
	}
	e := C.kd_c_run(l.l, C.int(o), &a.p[0], &a.n[0], &a.f[0], h, a.res)
	return float64(*a.res), cerr(e)
}

func setArgs(a args, ptrs []unsafe.Pointer, ints []int, floats []float64) {
	for i := range a.p {
		a.p[i] = nil
	}
	copy(a.p[:], ptrs)
	for i, v := range ints {
		a.n[i] = C.long(v)
	}
	for i, v := range floats {
		a.f[i] = C.double(v)
	}
	*a.res = 0
}

func cerr(e *C.char) error {
	if e == nil {
		return nil
	}
	return fmt.Errorf("%s", C.GoString(e))
}
