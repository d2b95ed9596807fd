//go:build !cgo

package kernels

// Without cgo the float32 ops run the generic Go loops; these are never called.
const haveSIMD = false

var simdLevel = -1

func setSIMD(int) int { return -1 }

func simdSiLUForward(out, in []float32)           { panic("kernels: no SIMD without cgo") }
func simdSiLUBackward(dinp, dout, in []float32)   { panic("kernels: no SIMD without cgo") }
func simdGELUForward(out, in []float32)           { panic("kernels: no SIMD without cgo") }
func simdGELUBackward(dinp, dout, in []float32)   { panic("kernels: no SIMD without cgo") }
func simdExpShift(y []float32, m float32) float64 { panic("kernels: no SIMD without cgo") }

func simdIm2col(col, x []float32, g int, s ConvShape, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdCol2im(dx, col []float32, g int, s ConvShape, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}
