package fid

import (
	"fmt"
	"log"
	"os"
	"sync"
)

// openblas is the run-time-loaded OpenBLAS (its LAPACK and CBLAS symbols).
// FrechetDistance's Schur decomposition, triangular square root and matrix
// products go through it when it loaded and is not switched off; otherwise
// through gonum, in pure Go and about six times slower at 2048 dimensions.
var openblas struct {
	once sync.Once
	ok   bool
	path string
	off  bool // SetLAPACK(false): benchmarks and tests compare the two paths
}

// loadLAPACK opens the library kernels' GEMM uses: $KEDIFF_OPENBLAS, else
// libopenblas.so.0 (Debian's libopenblas0, which carries LAPACK too).
func loadLAPACK() {
	openblas.once.Do(func() {
		openblas.path = os.Getenv("KEDIFF_OPENBLAS")
		if openblas.path == "" {
			openblas.path = "libopenblas.so.0"
		}
		if err := openLAPACK(openblas.path); err != nil {
			log.Printf("fid: OpenBLAS %q not loaded (%v); using gonum's pure-Go LAPACK, a 2048-dimensional distance takes about 40 s on 2 cores instead of 6 (install libopenblas0 or set KEDIFF_OPENBLAS)", openblas.path, err)
			return
		}
		openblas.ok = true
	})
}

// useLAPACK reports whether this distance goes through OpenBLAS.
func useLAPACK() bool {
	loadLAPACK()
	return openblas.ok && !openblas.off
}

// Backend says which linear algebra FrechetDistance uses: "openblas
// (<path>)", OpenBLAS's LAPACK and BLAS loaded at run time, or "go", gonum.
func Backend() string {
	if useLAPACK() {
		return fmt.Sprintf("openblas (%s)", openblas.path)
	}
	return "go"
}

// SetLAPACK enables or disables the OpenBLAS path (when it loaded) and
// returns the previous setting. Not safe to call while a distance is being
// computed; meant for tests and benchmarks comparing the two paths.
func SetLAPACK(on bool) (was bool) {
	loadLAPACK()
	was = !openblas.off
	openblas.off = !on
	return was
}
