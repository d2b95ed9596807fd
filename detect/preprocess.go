package detect

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/kediff/kediff/onnx"
)

// Letterbox records how an image was placed in the model input, to map boxes
// back: input = original*R + (Left, Top).
type Letterbox struct {
	SrcW, SrcH int     // original image size
	NewW, NewH int     // resized size inside the input
	Left, Top  int     // offset of the resized image
	R          float64 // scale factor
}

// NewLetterbox computes the placement of a w x h image in the input p:
// R = min(Height/h, Width/w); the image is resized to floor(w*R + 0.5) x
// floor(h*R + 0.5) (at least 1 x 1) and, centred, offset by ((Width-NewW)/2,
// (Height-NewH)/2) rounded down, as Ultralytics does; top-left: (0, 0).
func NewLetterbox(w, h int, p Preprocess) Letterbox {
	r := math.Min(float64(p.Height)/float64(h), float64(p.Width)/float64(w))
	lb := Letterbox{SrcW: w, SrcH: h, R: r}
	lb.NewW = max(1, min(p.Width, int(math.Floor(float64(w)*r+0.5))))
	lb.NewH = max(1, min(p.Height, int(math.Floor(float64(h)*r+0.5))))
	if p.Align != TopLeft {
		lb.Left = (p.Width - lb.NewW) / 2
		lb.Top = (p.Height - lb.NewH) / 2
	}
	return lb
}

// ToImage maps a point in input pixels back to the original image, clamped
// to it.
func (lb Letterbox) ToImage(x, y float64) (float64, float64) {
	x = (x - float64(lb.Left)) / lb.R
	y = (y - float64(lb.Top)) / lb.R
	return math.Min(math.Max(x, 0), float64(lb.SrcW)), math.Min(math.Max(y, 0), float64(lb.SrcH))
}

// RGB is a packed 8-bit RGB image: pixel (x, y) is Pix[3*(y*W+x):][:3].
type RGB struct {
	Pix  []byte
	W, H int
}

