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

func simdAdamW(p, g, m, v []float32, c *[6]float32, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdGroupNormForward(out, mean, rstd, inp, w, b []float32, B, C, HW, G int, eps float64, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdGroupNormBackwardParams(dw, db, dout, inp, mean, rstd []float32, B, C, HW, G int, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdGroupNormBackwardInput(dinp, dout, inp, w, mean, rstd []float32, B, C, HW, G int, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdAttnSoftmax(att, scale, mask []float32, alpha float64, nk, rpb, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdAttnSoftmaxBackward(g, att, scale []float32, alpha float64, nk, rpb, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdPermute0213(out, inp []float32, A, B, C, D, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdPermute0213Backward(dinp, dout []float32, A, B, C, D, lo, hi int) {
	panic("kernels: no SIMD without cgo")
}

func simdSumSq(x []float32, lo, hi int) float64 { panic("kernels: no SIMD without cgo") }

func simdAdd(out, a, b []float32)       { panic("kernels: no SIMD without cgo") }
func simdAccumulate(dst, src []float32) { panic("kernels: no SIMD without cgo") }
func simdScale(x []float32, c float32)  { panic("kernels: no SIMD without cgo") }
