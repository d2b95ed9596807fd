package onnx

import (
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"testing"
)

// YCbCrPlanes gives exactly what drawing the image into an RGBA gives, for
// every subsampling and for sub-images that do not start at the origin.
func TestYCbCrPlanesMatchesDraw(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	var half [256]float32
	for i := range half {
		half[i] = float32(i)/127.5 - 1
	}
	for _, ratio := range ratios {
		full := image.NewYCbCr(image.Rect(0, 0, 37, 23), ratio)
		for _, p := range [][]uint8{full.Y, full.Cb, full.Cr} {
			for i := range p {
				p[i] = uint8(rng.IntN(256))
			}
		}
		for _, m := range []*image.YCbCr{full, full.SubImage(image.Rect(3, 5, 30, 22)).(*image.YCbCr)} {
			w, h := m.Rect.Dx(), m.Rect.Dy()
			rgba := image.NewRGBA(image.Rect(0, 0, w, h))
			draw.Draw(rgba, rgba.Rect, m, m.Rect.Min, draw.Src)
			for _, lut := range []*[256]float32{&Identity, &half} {
				planes := make([]float32, 3*w*h)
				n := w * h
				YCbCrPlanes(m, lut, planes[:n], planes[n:2*n], planes[2*n:])
				for y := range h {
					for x := range w {
						c := rgba.RGBAAt(x, y)
						i := y*w + x
						if planes[i] != lut[c.R] || planes[n+i] != lut[c.G] || planes[2*n+i] != lut[c.B] {
							t.Fatalf("%v %v: pixel (%d,%d) = %v %v %v, want %v", ratio, m.Rect, x, y,
								planes[i], planes[n+i], planes[2*n+i], color.RGBA{c.R, c.G, c.B, 255})
						}
					}
				}
			}
		}
	}
}
