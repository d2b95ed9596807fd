package detect

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFillYCbCr checks that filling a YCbCr image straight into the input
// gives bit for bit what ToRGB then Fill give, for every subsampling,
// sub-images at odd offsets, letterbox offsets and both channel orders; and
// that it declines images that need a resize.
func TestFillYCbCr(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411,
		image.YCbCrSubsampleRatio410}
	for _, ratio := range ratios {
		m := image.NewYCbCr(image.Rect(0, 0, 70, 61), ratio)
		for _, b := range [][]byte{m.Y, m.Cb, m.Cr} {
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
		}
		for _, rect := range []image.Rectangle{image.Rect(0, 0, 64, 64), image.Rect(3, 5, 67, 53), image.Rect(1, 2, 41, 61), image.Rect(2, 3, 45, 50), m.Rect} {
			sub := m.SubImage(rect).(*image.YCbCr)
			rect := sub.Rect
			for _, bgr := range []bool{false, true} {
				for _, align := range []Align{Center, TopLeft} {
					p := Preprocess{Width: 64, Height: 64, BGR: bgr, Scale: 1.0 / 255, Mean: [3]float32{0.485, 0.456, 0.406},
						Std: [3]float32{0.229, 0.224, 0.225}, Align: align, Pad: 114}
					fast := make([]float32, 3*64*64)
					for i := range fast {
						fast[i] = float32(math.NaN())
					}
					lb, ok, err := p.fillYCbCr(sub, fast)
					if err != nil {
						t.Fatal(err)
					}
					slow := make([]float32, 3*64*64)
					want, err := p.Fill(ToRGB(sub, nil), slow)
					if err != nil {
						t.Fatal(err)
					}
					if resize := want.NewW != rect.Dx() || want.NewH != rect.Dy(); resize == ok {
						t.Fatalf("%v %v: ok = %v, but the letterbox resizes: %v (%+v)", ratio, rect, ok, resize, want)
					}
					if !ok {
						continue
					}
					if lb != want {
						t.Fatalf("%v %v: letterbox %+v, want %+v", ratio, rect, lb, want)
					}
					for i := range fast {
						if math.Float32bits(fast[i]) != math.Float32bits(slow[i]) {
							t.Fatalf("%v %v bgr=%v %s: value %d is %v, want %v", ratio, rect, bgr, align, i, fast[i], slow[i])
						}
					}
				}
			}
		}
	}
}
