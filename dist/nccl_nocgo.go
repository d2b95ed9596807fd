//go:build !cgo

package dist

import (
	"errors"
	"unsafe"
)

// ncclCgo says this build cannot load NCCL.
const ncclCgo = false

var errNCCLNoCgo = errors.New("dist: this kediff was built without cgo (CGO_ENABLED=0), so it cannot load NCCL: rebuild it with cgo for --device cuda across GPUs, or use the TCP rendezvous (DialTCP)")

// NCCLAvailable says that NCCL needs a cgo build.
func NCCLAvailable() error { return errNCCLNoCgo }

// DialNCCL fails: NCCL needs a cgo build. Every rank of the job runs the
// same binary, so every rank fails the same way and none waits.
func DialNCCL(info Info, boot Comm, device int, opts NCCLOptions) (Comm, error) {
	if err := checkNCCLArgs(info, boot); err != nil {
		return nil, err
	}
	return nil, errNCCLNoCgo
}

// The tests' hooks (nccl.go) fail the same way.

func ncclLibraryVersion() (int, string, error)                            { return 0, "", errNCCLNoCgo }
func ncclNewUniqueID() ([ncclIDBytes]byte, error)                         { return [ncclIDBytes]byte{}, errNCCLNoCgo }
func ncclDeviceCount() (int, error)                                       { return 0, errNCCLNoCgo }
func ncclDeviceAlloc(int, int) (unsafe.Pointer, error)                    { return nil, errNCCLNoCgo }
func ncclDeviceFree(int, unsafe.Pointer) error                            { return errNCCLNoCgo }
func ncclDeviceCopy(int, unsafe.Pointer, unsafe.Pointer, int, bool) error { return errNCCLNoCgo }
