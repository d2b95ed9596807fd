package detect

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFillNoResize checks that Fill's no-resize path gives bit for bit what
// the bilinear path gives.
func TestFillNoResize(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][2]int{{128, 128}, {128, 96}, {80, 128}} {
		img := RGB{Pix: make([]byte, 3*sz[0]*sz[1]), W: sz[0], H: sz[1]}
		for i := range img.Pix {
			img.Pix[i] = byte(r.IntN(256))
		}
		for _, bgr := range []bool{false, true} {
			p := Preprocess{Width: 128, Height: 128, BGR: bgr, Scale: 1.0 / 255, Mean: [3]float32{0.485, 0.456, 0.406},
				Std: [3]float32{0.229, 0.224, 0.225}, Align: Center, Pad: 114}
			fast := make([]float32, 3*128*128)
			lb, err := p.Fill(img, fast)
			if err != nil {
				t.Fatal(err)
			}
			if lb.NewW != img.W || lb.NewH != img.H {
				t.Fatalf("%v: letterbox resizes to %dx%d", sz, lb.NewW, lb.NewH)
			}
			slow := append([]float32(nil), fast...)
			var a, c [3]float32
			for k := range 3 {
				a[k], c[k] = p.Scale/p.Std[k], -p.Mean[k]/p.Std[k]
			}
			src := [3]int{0, 1, 2}
			if bgr {
				src = [3]int{2, 1, 0}
			}
			fillBilinear(img, slow, lb, p, src, a, c)
			for i := range fast {
				if math.Float32bits(fast[i]) != math.Float32bits(slow[i]) {
					t.Fatalf("%v bgr=%v: value %d is %v, bilinear path %v", sz, bgr, i, fast[i], slow[i])
				}
			}
		}
	}
}

// TestToRGBYCbCr checks the YCbCr fast path against the colour model
// conversion, for every subsampling and for sub-images at odd offsets.
func TestToRGBYCbCr(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
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
			got := ToRGB(sub, nil)
			for y := 0; y < rect.Dy(); y++ {
				for x := 0; x < rect.Dx(); x++ {
					c := color.NRGBAModel.Convert(sub.At(rect.Min.X+x, rect.Min.Y+y)).(color.NRGBA)
					p := got.Pix[3*(y*got.W+x):]
					if p[0] != c.R || p[1] != c.G || p[2] != c.B {
						t.Fatalf("%v %v: pixel (%d,%d) = %v, want %v", ratio, rect, x, y, p[:3], c)
					}
				}
			}
		}
	}
}
