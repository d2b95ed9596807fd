package kernels

import (
	"fmt"
	"log"
	"os"
	"sync"
)

// Float is the element type of every kernel. Production code runs float32; the
// tests run the same generic code in float64 so finite differences are exact
// enough to check backward passes to ~1e-9.
type Float interface{ ~float32 | ~float64 }

// blas holds the run-time-loaded OpenBLAS state. GEMM goes through it when
// present and enabled; otherwise through goGemm.
var blas struct {
	once    sync.Once
	ok      bool
	path    string
	threads int
	core    string // OpenBLAS's kernel set, e.g. "Cooperlake" or "Haswell"
	off     bool   // tests force the pure-Go path with SetBLAS(false)
}

func loadBLAS() {
	blas.once.Do(func() {
		blas.path = os.Getenv("KEDIFF_OPENBLAS")
		if blas.path == "" {
			blas.path = "libopenblas.so.0"
		}
		threads, err := openBLAS(blas.path)
		if err != nil {
			log.Printf("kernels: OpenBLAS %q not loaded (%v); using the pure-Go GEMM, expect it to be several times slower (install libopenblas0 or set KEDIFF_OPENBLAS)", blas.path, err)
			return
		}
		blas.ok, blas.threads, blas.core = true, threads, blasCore()
	})
}

// GEMMBackend says which GEMM is in use: "openblas (<path>, N threads, core
// <kernel set>)" or "go". The kernel set matters as much as the library: on
// an AVX-512 CPU, OPENBLAS_CORETYPE=Haswell (AVX2) runs sgemm at about 60% of
// the speed of OpenBLAS's own choice (SkylakeX or Cooperlake). Loading
// OpenBLAS also sets OPENBLAS_THREAD_TIMEOUT when unset (blasThreadTimeout).
func GEMMBackend() string {
	loadBLAS()
	if blas.ok && !blas.off {
		return fmt.Sprintf("openblas (%s, %d threads, core %s)", blas.path, blas.threads, blas.core)
	}
	return "go"
}

// OpenBLASCore is the kernel set the loaded OpenBLAS uses (e.g. "Cooperlake",
// "SkylakeX", "Haswell"), or "" when OpenBLAS is not loaded.
func OpenBLASCore() string {
	loadBLAS()
	return blas.core
}

// SetBLAS enables or disables the OpenBLAS path (when it loaded) and returns the
// previous setting. Not safe to call while kernels run; meant for tests and
// benchmarks comparing the two paths.
func SetBLAS(on bool) (was bool) {
	loadBLAS()
	was = !blas.off
	blas.off = !on
	return was
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C in row-major layout, where op(A)
// is (M,K) and op(B) is (K,N): A is (M,K) with row stride lda, or (K,M) when
// transA; B is (K,N) with row stride ldb, or (N,K) when transB; C is (M,N) with
// row stride ldc. Same contract as cblas_?gemm with CblasRowMajor. When beta is
// 0, C's previous contents are ignored (NaNs included).
func Gemm[F Float](transA, transB bool, M, N, K int, alpha F, A []F, lda int, B []F, ldb int, beta F, C []F, ldc int) {
	if M <= 0 || N <= 0 {
		return
	}
	checkMat("C", C, M, N, ldc)
	if K <= 0 || alpha == 0 {
		scaleMat(C, M, N, ldc, beta)
		return
	}
	if transA {
		checkMat("A", A, K, M, lda)
	} else {
		checkMat("A", A, M, K, lda)
	}
	if transB {
		checkMat("B", B, N, K, ldb)
	} else {
		checkMat("B", B, K, N, ldb)
	}
	loadBLAS()
	if blas.ok && !blas.off {
		switch a := any(A).(type) {
		case []float32:
			blasSgemm(transA, transB, M, N, K, float32(alpha), a, lda, any(B).([]float32), ldb, float32(beta), any(C).([]float32), ldc)
			return
		case []float64:
			blasDgemm(transA, transB, M, N, K, float64(alpha), a, lda, any(B).([]float64), ldb, float64(beta), any(C).([]float64), ldc)
			return
		}
	}
	goGemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
}

// checkMat panics before a bad call reaches C code and corrupts memory.
func checkMat[F Float](name string, m []F, rows, cols, ld int) {
	if ld < cols || len(m) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernels: Gemm: %s has %d elements, need a %dx%d matrix with row stride %d", name, len(m), rows, cols, ld))
	}
}

