package imaging

import (
	"image"
	"image/jpeg"
	"image/png"
	"math"
)

// ReasonEncode is returned when re-encoding fails, which points at a bug or
// resource exhaustion rather than at the input.
const ReasonEncode = "image_encode"

// Fixed-point precision of the resampling weights.
const (
	wBits = 22
	wHalf = 1 << (wBits - 1)
)

// kernel holds the precomputed taps of a 1-D resampling from a window of a
// source axis onto dstLen output samples. It is rebuilt only when the
// geometry changes, so a stream of same-sized images reuses it.
type kernel struct {
	srcLen, dstLen int
	off, span      float64
	valid          bool

	identity bool    // one tap of weight 1 per output, at start[i] = off+i
	n        int     // stride of w
	start    []int32 // first source sample of output i
	cnt      []int32 // taps of output i
	w        []int32 // weights, fixed point 1<<wBits, n per output
	lo, hi   int     // source samples used: [lo, hi)

	// The same taps as 1<<w16Bits fixed point, n8 (k.n rounded up to 8,
	// zero padded) per output, for the 8-bit plane passes of the YUV path:
	// 16-bit weights let SSE2's pmaddwd do two taps per instruction.
	w16 []int16
	n8  int
}

const w16Bits = 14

// build prepares the taps for output sample i covering source coordinates
// off + [i, i+1) * span/dstLen, using a triangle filter whose support is
// widened by the downscale factor (antialiasing); for upscaling it is plain
// linear interpolation. Taps outside the image are dropped and the rest
// renormalised.
func (k *kernel) build(srcLen int, off, span float64, dstLen int) {
	if k.valid && k.srcLen == srcLen && k.off == off && k.span == span && k.dstLen == dstLen {
		return
	}
	*k = kernel{srcLen: srcLen, off: off, span: span, dstLen: dstLen, valid: true,
		start: k.start[:0], cnt: k.cnt[:0], w: k.w[:0], w16: k.w16[:0]}
	scale := span / float64(dstLen)
	if scale == 1 && off == math.Trunc(off) {
		k.identity = true
		k.lo, k.hi = int(off), int(off)+dstLen
		return
	}
	fscale := max(scale, 1)
	support := fscale // triangle radius 1, stretched when downscaling
	k.n = int(math.Ceil(support))*2 + 2
	k.lo, k.hi = srcLen, 0
	var tmp [64]float64
	ws := tmp[:0]
	if k.n > len(tmp) {
		ws = make([]float64, 0, k.n)
	}
	for i := 0; i < dstLen; i++ {
		center := off + (float64(i)+0.5)*scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), srcLen)
		ws = ws[:0]
		sum := 0.0
		for j := lo; j < hi; j++ {
			x := math.Abs(float64(j)+0.5-center) / fscale
			v := max(1-x, 0)
			ws = append(ws, v)
			sum += v
		}
		// Trim zero-weight taps at both ends.
		for len(ws) > 1 && ws[0] == 0 {
			ws, lo = ws[1:], lo+1
		}
		for len(ws) > 1 && ws[len(ws)-1] == 0 {
			ws = ws[:len(ws)-1]
		}
		if sum == 0 { // window entirely outside the image: nearest sample
			lo = min(max(int(center), 0), srcLen-1)
			ws, sum = append(ws[:0], 1), 1
		}
		k.start = append(k.start, int32(lo))
		k.cnt = append(k.cnt, int32(len(ws)))
		for t := 0; t < k.n; t++ {
			var q int32
			if t < len(ws) {
				q = int32(math.Round(ws[t] / sum * (1 << wBits)))
			}
			k.w = append(k.w, q)
		}
		k.lo = min(k.lo, lo)
		k.hi = max(k.hi, lo+len(ws))
	}
	k.build16()
}

// build16 requantises w to 14 bits, keeping each output's sum exactly
// 1<<w16Bits (the largest tap absorbs the rounding) so that flat areas stay
// exactly flat.
func (k *kernel) build16() {
	k.n8 = (k.n + 7) &^ 7
	for i := 0; i < k.dstLen; i++ {
		ws := k.w[i*k.n : i*k.n+int(k.cnt[i])]
		sum, big := int32(0), 0
		base := len(k.w16)
		for t, v := range ws {
			q := int16((v + 1<<(wBits-w16Bits-1)) >> (wBits - w16Bits))
			k.w16 = append(k.w16, q)
			sum += int32(q)
			if v > ws[big] {
				big = t
			}
		}
		k.w16[base+big] += int16(1<<w16Bits - sum)
		for t := len(ws); t < k.n8; t++ {
			k.w16 = append(k.w16, 0)
		}
	}
}

