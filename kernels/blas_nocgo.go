//go:build !cgo

package kernels

import "errors"

// Without cgo there is no dlopen: GEMM always uses the pure-Go kernel.
func openBLAS(string) (int, error) { return 0, errors.New("built without cgo") }

func blasCore() string { return "" }

func blasSgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	panic("kernels: blasSgemm without cgo")
}

func blasDgemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	panic("kernels: blasDgemm without cgo")
}
