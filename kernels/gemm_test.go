package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// naiveGemm is the textbook triple loop the fast paths are checked against.
func naiveGemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*lda+p]
				if ta {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if tb {
					bv = b[j*ldb+p]
				}
				s += av * bv
			}
			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
		}
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	for _, path := range gemmPaths(t) {
		for _, sh := range [][3]int{{1, 1, 1}, {5, 7, 3}, {67, 33, 300}, {130, 9, 513}, {4, 4, 4}} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					m, n, k := sh[0], sh[1], sh[2]
					t.Run(fmt.Sprintf("%s/%dx%dx%d/ta=%v/tb=%v", path, m, n, k, ta, tb), func(t *testing.T) {
						rng := rand.New(rand.NewPCG(1, 2))
						lda, ldb, ldc := k+1, n+2, n+3
						if ta {
							lda = m + 1
						}
						if tb {
							ldb = k + 2
						}
						a := randSlice(rng, max(m, k)*lda)
						b := randSlice(rng, max(n, k)*ldb)
						c := randSlice(rng, m*ldc)
						want := append([]float64(nil), c...)
						naiveGemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
						Gemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
						if e := relErr(c, want); e > 1e-13 {
							t.Errorf("relative error %.3g", e)
						}
					})
				}
			}
		}
	}
}

// gemmPaths returns the GEMM paths available here and restores the setting after
// the test. The pure-Go path is always tested; OpenBLAS when it loaded.
func gemmPaths(t testing.TB) []string {
	was := SetBLAS(true)
	t.Cleanup(func() { SetBLAS(was) })
	paths := []string{"go"}
	if GEMMBackend() != "go" {
		paths = append(paths, "openblas")
	}
	return paths
}

func useGemmPath(path string) { SetBLAS(path == "openblas") }

func BenchmarkSgemm1024(b *testing.B) {
	for _, path := range gemmPaths(b) {
		b.Run(path, func(b *testing.B) {
			useGemmPath(path)
			const n = 1024
			rng := rand.New(rand.NewPCG(1, 2))
			x, y, z := randSlice32(rng, n*n), randSlice32(rng, n*n), make([]float32, n*n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Gemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
			}
			b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
