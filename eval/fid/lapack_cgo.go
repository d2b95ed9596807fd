//go:build cgo

package fid

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// Our own prototypes, so that neither a header nor -lopenblas is needed at
// build time. The LAPACK routines use the Fortran ABI of Debian's OpenBLAS
// (gfortran, 32-bit integers): every argument by reference, and the length
// of each CHARACTER argument appended at the end as a size_t. The CBLAS ones
// pass enums as int and complex scalars by pointer.
typedef void (*kd_dgees_fn)(const char *jobvs, const char *sort, void *select, const int *n,
                            double *a, const int *lda, int *sdim, double *wr, double *wi,
                            double *vs, const int *ldvs, double *work, const int *lwork,
                            int *bwork, int *info, size_t, size_t);
typedef void (*kd_trsyl_fn)(const char *trana, const char *tranb, const int *isgn, const int *m,
                            const int *n, const void *a, const int *lda, const void *b,
                            const int *ldb, void *c, const int *ldc, double *scale, int *info,
                            size_t, size_t);
typedef void (*kd_dgemm_fn)(int, int, int, int, int, int, double, const double *, int,
                            const double *, int, double, double *, int);
typedef void (*kd_zgemm_fn)(int, int, int, int, int, int, const void *, const void *, int,
                            const void *, int, const void *, void *, int);
typedef void (*kd_dtrmm_fn)(int, int, int, int, int, int, int, double, const double *, int,
                            double *, int);
typedef void (*kd_ztrmm_fn)(int, int, int, int, int, int, int, const void *, const void *, int,
                            void *, int);

static kd_dgees_fn kd_dgees_p;
static kd_trsyl_fn kd_dtrsyl_p, kd_ztrsyl_p;
static kd_dgemm_fn kd_dgemm_p;
static kd_zgemm_fn kd_zgemm_p;
static kd_dtrmm_fn kd_dtrmm_p;
static kd_ztrmm_fn kd_ztrmm_p;

// kd_lapack_open loads path and returns NULL, or the name of the first
// missing symbol, or "" when dlopen failed (dlerror says why).
static const char *kd_lapack_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return "";
	if (!(kd_dgees_p = (kd_dgees_fn)dlsym(h, "dgees_"))) return "dgees_";
	if (!(kd_dtrsyl_p = (kd_trsyl_fn)dlsym(h, "dtrsyl_"))) return "dtrsyl_";
	if (!(kd_ztrsyl_p = (kd_trsyl_fn)dlsym(h, "ztrsyl_"))) return "ztrsyl_";
	if (!(kd_dgemm_p = (kd_dgemm_fn)dlsym(h, "cblas_dgemm"))) return "cblas_dgemm";
	if (!(kd_zgemm_p = (kd_zgemm_fn)dlsym(h, "cblas_zgemm"))) return "cblas_zgemm";
	if (!(kd_dtrmm_p = (kd_dtrmm_fn)dlsym(h, "cblas_dtrmm"))) return "cblas_dtrmm";
	if (!(kd_ztrmm_p = (kd_ztrmm_fn)dlsym(h, "cblas_ztrmm"))) return "cblas_ztrmm";
	return NULL;
}

static const char *kd_lapack_error(void) { return dlerror(); }

static int kd_dgees(int n, double *a, double *wr, double *wi, double *vs, double *work, int lwork,
                    int *bwork) {
	int sdim = 0, info = 0;
	kd_dgees_p("V", "N", NULL, &n, a, &n, &sdim, wr, wi, vs, &n, work, &lwork, bwork, &info, 1, 1);
	return info;
}

static int kd_trsyl(int cplx, int m, int n, const void *a, const void *b, void *c, double *scale) {
	int one = 1, info = 0;
	(cplx ? kd_ztrsyl_p : kd_dtrsyl_p)("N", "N", &one, &m, &n, a, &m, b, &n, c, &m, scale, &info,
	                                   1, 1);
	return info;
}

