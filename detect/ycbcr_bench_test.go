package detect

import (
	"image"
	"testing"
)

func BenchmarkFillYCbCr(b *testing.B) {
	m := image.NewYCbCr(image.Rect(0, 0, 128, 128), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = byte(i)
	}
	p := DefaultConfig().Preprocess
	p.Width, p.Height = 128, 128
	dst := make([]float32, 3*128*128)
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			p.fillYCbCr(m, dst)
		}
	})
	var buf []byte
	b.Run("torgb_fill", func(b *testing.B) {
		for b.Loop() {
			rgb := ToRGB(m, buf)
			buf = rgb.Pix
			p.Fill(rgb, dst)
		}
	})
}
