//go:build !cgo

package fid

import "errors"

// Without cgo there is no dlopen: the distance always uses gonum's pure-Go
// LAPACK and BLAS.
func openLAPACK(string) error { return errors.New("built without cgo") }

func lapackDgees(n int, a, vs []float64) int { panic("fid: lapackDgees without cgo") }

func lapackTrsyl[T float64 | complex128](m, n int, a, b, c []T) float64 {
	panic("fid: lapackTrsyl without cgo")
}

func blasGemm[T float64 | complex128](m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	panic("fid: blasGemm without cgo")
}

func blasDgemmTA(m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	panic("fid: blasDgemmTA without cgo")
}

func blasTrmmRightUpper[T float64 | complex128](m, n int, a, b []T) {
	panic("fid: blasTrmmRightUpper without cgo")
}
