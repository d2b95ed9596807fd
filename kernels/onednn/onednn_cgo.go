//go:build cgo

package onednn

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "onednn.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
)

var lib struct {
	once sync.Once
	err  error
	desc string
}

// Load opens oneDNN once per process: the library named by KEDIFF_ONEDNN
// (a path), or libdnnl.so.2; KEDIFF_ONEDNN=off disables it. Its OpenMP
// threads default to GOMAXPROCS, as kernels' own loops and OpenBLAS, unless
// OMP_NUM_THREADS is set.
func Load() error {
	lib.once.Do(func() {
		path := os.Getenv("KEDIFF_ONEDNN")
		if path == "off" {
			lib.err = fmt.Errorf("onednn: disabled by KEDIFF_ONEDNN=off")
			return
		}
		if path == "" {
			path = "libdnnl.so.2"
		}
		if os.Getenv("OMP_NUM_THREADS") == "" {
			// libgomp reads it when it loads, with the library below.
			os.Setenv("OMP_NUM_THREADS", strconv.Itoa(runtime.GOMAXPROCS(0)))
			defer os.Unsetenv("OMP_NUM_THREADS")
		}
		cpath := C.CString(path)
		defer C.free(unsafe.Pointer(cpath))
		if msg := C.kd_dnnl_open(cpath); msg != nil {
			lib.err = fmt.Errorf("onednn: cannot use %s: %s (install libdnnl2, or set KEDIFF_ONEDNN to its path)", path, C.GoString(msg))
			return
		}
		lib.desc = C.GoString(C.kd_dnnl_version())
	})
	return lib.err
}

// Version describes the loaded library ("oneDNN 2.6.3"), or why none is.
func Version() string {
	if err := Load(); err != nil {
		return err.Error()
	}
	return lib.desc
}

// Conv is one convolution shape's primitives and layout conversions. It is
// not safe for concurrent use.
type Conv struct {
	c              *C.kd_conv
	in, w, out, oc int // element counts, checked on every call
}

// NewConv builds the primitives of nn.Conv2d(C, OC, K, stride, pad) on
// (B, C, H, W) inputs.
func NewConv(B, Ch, H, W, OC, K, stride, pad int) (*Conv, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	OH, OW := (H+2*pad-K)/stride+1, (W+2*pad-K)/stride+1
	if B <= 0 || Ch <= 0 || OC <= 0 || K <= 0 || stride <= 0 || pad < 0 || OH <= 0 || OW <= 0 {
		return nil, fmt.Errorf("onednn: invalid convolution B=%d C=%d H=%d W=%d OC=%d K=%d stride=%d pad=%d", B, Ch, H, W, OC, K, stride, pad)
	}
	var msg *C.char
	c := C.kd_conv_new(C.int(B), C.int(Ch), C.int(H), C.int(W), C.int(OC), C.int(K), C.int(stride), C.int(pad), &msg)
	if c == nil {
		return nil, fmt.Errorf("onednn: convolution B=%d C=%d H=%d W=%d OC=%d K=%d stride=%d pad=%d: %s", B, Ch, H, W, OC, K, stride, pad, C.GoString(msg))
	}
	return &Conv{c: c, in: B * Ch * H * W, w: OC * Ch * K * K, out: B * OC * OH * OW, oc: OC}, nil
}

// Impl names the forward kernel oneDNN chose (e.g. "jit:avx512_core").
func (c *Conv) Impl() string { return C.GoString(C.kd_conv_impl(c.c)) }

// Close frees the primitives.
func (c *Conv) Close() {
	C.kd_conv_free(c.c)
	c.c = nil
}

func fp(b []float32) *C.float {
	if b == nil {
		return nil
	}
	return (*C.float)(unsafe.Pointer(unsafe.SliceData(b)))
}

func need(name string, b []float32, n int, optional bool) {
	if (b == nil && !optional) || (b != nil && len(b) < n) {
		panic(fmt.Sprintf("onednn: %s has %d elements, need %d", name, len(b), n))
	}
}

// Forward computes out = conv(inp, weight) + bias (bias may be nil).
func (c *Conv) Forward(out, inp, weight, bias []float32) error {
	need("out", out, c.out, false)
	need("inp", inp, c.in, false)
	need("weight", weight, c.w, false)
	need("bias", bias, c.oc, true)
	if msg := C.kd_conv_forward(c.c, fp(out), fp(inp), fp(weight), fp(bias)); msg != nil {
		return fmt.Errorf("onednn: %s failed", C.GoString(msg))
	}
	return nil
}

// Backward accumulates (+=) the gradients of inp (dinp, may be nil), weight
// (dweight) and bias (dbias, may be nil) from dout, as
// kernels.Conv2DBackward does.
func (c *Conv) Backward(dinp, dweight, dbias, dout, inp, weight []float32) error {
	need("dinp", dinp, c.in, true)
	need("dweight", dweight, c.w, false)
	need("dbias", dbias, c.oc, true)
	need("dout", dout, c.out, false)
	need("inp", inp, c.in, false)
	need("weight", weight, c.w, false)
	if msg := C.kd_conv_backward(c.c, fp(dinp), fp(dweight), fp(dbias), fp(dout), fp(inp), fp(weight)); msg != nil {
		return fmt.Errorf("onednn: %s failed", C.GoString(msg))
	}
	return nil
}
