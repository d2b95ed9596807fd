//go:build !cgo

package cuda

import (
	"errors"

	"github.com/kediff/kediff/kernels"
)

// Device is unavailable without cgo.
type Device struct{ kernels.CPU }

// String names the device.
func (*Device) String() string { return "no device (built without cgo)" }

// Sync does nothing.
func (*Device) Sync() {}

// Memory reports nothing.
func (*Device) Memory(bool) (live, peak int64) { return 0, 0 }

// RowVariants are the row-kernel versions (none without cgo).
var RowVariants []int

// Emulated is false.
func (*Device) Emulated() bool { return false }

// SetRowVariant fails without cgo.
func (*Device) SetRowVariant(int) (int, error) {
	return 0, errors.New("kernels/cuda: built without cgo")
}

// DevicePointer fails without cgo.
func (*Device) DevicePointer(uintptr, int, bool) (uintptr, error) {
	return 0, errors.New("kernels/cuda: built without cgo")
}

// Stream is 0.
func (*Device) Stream() uintptr { return 0 }

// DType is "fp32".
func (*Device) DType([]float32) string { return "fp32" }

func open(path string, device int, emu, bf16 bool) (*Device, error) {
	return nil, errors.New("kernels/cuda: this kediff was built without cgo (CGO_ENABLED=0): --device cuda needs a cgo build")
}
