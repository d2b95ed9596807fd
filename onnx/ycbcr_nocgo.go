//go:build !cgo

package onnx

import "image"

func ycbcrPlanesC(m *image.YCbCr, hs, vs int, maps *[3]ValueMap, r, g, bl []float32, stride int) bool {
	return false
}
