package vae

import (
	"image"
	"image/draw"
	"math"
	"math/rand/v2"
	"testing"
)

// TestToSampleYCbCr checks toSample's YCbCr fast path bit for bit against
// drawing the image into RGBA and converting that, for every subsampling and
// for sub-images at odd offsets.
func TestToSampleYCbCr(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411,
		image.YCbCrSubsampleRatio410}
	for _, ratio := range ratios {
		m := image.NewYCbCr(image.Rect(0, 0, 37, 29), ratio)
		for _, b := range [][]byte{m.Y, m.Cb, m.Cr} {
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
		}
		for _, rect := range []image.Rectangle{m.Rect, image.Rect(3, 5, 30, 26), image.Rect(1, 1, 2, 2)} {
			sub := m.SubImage(rect).(*image.YCbCr)
			w, h := rect.Dx(), rect.Dy()
			got := make([]float32, 3*w*h)
			toSample(sub, got)
			rgba := image.NewRGBA(image.Rect(0, 0, w, h))
			draw.Draw(rgba, rgba.Rect, sub, rect.Min, draw.Src)
			n := w * h
			for y := range h {
				for x := range w {
					for c := range 3 {
						want := float32(rgba.Pix[y*rgba.Stride+4*x+c])/127.5 - 1
						if g := got[c*n+y*w+x]; math.Float32bits(g) != math.Float32bits(want) {
							t.Fatalf("%v %v: pixel (%d,%d) channel %d = %v, want %v", ratio, rect, x, y, c, g, want)
						}
					}
				}
			}
		}
	}
}
