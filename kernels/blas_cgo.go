//go:build cgo

package kernels

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// Our own prototypes (CBLAS ABI: enums are passed as int) so no header or
// -lopenblas is needed at build time.
typedef void (*kd_sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                            const float *, int, float, float *, int);
typedef void (*kd_dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                            const double *, int, double, double *, int);
typedef int (*kd_nthreads_fn)(void);
typedef char *(*kd_corename_fn)(void);

static kd_sgemm_fn kd_sgemm_p;
static kd_dgemm_fn kd_dgemm_p;
static kd_nthreads_fn kd_nthreads_p;
static kd_corename_fn kd_corename_p;

static int kd_blas_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return 0;
	kd_sgemm_p = (kd_sgemm_fn)dlsym(h, "cblas_sgemm");
	kd_dgemm_p = (kd_dgemm_fn)dlsym(h, "cblas_dgemm");
	kd_nthreads_p = (kd_nthreads_fn)dlsym(h, "openblas_get_num_threads");
	kd_corename_p = (kd_corename_fn)dlsym(h, "openblas_get_corename");
	return kd_sgemm_p != NULL && kd_dgemm_p != NULL;
}

static const char *kd_blas_error(void) { return dlerror(); }

static int kd_blas_threads(void) { return kd_nthreads_p ? kd_nthreads_p() : 0; }

static const char *kd_blas_core(void) { return kd_corename_p ? kd_corename_p() : ""; }

// CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
static void kd_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
	kd_sgemm_p(101, ta ? 112 : 111, tb ? 112 : 111, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void kd_dgemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                     const double *b, int ldb, double beta, double *c, int ldc) {
	kd_dgemm_p(101, ta ? 112 : 111, tb ? 112 : 111, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// blasThreadTimeout is OPENBLAS_THREAD_TIMEOUT unless the environment sets
// it: after a call, OpenBLAS's worker threads spin (sched_yield) for 2^N
// cycles before they sleep, 2^28 by default, a tenth of a second. Between
// GEMMs the model runs other kernels on the same cores, which the spinning
// threads then compete with: a bench-train step at 2 threads used 2.0 CPU-s
// with the default and 1.3 with 2^20 (about 0.3 ms), in the same wall time.
// OpenBLAS reads it once, when it is loaded; os.Setenv also sets it for C
// and for child processes (bench-train's PyTorch side runs the same OpenBLAS).
const blasThreadTimeout = "20"

func openBLAS(path string) (threads int, err error) {
	if _, set := os.LookupEnv("OPENBLAS_THREAD_TIMEOUT"); !set {
		os.Setenv("OPENBLAS_THREAD_TIMEOUT", blasThreadTimeout)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.kd_blas_open(cpath) == 0 {
		msg := "cblas_sgemm/cblas_dgemm not exported"
		if e := C.kd_blas_error(); e != nil {
			msg = C.GoString(e)
		}
		return 0, fmt.Errorf("%s", msg)
	}
	return int(C.kd_blas_threads()), nil
}

// blasCore is the kernel set OpenBLAS picked (openblas_get_corename), or "".
// OpenBLAS chooses it once, at load: from $OPENBLAS_CORETYPE when set, else
// by CPUID (0.3.21 picks Cooperlake, its AVX-512 kernels, on AMD Zen 4/5).
func blasCore() string { return C.GoString(C.kd_blas_core()) }

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func blasSgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.kd_sgemm(b2i(ta), b2i(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}

func blasDgemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	C.kd_dgemm(b2i(ta), b2i(tb), C.int(m), C.int(n), C.int(k), C.double(alpha),
		(*C.double)(unsafe.Pointer(&a[0])), C.int(lda), (*C.double)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.int(ldc))
}