// ToRGB converts img to packed RGB, reusing buf when it is large enough.
// Fast paths cover what image/jpeg and image/png return; alpha is ignored
// (the colour channels are taken as stored).
func ToRGB(img image.Image, buf []byte) RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := 3 * w * h
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	pix := buf[:n]
	switch m := img.(type) {
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			out := pix[3*y*w:]
			for x := 0; x < w; x++ {
				out[3*x], out[3*x+1], out[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			out := pix[3*y*w:]
			for x := 0; x < w; x++ {
				out[3*x], out[3*x+1], out[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			out := pix[3*y*w:]
			for x := 0; x < w; x++ {
				v := row[x]
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.YCbCr:
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
		if hs >= 0 {
			for y := 0; y < h; y++ {
				out := pix[3*y*w : 3*(y+1)*w]
				yrow := m.Y[m.YOffset(b.Min.X, b.Min.Y+y):][:w]
				c0 := m.COffset(b.Min.X, b.Min.Y+y) - b.Min.X>>hs
				for x, yy := range yrow {
					ci := c0 + (b.Min.X+x)>>hs
					r, g, bb := color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
					out[3*x], out[3*x+1], out[3*x+2] = r, g, bb
				}
			}
			break
		}
		for y := 0; y < h; y++ {
			out := pix[3*y*w:]
			for x := 0; x < w; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				out[3*x], out[3*x+1], out[3*x+2] = r, g, bb
			}
		}
	default:
		for y := 0; y < h; y++ {
			out := pix[3*y*w:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return RGB{Pix: pix, W: w, H: h}
}

// Fill writes the model input for img into dst (3*Height*Width float32, CHW)
// and returns the letterbox placement. The resize is bilinear with
// half-pixel centres and no antialiasing, the same arithmetic as PyTorch's
// F.interpolate(mode="bilinear", align_corners=False) (and OpenCV's
// INTER_LINEAR without its uint8 rounding).
func (p Preprocess) Fill(img RGB, dst []float32) (Letterbox, error) {
	if img.W <= 0 || img.H <= 0 || len(img.Pix) < 3*img.W*img.H {
		return Letterbox{}, fmt.Errorf("detect: empty or short image (%dx%d, %d bytes)", img.W, img.H, len(img.Pix))
	}
	plane := p.Width * p.Height
	if len(dst) < 3*plane {
		return Letterbox{}, fmt.Errorf("detect: input buffer holds %d values, want %d", len(dst), 3*plane)
	}
	lb := NewLetterbox(img.W, img.H, p)
	a, c, src := p.affine()
	p.fillPad(lb, dst, a, c)
	if lb.NewW == img.W && lb.NewH == img.H {
		// No resize: the bilinear taps are (i, 1) and (i+1, 0), so each
		// value is the pixel itself; same result, without the arithmetic.
		lut, inv := p.lut(a, c, src)
		for y := 0; y < img.H; y++ {
			row := img.Pix[3*y*img.W : 3*(y+1)*img.W]
			base := (lb.Top+y)*p.Width + lb.Left
			r := dst[inv[0]*plane+base : inv[0]*plane+base+img.W]
			g := dst[inv[1]*plane+base : inv[1]*plane+base+img.W]
			bl := dst[inv[2]*plane+base : inv[2]*plane+base+img.W]
			for x := range r {
				px := row[3*x : 3*x+3]
				r[x] = lut[0][px[0]]
				g[x] = lut[1][px[1]]
				bl[x] = lut[2][px[2]]
			}
		}
		return lb, nil
	}
	fillBilinear(img, dst, lb, p, src, a, c)
	return lb, nil
}

// affine returns the per model channel v' = v*a + c and src, the RGB channel
// feeding each model channel.
func (p Preprocess) affine() (a, c [3]float32, src [3]int) {
	for k := 0; k < 3; k++ {
		a[k] = p.Scale / p.Std[k]
		c[k] = -p.Mean[k] / p.Std[k]
	}
	src = [3]int{0, 1, 2}
	if p.BGR {
		src = [3]int{2, 1, 0}
	}
	return a, c, src
}

// maps gives, per RGB channel j, the map to the model value of the model
// channel k = inv[j] that channel j feeds (src[k] = j): v*a[k] + c[k], two
// roundings.
func maps(a, c [3]float32, src [3]int) (m [3]onnx.ValueMap, inv [3]int) {
	for k := 0; k < 3; k++ {
		inv[src[k]] = k
		m[src[k]] = onnx.ValueMap{Mul: a[k], Div: 1, Add: c[k]}
	}
	return m, inv
}

// lut is maps as tables: t[j][v] is the model value of RGB channel j's
// value v.
func (p Preprocess) lut(a, c [3]float32, src [3]int) (t *[3][256]float32, inv [3]int) {
	m, inv := maps(a, c, src)
	t = &[3][256]float32{m[0].Table(), m[1].Table(), m[2].Table()}
	return t, inv
}

// fillPad writes the letterbox border (Pad, scaled) around the image area.
func (p Preprocess) fillPad(lb Letterbox, dst []float32, a, c [3]float32) {
	plane := p.Width * p.Height
	for k := 0; k < 3; k++ {
		pad := p.Pad*a[k] + c[k]
		out := dst[k*plane : (k+1)*plane]
		for y := 0; y < p.Height; y++ {
			row := out[y*p.Width : (y+1)*p.Width]
			if y < lb.Top || y >= lb.Top+lb.NewH {
				for x := range row {
					row[x] = pad
				}
				continue
			}
			for x := 0; x < lb.Left; x++ {
				row[x] = pad
			}
			for x := lb.Left + lb.NewW; x < p.Width; x++ {
				row[x] = pad
			}
		}
	}
}

// fillYCbCr is Fill for a YCbCr image that needs no resize, converting
// straight into dst (the values ToRGB then Fill give). ok is false, and dst
// untouched, when the letterbox resizes the image; use ToRGB and Fill then.
func (p Preprocess) fillYCbCr(m *image.YCbCr, dst []float32) (lb Letterbox, ok bool, err error) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return Letterbox{}, false, nil
	}
	plane := p.Width * p.Height
	if len(dst) < 3*plane {
		return Letterbox{}, true, fmt.Errorf("detect: input buffer holds %d values, want %d", len(dst), 3*plane)
	}
	lb = NewLetterbox(w, h, p)
	if lb.NewW != w || lb.NewH != h {
		return lb, false, nil
	}
	a, c, src := p.affine()
	p.fillPad(lb, dst, a, c)
	m3, inv := maps(a, c, src)
	base := lb.Top*p.Width + lb.Left
	onnx.YCbCrPlanesInto(m, m3, dst[inv[0]*plane+base:(inv[0]+1)*plane], dst[inv[1]*plane+base:(inv[1]+1)*plane],
		dst[inv[2]*plane+base:(inv[2]+1)*plane], p.Width)
	return lb, true, nil
}

// fillBilinear writes the resized image into dst (the general path of Fill).
func fillBilinear(img RGB, dst []float32, lb Letterbox, p Preprocess, src [3]int, a, c [3]float32) {
	plane := p.Width * p.Height
	xs := linearTaps(img.W, lb.NewW)
	ys := linearTaps(img.H, lb.NewH)
	stride := 3 * img.W
	for oy, ty := range ys {
		r0 := img.Pix[ty.i0*stride:]
		r1 := img.Pix[ty.i1*stride:]
		base := (lb.Top+oy)*p.Width + lb.Left
		for ox, tx := range xs {
			for k := 0; k < 3; k++ {
				s := src[k]
				v00 := float32(r0[3*tx.i0+s])
				v01 := float32(r0[3*tx.i1+s])
				v10 := float32(r1[3*tx.i0+s])
				v11 := float32(r1[3*tx.i1+s])
				v := ty.w0*(tx.w0*v00+tx.w1*v01) + ty.w1*(tx.w0*v10+tx.w1*v11)
				dst[k*plane+base+ox] = v*a[k] + c[k]
			}
		}
	}
}

// tap is one output coordinate of a linear resize: source indices and weights.
type tap struct {
	i0, i1 int
	w0, w1 float32
}

// linearTaps computes PyTorch's align_corners=False source positions:
// s = (o + 0.5) * in/out - 0.5, clamped at 0, in float32.
func linearTaps(in, out int) []tap {
	taps := make([]tap, out)
	scale := float32(in) / float32(out)
	for o := range taps {
		s := scale*(float32(o)+0.5) - 0.5
		if s < 0 {
			s = 0
		}
		i0 := int(s)
		if i0 > in-1 {
			i0 = in - 1
		}
		i1 := i0 + 1
		if i1 > in-1 {
			i1 = in - 1
		}
		l := s - float32(i0)
		taps[o] = tap{i0: i0, i1: i1, w0: 1 - l, w1: l}
	}
	return taps
}
