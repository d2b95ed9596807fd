package onnx

import (
	"image"
	"image/color"
)

// Identity is the lookup table for YCbCrPlanes that keeps channel values as
// they are (0..255).
var Identity = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i)
	}
	return t
}()

// YCbCrPlanes writes m's pixels as three float32 planes r, g, b of W*H values
// each (row-major), mapping every 8-bit channel value v to lut[v], the
// model's input value (v itself, v/255, v/127.5-1, ...). The RGB values are
// exactly color.YCbCrToRGB's, which is what drawing m into an RGBA gives,
// without a per-pixel interface call: decoded JPEGs reach the model stages as
// *image.YCbCr, and this conversion is most of their pre-processing.
func YCbCrPlanes(m *image.YCbCr, lut *[256]float32, r, g, bl []float32) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	// Chroma column of x: (x >> hs) - (Min.X >> hs), from the row's start.
	hs := -1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio440:
		hs = 0
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		hs = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		hs = 2
	}
	for y := range h {
		ro, gro, bo := r[y*w:(y+1)*w], g[y*w:(y+1)*w], bl[y*w:(y+1)*w]
		if hs < 0 {
			for x := range w {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				rr, gg, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				ro[x], gro[x], bo[x] = lut[rr], lut[gg], lut[bb]
			}
			continue
		}
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
			ro[x], gro[x], bo[x] = lut[uint8(r)], lut[uint8(g)], lut[uint8(bb)]
		}
	}
}