func clamp8(v int32) byte {
	v >>= wBits
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// hpass resamples rows [r0, r1) of src horizontally into consecutive rows of
// dst. Source column c is at byte (c-base)*3 of its row.
func hpass(src []byte, srcStride, r0, r1, base int, k *kernel, dst []byte, dstStride int) {
	dw := k.dstLen
	for y := r0; y < r1; y++ {
		row := src[y*srcStride:]
		out := dst[(y-r0)*dstStride:][: dw*3 : dw*3]
		for i := 0; i < dw; i++ {
			s, c := (int(k.start[i])-base)*3, int(k.cnt[i])
			ws := k.w[i*k.n : i*k.n+c]
			px := row[s : s+3*c]
			r, g, b := int32(wHalf), int32(wHalf), int32(wHalf)
			for t, wt := range ws {
				q := px[3*t : 3*t+3 : 3*t+3]
				r += int32(q[0]) * wt
				g += int32(q[1]) * wt
				b += int32(q[2]) * wt
			}
			o := out[3*i : 3*i+3 : 3*i+3]
			o[0], o[1], o[2] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
}

// vpass resamples vertically: output row i (n bytes wide) is the weighted
// sum of src rows k.start[i]-rowBase.., each srcStride apart, from byte
// colOff.
func vpass(src []byte, srcStride, colOff, rowBase int, k *kernel, acc []int32, dst []byte, dstStride, n int) {
	acc = acc[:n]
	for i := 0; i < k.dstLen; i++ {
		for j := range acc {
			acc[j] = wHalf
		}
		s, c := int(k.start[i])-rowBase, int(k.cnt[i])
		for t, wt := range k.w[i*k.n : i*k.n+c] {
			o := (s+t)*srcStride + colOff
			row := src[o : o+n]
			row = row[:len(acc)]
			for j, v := range row {
				acc[j] += int32(v) * wt
			}
		}
		out := dst[i*dstStride:][:n]
		out = out[:len(acc)]
		for j, a := range acc {
			out[j] = clamp8(a)
		}
	}
}

// resample maps the window (sx, sy, sw, sh) of src onto a dw x dh block of
// dst starting at byte offset dstOff, rows dstStride apart.
func (p *Processor) resample(src rgbImage, sx, sy, sw, sh float64, dst []byte, dstOff, dstStride, dw, dh int) {
	hk, vk := &p.hk, &p.vk
	hk.build(src.w, sx, sw, dw)
	vk.build(src.h, sy, sh, dh)
	stride := src.w * 3
	n := dw * 3
	useC := haveCPasses && !p.goPasses
	switch {
	case hk.identity && vk.identity:
		for y := 0; y < dh; y++ {
			o := (vk.lo+y)*stride + hk.lo*3
			copy(dst[dstOff+y*dstStride:][:n], src.pix[o:o+n])
		}
	case vk.identity:
		if useC {
			hpassC(src.pix, stride, vk.lo, vk.hi, 0, hk, dst[dstOff:], dstStride)
		} else {
			hpass(src.pix, stride, vk.lo, vk.hi, 0, hk, dst[dstOff:], dstStride)
		}
	case hk.identity:
		p.acc = growInt32(p.acc, n)
		if useC {
			vpassC(src.pix, stride, hk.lo*3, 0, vk, p.acc, dst[dstOff:], dstStride, n)
		} else {
			vpass(src.pix, stride, hk.lo*3, 0, vk, p.acc, dst[dstOff:], dstStride, n)
		}
	default:
		// Vertical first, over the columns the horizontal taps use: the
		// bigger share of the work runs in the pass that vectorises.
		cols := (hk.hi - hk.lo) * 3
		p.tmp = grow(p.tmp, dh*cols)
		p.acc = growInt32(p.acc, cols)
		if useC {
			vpassC(src.pix, stride, hk.lo*3, 0, vk, p.acc, p.tmp, cols, cols)
			hpassC(p.tmp, cols, 0, dh, hk.lo, hk, dst[dstOff:], dstStride)
		} else {
			vpass(src.pix, stride, hk.lo*3, 0, vk, p.acc, p.tmp, cols, cols)
			hpass(p.tmp, cols, 0, dh, hk.lo, hk, dst[dstOff:], dstStride)
		}
	}
}

func growInt32(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

// resizeAndEncode applies the resize mode to the upright image and encodes
// the result into p.enc, setting p.outW and p.outH.
func (p *Processor) resizeAndEncode(img rgbImage) error {
	W, H, S := img.w, img.h, p.opt.Size
	mode := p.effectiveMode(W, H)
	fw, fh := float64(W), float64(H)
	var pix []byte
	switch mode {
	case NoResize:
		pix, p.outW, p.outH = img.pix[:W*H*3], W, H
	case CenterCrop:
		side := float64(min(W, H))
		p.out = grow(p.out, S*S*3)
		p.resample(img, (fw-side)/2, (fh-side)/2, side, side, p.out, 0, S*3, S, S)
		pix, p.outW, p.outH = p.out, S, S
	case KeepRatio, KeepRatioLargest:
		dw, dh := fitSize(W, H, S, mode == KeepRatio)
		p.out = grow(p.out, dw*dh*3)
		p.resample(img, 0, 0, fw, fh, p.out, 0, dw*3, dw, dh)
		pix, p.outW, p.outH = p.out, dw, dh
	case Border:
		dw, dh := fitSize(W, H, S, false)
		p.out = grow(p.out, S*S*3)
		c := p.opt.BorderColor
		fill := p.out[:S*S*3]
		fill[0], fill[1], fill[2] = c.R, c.G, c.B
		for i := 3; i < len(fill); i *= 2 {
			copy(fill[i:], fill[:i])
		}
		x0, y0 := (S-dw)/2, (S-dh)/2
		p.resample(img, 0, 0, fw, fh, p.out, (y0*S+x0)*3, S*3, dw, dh)
		pix, p.outW, p.outH = p.out, S, S
	}
	return p.encode(pix, p.outW, p.outH)
}

// effectiveMode is Options.Mode, or NoResize where ResizeOnlyIfBigger
// keeps a W x H image as it is.
func (p *Processor) effectiveMode(W, H int) Mode {
	mode := p.opt.Mode
	if p.opt.ResizeOnlyIfBigger {
		side := min(W, H)
		if mode == KeepRatioLargest || mode == Border {
			side = max(W, H)
		}
		if side <= p.opt.Size {
			mode = NoResize
		}
	}
	return mode
}

// fitSize scales w x h so that its shorter (shorter=true) or longer side is
// S, rounding the other side and keeping it at least 1.
func fitSize(w, h, S int, shorter bool) (int, int) {
	side := max(w, h)
	if shorter {
		side = min(w, h)
	}
	s := float64(S) / float64(side)
	dw := max(int(math.Round(float64(w)*s)), 1)
	dh := max(int(math.Round(float64(h)*s)), 1)
	if w == side {
		dw = S
	}
	if h == side {
		dh = S
	}
	return dw, dh
}

func (p *Processor) encode(pix []byte, w, h int) error {
	if p.jpegOut && p.tj != nil {
		p.enc = grow(p.enc, encodeBound(w, h))
		n, err := p.tj.encode(pix, w, h, p.opt.Quality, p.enc)
		if err != nil {
			return reject(ReasonEncode, "%dx%d JPEG: %v", w, h, err)
		}
		p.enc = p.enc[:n]
		return nil
	}
	// Go's encoders have fast paths for *image.RGBA.
	if p.rgba == nil || cap(p.rgba.Pix) < w*h*4 {
		p.rgba = &image.RGBA{Pix: make([]byte, w*h*4)}
	}
	p.rgba.Pix, p.rgba.Stride, p.rgba.Rect = p.rgba.Pix[:w*h*4], w*4, image.Rect(0, 0, w, h)
	d := p.rgba.Pix
	for i, j := 0, 0; i < len(pix); i, j = i+3, j+4 {
		d[j], d[j+1], d[j+2], d[j+3] = pix[i], pix[i+1], pix[i+2], 255
	}
	p.encBuf.Reset()
	var err error
	if p.jpegOut {
		err = jpeg.Encode(&p.encBuf, p.rgba, &jpeg.Options{Quality: p.opt.Quality})
	} else {
		err = p.pngEnc.Encode(&p.encBuf, p.rgba)
	}
	if err != nil {
		return reject(ReasonEncode, "%dx%d: %v", w, h, err)
	}
	p.enc = p.encBuf.Bytes()
	return nil
}

// pngPool keeps one png.EncoderBuffer for reuse by a single Processor.
type pngPool struct{ b *png.EncoderBuffer }

func (q *pngPool) Get() *png.EncoderBuffer  { b := q.b; q.b = nil; return b }
func (q *pngPool) Put(b *png.EncoderBuffer) { q.b = b }