func scaleMat[F Float](c []F, m, n, ldc int, beta F) {
	if beta == 1 {
		return
	}
	parallelFor(m, grainFor(n), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	})
}

// Pure-Go GEMM: the classic packed layout (Goto/BLIS). B is packed per K-block
// into NR-wide panels shared by all workers, each worker packs MR-tall panels of
// its own rows of A, and a 2x4 register-blocked micro-kernel does the FMAs.
// Transposes are handled by the packing only.
const (
	gemmMR = 2
	gemmNR = 4
	gemmKC = 256
	gemmMC = 64
)

var gemmBufs32, gemmBufs64 sync.Pool

func getBuf[F Float](n int) *[]F {
	var zero F
	var p any
	if _, ok := any(zero).(float32); ok {
		p = gemmBufs32.Get()
	} else {
		p = gemmBufs64.Get()
	}
	b, _ := p.(*[]F)
	if b == nil || cap(*b) < n {
		s := make([]F, n)
		return &s
	}
	*b = (*b)[:n]
	return b
}

func putBuf[F Float](b *[]F) {
	var zero F
	if _, ok := any(zero).(float32); ok {
		gemmBufs32.Put(b)
	} else {
		gemmBufs64.Put(b)
	}
}

func goGemm[F Float](ta, tb bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	scaleMat(c, m, n, ldc, beta)
	npan := (n + gemmNR - 1) / gemmNR
	bp := getBuf[F](gemmKC * npan * gemmNR)
	defer putBuf(bp)
	for pc := 0; pc < k; pc += gemmKC {
		kc := min(gemmKC, k-pc)
		packed := (*bp)[:kc*npan*gemmNR]
		parallelFor(npan, grainFor(kc*gemmNR), func(lo, hi int) {
			for jp := lo; jp < hi; jp++ {
				dst := packed[jp*kc*gemmNR : (jp+1)*kc*gemmNR]
				for p := 0; p < kc; p++ {
					for j := 0; j < gemmNR; j++ {
						col := jp*gemmNR + j
						var v F
						if col < n {
							if tb {
								v = b[col*ldb+pc+p]
							} else {
								v = b[(pc+p)*ldb+col]
							}
						}
						dst[p*gemmNR+j] = v
					}
				}
			}
		})
		nblk := (m + gemmMC - 1) / gemmMC
		parallelFor(nblk, 1, func(lo, hi int) {
			ap := getBuf[F](gemmMC * kc)
			defer putBuf(ap)
			for ib := lo; ib < hi; ib++ {
				i0 := ib * gemmMC
				mc := min(gemmMC, m-i0)
				mpan := (mc + gemmMR - 1) / gemmMR
				apk := (*ap)[:mpan*gemmMR*kc]
				for ip := 0; ip < mpan; ip++ {
					dst := apk[ip*kc*gemmMR : (ip+1)*kc*gemmMR]
					for p := 0; p < kc; p++ {
						for i := 0; i < gemmMR; i++ {
							row := i0 + ip*gemmMR + i
							var v F
							if row < m {
								if ta {
									v = a[(pc+p)*lda+row]
								} else {
									v = a[row*lda+pc+p]
								}
							}
							dst[p*gemmMR+i] = v
						}
					}
				}
				for jp := 0; jp < npan; jp++ {
					bpan := packed[jp*kc*gemmNR : (jp+1)*kc*gemmNR]
					nr := min(gemmNR, n-jp*gemmNR)
					for ip := 0; ip < mpan; ip++ {
						mr := min(gemmMR, mc-ip*gemmMR)
						micro(apk[ip*kc*gemmMR:(ip+1)*kc*gemmMR], bpan, c[(i0+ip*gemmMR)*ldc+jp*gemmNR:], ldc, alpha, mr, nr)
					}
				}
			}
		})
	}
}

// micro adds alpha * (packed A panel) x (packed B panel) into the mr x nr
// corner of c. The 2x4 tile keeps its 8 accumulators, 4 B values and one A
// value in the 16 SSE registers; a 4x4 tile made the Go compiler spill.
func micro[F Float](a, b, c []F, ldc int, alpha F, mr, nr int) {
	var c00, c01, c02, c03, c10, c11, c12, c13 F
	for len(a) >= 2 && len(b) >= 4 {
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		a0 := a[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := a[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a, b = a[2:], b[4:]
	}
	acc := [2][4]F{{c00, c01, c02, c03}, {c10, c11, c12, c13}}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			row[j] += alpha * acc[i][j]
		}
	}
}
