//go:build !cgo

package caption

func resizeC(src []float32, sw, sh, dw, dh int, xs, ys *packedTaps, tmp, out []float32) bool {
	return false
}

func affineC(dst, src []float32, scale, shift float32) bool { return false }
