//go:build !cgo

package dist

import (
	"errors"
	"time"
)

// mpiCgo says this build can load Open MPI.
const mpiCgo = false

// MPIOptions tune DialMPI; the zero value is ready to use. See mpi.go: a
// build without cgo cannot load Open MPI.
type MPIOptions struct {
	// Timeout bounds each collective. Default 5 minutes.
	Timeout time.Duration
}

var errNoCgo = errors.New("dist: this kediff was built without cgo (CGO_ENABLED=0), so it cannot load Open MPI: rebuild with cgo, or use the TCP rendezvous instead (set MASTER_ADDR and MASTER_PORT)")

// MPIAvailable returns why this build cannot use MPI.
func MPIAvailable() error { return errNoCgo }

// DialMPI returns an error: a build without cgo cannot load Open MPI.
func DialMPI(info Info, opts MPIOptions) (Comm, error) { return nil, errNoCgo }

func dialMPI(Info, MPIOptions, []string) (Comm, error) { return nil, errNoCgo }

func loadMPI([]string) error { return errNoCgo }

// mpiMaxCount is the most elements one MPI call moves (see mpi.go); here
// so that the tests build.
var mpiMaxCount int64 = 1<<31 - 1
