package caption

import (
	"image"
	"image/draw"
	"math"
	"math/rand/v2"
	"testing"
)

func randomYCbCr(r *rand.Rand, w, h int, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	for _, b := range [][]byte{m.Y, m.Cb, m.Cr} {
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
	}
	return m
}

// TestPlanarYCbCr checks planar's YCbCr fast path bit for bit against
// drawing the image into RGBA, for every subsampling and sub-images.
func TestPlanarYCbCr(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ratios := []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411,
		image.YCbCrSubsampleRatio410}
	for _, ratio := range ratios {
		m := randomYCbCr(r, 37, 29, ratio)
		for _, rect := range []image.Rectangle{m.Rect, image.Rect(3, 5, 30, 26), image.Rect(1, 1, 2, 2)} {
			sub := m.SubImage(rect).(*image.YCbCr)
			w, h := rect.Dx(), rect.Dy()
			got := planar(sub)
			rgba := image.NewRGBA(image.Rect(0, 0, w, h))
			draw.Draw(rgba, rgba.Rect, sub, rect.Min, draw.Src)
			want := planar(rgba)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v %v: value %d = %v, want %v", ratio, rect, i, got[i], want[i])
				}
			}
		}
	}
}

// TestApplyReuse checks that Apply gives the same values when its scratch
// buffers are reused across images of different sizes and kinds.
func TestApplyReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, p := range []*Preprocessor{
		{Resize: true, Width: 64, Height: 64, Rescale: true, RescaleScale: 1.0 / 255, Normalize: true, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}},
		{Resize: true, ShortestEdge: 40, CropWidth: 32, CropHeight: 32, Rescale: true, RescaleScale: 1.0 / 255},
		{Resize: true, ShortestEdge: 20, CropWidth: 32, CropHeight: 32},
	} {
		for _, sz := range [][2]int{{128, 128}, {80, 50}, {64, 64}, {33, 97}} {
			img := randomYCbCr(r, sz[0], sz[1], image.YCbCrSubsampleRatio420)
			w, h := p.OutputSize(sz[0], sz[1])
			// Reference: the unpooled path.
			src := planar(img)
			sw, sh := sz[0], sz[1]
			rw, rh := p.Width, p.Height
			if p.ShortestEdge > 0 {
				rw, rh = shortEdge(sw, sh, p.ShortestEdge)
			}
			if rw != sw || rh != sh {
				src, sw, sh = refResize(src, sw, sh, rw, rh), rw, rh
			}
			if p.CropWidth > 0 && (sw != p.CropWidth || sh != p.CropHeight) {
				src, sw, sh = centerCrop(src, sw, sh, p.CropWidth, p.CropHeight), p.CropWidth, p.CropHeight
			}
			for round := range 2 {
				dst := make([]float32, 3*w*h)
				if err := p.Apply(img, dst); err != nil {
					t.Fatal(err)
				}
				n := w * h
				for c := range 3 {
					scale, shift := float32(1), float32(0)
					if p.Rescale {
						scale = p.RescaleScale
					}
					if p.Normalize {
						scale, shift = scale/p.Std[c], -p.Mean[c]/p.Std[c]
					}
					for i := range n {
						want := src[c*n+i]*scale + shift
						if math.Float32bits(dst[c*n+i]) != math.Float32bits(want) {
							t.Fatalf("%+v %v round %d: value %d = %v, want %v", *p, sz, round, c*n+i, dst[c*n+i], want)
						}
					}
				}
			}
		}
	}
}

// refResize is the per-pixel triangle-filter resize that resizePlanes must
// match bit for bit.
func refResize(src []float32, sw, sh, dw, dh int) []float32 {
	xs := filterWeights(sw, dw)
	ys := filterWeights(sh, dh)
	tmp := make([]float32, 3*dw*sh)
	for c := range 3 {
		for y := range sh {
			row := src[c*sw*sh+y*sw:]
			for x, wt := range xs {
				var s float32
				for k, v := range wt.w {
					s += row[wt.first+k] * v
				}
				tmp[c*dw*sh+y*dw+x] = s
			}
		}
	}
	out := make([]float32, 3*dw*dh)
	for c := range 3 {
		for y, wt := range ys {
			for x := range dw {
				var s float32
				for k, v := range wt.w {
					s += tmp[c*dw*sh+(wt.first+k)*dw+x] * v
				}
				out[c*dw*dh+y*dw+x] = s
			}
		}
	}
	return out
}

// TestResizeMatchesReference checks resizePlanes against the per-pixel
// reference for down- and upscaling.
func TestResizeMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, sz := range [][4]int{{128, 128, 64, 64}, {97, 33, 40, 20}, {20, 30, 64, 48}, {64, 64, 64, 31}, {50, 13, 21, 7}, {7, 5, 3, 17}} {
		src := make([]float32, 3*sz[0]*sz[1])
		for i := range src {
			src[i] = float32(r.IntN(256))
		}
		got := resizePlanes(src, sz[0], sz[1], sz[2], sz[3])
		want := refResize(src, sz[0], sz[1], sz[2], sz[3])
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v: value %d = %v, want %v", sz, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkApply times the captioner's pre-processing of a 128x128 JPEG-like
// image to the fixture's 64x64 pixel_values, and its parts.
func BenchmarkApply(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	img := randomYCbCr(r, 128, 128, image.YCbCrSubsampleRatio420)
	p := &Preprocessor{Resize: true, Width: 64, Height: 64, Rescale: true, RescaleScale: 1.0 / 255, Normalize: true, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	dst := make([]float32, 3*64*64)
	b.Run("apply", func(b *testing.B) {
		for b.Loop() {
			p.Apply(img, dst)
		}
	})
	src := planar(img)
	b.Run("planar", func(b *testing.B) {
		for b.Loop() {
			planarInto(img, src)
		}
	})
	tmp, out := make([]float32, 3*64*128), make([]float32, 3*64*64)
	b.Run("resize", func(b *testing.B) {
		for b.Loop() {
			resizePlanesInto(src, 128, 128, 64, 64, tmp, out)
		}
	})
}
