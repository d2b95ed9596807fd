package onnx

import (
	"image"
	"image/color"
)

// ValueMap maps an 8-bit channel value v to a model input value:
// float32(v)*Mul, divided by Div, plus Add, each step rounded to float32
// (no fused multiply-add). v/255 is {1, 255, 0}, v/127.5-1 is {1, 127.5,
// -1}, (v/255-mean)/std as v*(1/255/std) - mean/std is {1/255/std, 1,
// -mean/std}.
type ValueMap struct{ Mul, Div, Add float32 }

// Identity keeps channel values as they are (0..255).
var Identity = ValueMap{Mul: 1, Div: 1}

// Value is the model value of v.
func (vm ValueMap) Value(v uint8) float32 {
	t := float32(float32(v) * vm.Mul)
	t = float32(t / vm.Div)
	return float32(t + vm.Add)
}

// Table is Value for every v.
func (vm ValueMap) Table() (t [256]float32) {
	for v := range t {
		t[v] = vm.Value(uint8(v))
	}
	return t
}

// YCbCrPlanes writes m's pixels as three float32 planes r, g, b of W*H values
// each (row-major), mapping every 8-bit channel value v to vm.Value(v), the
// model's input value (v itself, v/255, v/127.5-1, ...). The RGB values are
// exactly color.YCbCrToRGB's, which is what drawing m into an RGBA gives,
// without a per-pixel interface call: decoded JPEGs reach the model stages as
// *image.YCbCr, and this conversion is most of their pre-processing.
func YCbCrPlanes(m *image.YCbCr, vm ValueMap, r, g, bl []float32) {
	YCbCrPlanesInto(m, [3]ValueMap{vm, vm, vm}, r, g, bl, m.Rect.Dx())
}

// YCbCrPlanesInto is YCbCrPlanes with one map per channel (maps[0] for r,
// ...) and rows of stride values in the planes: pixel (x, y) of m goes to
// index y*stride+x of r, g and bl, each at least (H-1)*stride+W long. Built
// with cgo, the conversion runs in C (eight pixels at a time with AVX2 where
// the CPU has it), about 0.5 ns a pixel against 2-3 ns for the pure-Go loop,
// which gives the same values.
func YCbCrPlanesInto(m *image.YCbCr, maps [3]ValueMap, r, g, bl []float32, stride int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if w <= 0 || h <= 0 {
		return
	}
	if need := (h-1)*stride + w; stride < w || len(r) < need || len(g) < need || len(bl) < need {
		panic("onnx: YCbCrPlanesInto: planes too short for the image")
	}
	hs, vs := subsampling(m.SubsampleRatio)
	if m.Rect.Min.X < 0 || m.Rect.Min.Y < 0 {
		// COffset divides (rounding toward zero); the shifts below do not
		// match it left of or above the origin.
		hs, vs = -1, -1
	}
	if hs >= 0 && ycbcrPlanesC(m, hs, vs, &maps, r, g, bl, stride) {
		return
	}
	luts := [3][256]float32{maps[0].Table(), maps[1].Table(), maps[2].Table()}
	ycbcrPlanesGo(m, hs, &luts, r, g, bl, stride)
}

// subsampling returns the chroma shifts of a ratio: chroma column
// x>>hs, row y>>vs; hs is -1 for an unknown ratio.
func subsampling(r image.YCbCrSubsampleRatio) (hs, vs int) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0
	case image.YCbCrSubsampleRatio440:
		return 0, 1
	case image.YCbCrSubsampleRatio422:
		return 1, 0
	case image.YCbCrSubsampleRatio420:
		return 1, 1
	case image.YCbCrSubsampleRatio411:
		return 2, 0
	case image.YCbCrSubsampleRatio410:
		return 2, 1
	}
	return -1, -1
}

// ycbcrPlanesGo is the pure-Go conversion (hs -1: any ratio and origin,
// through YOffset and COffset).
func ycbcrPlanesGo(m *image.YCbCr, hs int, luts *[3][256]float32, r, g, bl []float32, stride int) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	l0, l1, l2 := &luts[0], &luts[1], &luts[2]
	for y := range h {
		ro, gro, bo := r[y*stride:y*stride+w], g[y*stride:y*stride+w], bl[y*stride:y*stride+w]
		if hs < 0 {
			for x := range w {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				rr, gg, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				ro[x], gro[x], bo[x] = l0[rr], l1[gg], l2[bb]
			}
			continue
		}
		// Chroma column of x: (x >> hs) - (Min.X >> hs), from the row's start.
		yrow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
		c0 := m.COffset(b.Min.X, b.Min.Y+y) - b.Min.X>>hs
		for x, yy := range yrow {
			ci := c0 + (b.Min.X+x)>>hs
			yy1 := int32(yy) * 0x10101
			cb1 := int32(m.Cb[ci]) - 128
			cr1 := int32(m.Cr[ci]) - 128
			// color.YCbCrToRGB, inlined.
			r := yy1 + 91881*cr1
			if uint32(r)&0xff000000 == 0 {
				r >>= 16
			} else {
				r = ^(r >> 31)
			}
			g := yy1 - 22554*cb1 - 46802*cr1
			if uint32(g)&0xff000000 == 0 {
				g >>= 16
			} else {
				g = ^(g >> 31)
			}
			bb := yy1 + 116130*cb1
			if uint32(bb)&0xff000000 == 0 {
				bb >>= 16
			} else {
				bb = ^(bb >> 31)
			}
			ro[x], gro[x], bo[x] = l0[uint8(r)], l1[uint8(g)], l2[uint8(bb)]
		}
	}
}
