//go:build cgo

package cuda

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/kediff/kediff/kernels"
)

// DevicePointer maps a buffer's view to the memory holding its values (in
// the emulation, host memory we can read), checks the extent and the
// element type, and the emulation has no stream.
func TestDevicePointer(t *testing.T) {
	d := emu(t, true)
	buf := d.Alloc(8, kernels.ForParams)
	d.CopyToDevice(buf, []float32{0, 1, 2, 3, 4, 5, 6, 7})
	addr := uintptr(unsafe.Pointer(&buf[2]))
	p, err := d.DevicePointer(addr, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	// The emulation's memory is C heap memory, outside Go's: read it
	// through the address's bits.
	got := unsafe.Slice(*(**float32)(unsafe.Pointer(&p)), 3)
	if got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Errorf("the memory behind elements 2..4 holds %v", got)
	}
	act := d.Alloc(4, kernels.ForActivations) // bf16 in this device
	for _, tc := range []struct {
		name string
		addr uintptr
		n    int
		bf16 bool
		want string
	}{
		{"past the end", addr, 7, false, "overrun"},
		{"not a buffer", uintptr(unsafe.Pointer(&got[0])), 1, false, "not a buffer"},
		{"fp32 asked of bf16", uintptr(unsafe.Pointer(&act[0])), 4, false, "holds bf16"},
		{"bf16 asked of fp32", addr, 1, true, "holds fp32"},
	} {
		if _, err := d.DevicePointer(tc.addr, tc.n, tc.bf16); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := d.DevicePointer(uintptr(unsafe.Pointer(&act[0])), 4, true); err != nil {
		t.Errorf("bf16 buffer asked as bf16: %v", err)
	}
	if s := d.Stream(); s != 0 {
		t.Errorf("the emulation's stream is %#x, want 0", s)
	}
}