// Row-major products: CblasRowMajor = 101, CblasNoTrans = 111,
// CblasTrans = 112, CblasRight = 142, CblasUpper = 121, CblasNonUnit = 131.
static void kd_dgemm(int ta, int m, int n, int k, double alpha, const double *a, int lda,
                     const double *b, int ldb, double beta, double *c, int ldc) {
	kd_dgemm_p(101, ta ? 112 : 111, 111, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void kd_zgemm(int m, int n, int k, const void *alpha, const void *a, int lda, const void *b,
                     int ldb, const void *beta, void *c, int ldc) {
	kd_zgemm_p(101, 111, 111, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void kd_dtrmm_right_upper(int m, int n, const double *a, int lda, double *b, int ldb) {
	kd_dtrmm_p(101, 142, 121, 111, 131, m, n, 1.0, a, lda, b, ldb);
}
static void kd_ztrmm_right_upper(int m, int n, const void *alpha, const void *a, int lda, void *b,
                                 int ldb) {
	kd_ztrmm_p(101, 142, 121, 111, 131, m, n, alpha, a, lda, b, ldb);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// blasThreadTimeout is kernels' OPENBLAS_THREAD_TIMEOUT (see
// kernels/blas_cgo.go): whichever package loads OpenBLAS first sets it, so
// the library behaves the same whichever that is.
const blasThreadTimeout = "20"

// openLAPACK dlopens path and looks up every routine the LAPACK path calls.
func openLAPACK(path string) error {
	if _, set := os.LookupEnv("OPENBLAS_THREAD_TIMEOUT"); !set {
		os.Setenv("OPENBLAS_THREAD_TIMEOUT", blasThreadTimeout)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	missing := C.kd_lapack_open(cpath)
	switch {
	case missing == nil:
		return nil
	case C.GoString(missing) != "":
		return fmt.Errorf("%s not exported (a BLAS without LAPACK?)", C.GoString(missing))
	}
	if e := C.kd_lapack_error(); e != nil {
		return errors.New(C.GoString(e))
	}
	return errors.New("dlopen failed")
}

// lapackDgees is dgees with JOBVS = 'V' and SORT = 'N' on the column-major
// n x n a (overwritten by T), the Schur vectors into the column-major vs. A
// positive result is dgees's INFO (the QR algorithm did not converge).
func lapackDgees(n int, a, vs []float64) (info int) {
	wr, wi := make([]float64, n), make([]float64, n)
	bwork := make([]C.int, n)
	// The optimal workspace, as scipy.linalg.schur asks for it: dgehrd and
	// the QR sweeps choose their blocking by what they are given.
	work := make([]float64, 1)
	C.kd_dgees(C.int(n), dptr(a), dptr(wr), dptr(wi), dptr(vs), dptr(work), -1, &bwork[0])
	work = make([]float64, max(int(work[0]), 3*n))
	return int(C.kd_dgees(C.int(n), dptr(a), dptr(wr), dptr(wi), dptr(vs), dptr(work), C.int(len(work)), &bwork[0]))
}

// lapackTrsyl solves A X + X B = scale C for the m x m upper-triangular a and
// n x n b (column-major), X overwriting the column-major m x n c, as dtrsyl
// or ztrsyl with TRANA = TRANB = 'N' and ISGN = 1.
//
// OpenBLAS 0.3.21's ztrsyl_ faulted just past the end of its C operand when
// C ended at the end of a mapped page (kediff eval fid at 2,048 dimensions,
// the complex Schur path; its vectorised kernels appear to load whole SIMD
// widths past a vector's end), so every operand is handed over with
// trsylPad zero elements behind it.
func lapackTrsyl[T float64 | complex128](m, n int, a, b, c []T) (scale float64) {
	_, cplx := any(a).([]complex128)
	pa, pb, pc := padded(a), padded(b), padded(c)
	var s C.double
	C.kd_trsyl(cbool(cplx), C.int(m), C.int(n), unsafe.Pointer(&pa[0]), unsafe.Pointer(&pb[0]), unsafe.Pointer(&pc[0]), &s)
	copy(c, pc)
	return float64(s)
}

// trsylPad is the slack behind each trsyl operand: 64 bytes or more.
const trsylPad = 8

func padded[T float64 | complex128](x []T) []T {
	p := make([]T, len(x)+trsylPad)
	copy(p, x)
	return p
}

// blasGemm is C = alpha A B + beta C for the row-major m x k a, k x n b and
// m x n c with row strides lda, ldb and ldc.
func blasGemm[T float64 | complex128](m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float64:
		C.kd_dgemm(0, C.int(m), C.int(n), C.int(k), C.double(any(alpha).(float64)), dptr(a), C.int(lda),
			dptr(any(b).([]float64)), C.int(ldb), C.double(any(beta).(float64)), dptr(any(c).([]float64)), C.int(ldc))
	case []complex128:
		C.kd_zgemm(C.int(m), C.int(n), C.int(k), unsafe.Pointer(&alpha), unsafe.Pointer(&a[0]), C.int(lda),
			unsafe.Pointer(&b[0]), C.int(ldb), unsafe.Pointer(&beta), unsafe.Pointer(&c[0]), C.int(ldc))
	}
}

// blasDgemmTA is C = alpha A^T B + beta C for the row-major k x m a, k x n
// b and m x n c with row strides lda, ldb and ldc.
func blasDgemmTA(m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	C.kd_dgemm(1, C.int(m), C.int(n), C.int(k), C.double(alpha), dptr(a), C.int(lda), dptr(b), C.int(ldb), C.double(beta), dptr(c), C.int(ldc))
}

// blasTrmmRightUpper is B = B A for the row-major m x n b and the n x n
// upper-triangular a.
func blasTrmmRightUpper[T float64 | complex128](m, n int, a, b []T) {
	switch a := any(a).(type) {
	case []float64:
		C.kd_dtrmm_right_upper(C.int(m), C.int(n), dptr(a), C.int(n), dptr(any(b).([]float64)), C.int(n))
	case []complex128:
		one := complex128(1)
		C.kd_ztrmm_right_upper(C.int(m), C.int(n), unsafe.Pointer(&one), unsafe.Pointer(&a[0]), C.int(n), unsafe.Pointer(&b[0]), C.int(n))
	}
}

func dptr(x []float64) *C.double { return (*C.double)(unsafe.Pointer(&x[0])) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
