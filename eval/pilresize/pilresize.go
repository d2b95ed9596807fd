package pilresize

import (
	"fmt"
	"math"
)

// Filter is a resampling filter, named as Pillow names it.
type Filter int

const (
	// Bilinear is Image.BILINEAR: the triangle filter, support 1.
	Bilinear Filter = iota
	// Bicubic is Image.BICUBIC: Keys' cubic with a = -0.5, support 2.
	Bicubic
)

func (f Filter) String() string {
	switch f {
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// support is the filter's half-width at scale 1.
func (f Filter) support() float64 {
	switch f {
	case Bilinear:
		return 1
	case Bicubic:
		return 2
	}
	panic("pilresize: unknown " + f.String())
}

func (f Filter) weight(x float64) float64 {
	if x < 0 {
		x = -x
	}
	switch f {
	case Bilinear:
		if x < 1 {
			return 1 - x
		}
		return 0
	default:
		const a = -0.5
		if x < 1 {
			return float64(float64(float64(float64((a+2)*x)-(a+3))*x)*x) + 1
		}
		if x < 2 {
			return float64(float64(float64(float64(float64(x-5)*x)+8)*x)-4) * a
		}
		return 0
	}
}

// coeffs holds, per output pixel i, the first source pixel first[i], the
// number of taps n[i] and the weights k[i*ksize : i*ksize+n[i]].
type coeffs struct {
	ksize    int
	first, n []int
	k        []float64
}

// precompute is Pillow's precompute_coeffs for a whole-axis resize of in
// pixels to out pixels.
func precompute(in, out int, f Filter) coeffs {
	scale := float64(in) / float64(out)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := f.support() * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, first: make([]int, out), n: make([]int, out), k: make([]float64, out*ksize)}
	ss := 1 / filterscale
	for i := 0; i < out; i++ {
		center := (float64(i) + 0.5) * scale
		// C truncates toward zero; negative values are clamped to 0 anyway.
		lo := int(center - support + 0.5)
		if lo < 0 {
			lo = 0
		}
		hi := int(center + support + 0.5)
		if hi > in {
			hi = in
		}
		n := hi - lo
		k := c.k[i*ksize : i*ksize+n]
		ww := 0.0
		for x := range k {
			w := f.weight(float64(float64(float64(x+lo)-center)+0.5) * ss)
			k[x] = w
			ww += w
		}
		if ww != 0 {
			for x := range k {
				k[x] /= ww
			}
		}
		c.first[i], c.n[i] = lo, n
	}
	return c
}

// span is the source range [lo, hi) the vertical coefficients touch.
func (c coeffs) span() (lo, hi int) {
	last := len(c.first) - 1
	return c.first[0], c.first[last] + c.n[last]
}

// ResizePlane resizes one float plane of sw x sh values (row-major) to dw x dh
// as Pillow's mode "F" does. It panics if len(src) != sw*sh or a size is not
// positive.
func ResizePlane(src []float32, sw, sh, dw, dh int, f Filter) []float32 {
	check(len(src), 1, sw, sh, dw, dh)
	if sw == dw && sh == dh {
		return append([]float32(nil), src...)
	}
	cv := precompute(sh, dh, f)
	cur, cw := src, sw
	y0 := 0
	if dw != sw {
		lo, hi := cv.span()
		rows := hi - lo
		ch := precompute(sw, dw, f)
		tmp := make([]float32, dw*rows)
		for y := 0; y < rows; y++ {
			row := src[(y+lo)*sw : (y+lo+1)*sw]
			out := tmp[y*dw : (y+1)*dw]
			for x := range out {
				k := ch.k[x*ch.ksize : x*ch.ksize+ch.n[x]]
				in := row[ch.first[x]:]
				s := 0.0
				for i, w := range k {
					s += float64(float64(in[i]) * w)
				}
				out[x] = float32(s)
			}
		}
		cur, cw, y0 = tmp, dw, lo
	}
	if dh == sh {
		return cur
	}
	dst := make([]float32, dw*dh)
	for y := 0; y < dh; y++ {
		k := cv.k[y*cv.ksize : y*cv.ksize+cv.n[y]]
		base := cv.first[y] - y0
		out := dst[y*dw : (y+1)*dw]
		for x := range out {
			s := 0.0
			for i, w := range k {
				s += float64(float64(cur[(base+i)*cw+x]) * w)
			}
			out[x] = float32(s)
		}
	}
	return dst
}

// precisionBits is Pillow's PRECISION_BITS (32 - 8 - 2): the fixed-point
// fraction of the 8-bit weights.
const precisionBits = 22

// fixed is Pillow's normalize_coeffs_8bpc: weights rounded half away from
// zero to precisionBits fractional bits.
func (c coeffs) fixed() []int32 {
	k := make([]int32, len(c.k))
	for i, w := range c.k {
		v := w * (1 << precisionBits)
		if w < 0 {
			k[i] = int32(-0.5 + v)
		} else {
			k[i] = int32(0.5 + v)
		}
	}
	return k
}

func clip8(v int32) byte {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// ResizeRGB8 resizes interleaved 8-bit RGB pixels (sw x sh, 3 bytes a pixel,
// row-major, no padding) to dw x dh as Pillow's mode "RGB" does. It panics if
// len(src) != sw*sh*3 or a size is not positive.
func ResizeRGB8(src []byte, sw, sh, dw, dh int, f Filter) []byte {
	check(len(src), 3, sw, sh, dw, dh)
	if sw == dw && sh == dh {
		return append([]byte(nil), src...)
	}
	cv := precompute(sh, dh, f)
	cur, cw := src, sw
	y0 := 0
	if dw != sw {
		lo, hi := cv.span()
		rows := hi - lo
		chz := precompute(sw, dw, f)
		kk := chz.fixed()
		tmp := make([]byte, dw*rows*3)
		for y := 0; y < rows; y++ {
			row := src[(y+lo)*sw*3 : (y+lo+1)*sw*3]
			out := tmp[y*dw*3 : (y+1)*dw*3]
			for x := 0; x < dw; x++ {
				k := kk[x*chz.ksize : x*chz.ksize+chz.n[x]]
				in := row[chz.first[x]*3:]
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for i, w := range k {
					s0 += int32(in[i*3]) * w
					s1 += int32(in[i*3+1]) * w
					s2 += int32(in[i*3+2]) * w
				}
				out[x*3], out[x*3+1], out[x*3+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		cur, cw, y0 = tmp, dw, lo
	}
	if dh == sh {
		return cur
	}
	kk := cv.fixed()
	dst := make([]byte, dw*dh*3)
	stride := cw * 3
	for y := 0; y < dh; y++ {
		k := kk[y*cv.ksize : y*cv.ksize+cv.n[y]]
		base := cv.first[y] - y0
		out := dst[y*stride : (y+1)*stride]
		for x := range out {
			s := int32(1 << (precisionBits - 1))
			for i, w := range k {
				s += int32(cur[(base+i)*stride+x]) * w
			}
			out[x] = clip8(s)
		}
	}
	return dst
}

func check(n, channels, sw, sh, dw, dh int) {
	if sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 {
		panic(fmt.Sprintf("pilresize: sizes must be positive: %dx%d -> %dx%d", sw, sh, dw, dh))
	}
	if n != sw*sh*channels {
		panic(fmt.Sprintf("pilresize: source has %d values, want %dx%dx%d = %d", n, sw, sh, channels, sw*sh*channels))
	}
}
