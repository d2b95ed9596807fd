package onnx

import (
	"fmt"
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
	half := ValueMap{Mul: 1, Div: 127.5, Add: -1}
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
			for _, vm := range []ValueMap{Identity, half} {
				lut := vm.Table()
				planes := make([]float32, 3*w*h)
				n := w * h
				YCbCrPlanes(m, vm, planes[:n], planes[n:2*n], planes[2*n:])
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

// The conversion (in C in cgo builds) gives bit for bit what the reference
// loop (YOffset, COffset, color.YCbCrToRGB, the maps' tables) gives, for
// every ratio, origins left of and above zero, odd origins, widths around the
// vector width, a row stride wider than the image, a different map per
// channel, and maps with and without a division.
func TestYCbCrPlanesIntoMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, maps := range [][3]ValueMap{
		{Identity, Identity, Identity},
		{{1, 127.5, -1}, {1, 127.5, -1}, {1, 127.5, -1}},
		{{1.0 / 255 / 0.229, 1, -0.485 / 0.229}, {1.0 / 255 / 0.224, 1, -0.456 / 0.224}, {1.0 / 255 / 0.225, 1, -0.406 / 0.225}},
		{{0.3, 7, 0.1}, {-2, 1, 5}, {1e-3, 3, -1e5}},
	} {
		testPlanesInto(t, rng, maps)
	}
}

func testPlanesInto(t *testing.T, rng *rand.Rand, maps [3]ValueMap) {
	luts := [3][256]float32{maps[0].Table(), maps[1].Table(), maps[2].Table()}
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		full := image.NewYCbCr(image.Rect(-3, -2, 77, 41), ratio)
		for _, p := range [][]uint8{full.Y, full.Cb, full.Cr} {
			for i := range p {
				p[i] = uint8(rng.IntN(256))
			}
		}
		// Extremes, so that the clamps are exercised.
		for i := 0; i < len(full.Cb); i += 3 {
			full.Cb[i], full.Cr[i] = 0, 255
		}
		for _, rect := range []image.Rectangle{full.Rect, image.Rect(0, 0, 64, 32), image.Rect(1, 1, 34, 40),
			image.Rect(-1, 3, 70, 9), image.Rect(2, -1, 19, 5), image.Rect(5, 7, 6, 8), image.Rect(-3, 0, 30, 1)} {
			m := full.SubImage(rect).(*image.YCbCr)
			w, h := m.Rect.Dx(), m.Rect.Dy()
			stride := w + 5
			n := (h-1)*stride + w
			got := make([]float32, 3*n)
			want := make([]float32, 3*n)
			YCbCrPlanesInto(m, maps, got[:n], got[n:2*n], got[2*n:], stride)
			ycbcrPlanesGo(m, -1, &luts, want[:n], want[n:2*n], want[2*n:], stride)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%v %v %v: value %d (plane %d, y %d, x %d) = %v, want %v", maps, ratio, rect, i, i/n, i%n/stride, i%n%stride, got[i], want[i])
				}
			}
		}
	}
}

func BenchmarkYCbCrPlanes(b *testing.B) {
	m := image.NewYCbCr(image.Rect(0, 0, 128, 128), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = byte(i * 7)
	}
	for i := range m.Cb {
		m.Cb[i], m.Cr[i] = byte(i*3), byte(i*5)
	}
	n := 128 * 128
	dst := make([]float32, 3*n)
	for _, vm := range []ValueMap{{1.0 / 255 / 0.229, 1, -0.485 / 0.229}, {1, 127.5, -1}} {
		maps := [3]ValueMap{vm, vm, vm}
		b.Run(fmt.Sprintf("div=%v", vm.Div), func(b *testing.B) {
			for b.Loop() {
				YCbCrPlanesInto(m, maps, dst[:n], dst[n:2*n], dst[2*n:], 128)
			}
		})
	}
	luts := [3][256]float32{Identity.Table(), Identity.Table(), Identity.Table()}
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			ycbcrPlanesGo(m, 1, &luts, dst[:n], dst[n:2*n], dst[2*n:], 128)
		}
	})
}

// Every Y, Cb, Cr through the conversion gives color.YCbCrToRGB's values.
func TestYCbCrPlanesExhaustive(t *testing.T) {
	m := image.NewYCbCr(image.Rect(0, 0, 256, 256), image.YCbCrSubsampleRatio444)
	n := 256 * 256
	planes := make([]float32, 3*n)
	for cr := range 256 {
		for i := range n {
			m.Y[i], m.Cb[i], m.Cr[i] = uint8(i>>8), uint8(i), uint8(cr)
		}
		YCbCrPlanes(m, Identity, planes[:n], planes[n:2*n], planes[2*n:])
		for i := range n {
			r, g, b := color.YCbCrToRGB(uint8(i>>8), uint8(i), uint8(cr))
			if planes[i] != float32(r) || planes[n+i] != float32(g) || planes[2*n+i] != float32(b) {
				t.Fatalf("YCbCr(%d,%d,%d) = %v %v %v, want %d %d %d", i>>8, uint8(i), cr, planes[i], planes[n+i], planes[2*n+i], r, g, b)
			}
		}
	}
}
