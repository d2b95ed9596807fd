//go:build cgo

package imaging

import (
	"image/color"
)

// The YUV path: a JPEG that is re-encoded as JPEG never needs RGB. It is
// decoded to its Y'CbCr planes (no chroma upsampling, no colour
// conversion), each plane is resampled on its own with the geometry of the
// RGB path scaled to that plane's sampling grid, and the 4:2:0 planes are
// compressed directly (no colour conversion, no downsampling). Only the
// chroma filtering differs from the RGB path (which upsamples, converts,
// converts back and box-downsamples): TestYUVPathCloseToRGBPath bounds the
// difference.
//
// Taken for YCbCr or grayscale JPEGs (any of TurboJPEG's subsamplings) with
// EXIF orientation 1, JPEG output and every mode; border mode only when the
// image's offset in the canvas is even, so that it starts on a chroma
// sample. Grayscale input gives a 3-component JPEG with neutral chroma, as
// the RGB path does. Everything else takes the RGB path.

// chromaFactors returns the horizontal and vertical chroma subsampling
// factors of a TurboJPEG subsampling, (0, 0) for grayscale, ok=false for
// one the YUV path does not handle.
func chromaFactors(subsamp int) (hf, vf int, ok bool) {
	switch subsamp {
	case tjsamp444:
		return 1, 1, true
	case tjsamp422:
		return 2, 1, true
	case tjsamp420:
		return 2, 2, true
	case tjsamp440:
		return 1, 2, true
	case tjsamp411:
		return 4, 1, true
	case tjsampGray:
		return 0, 0, true
	}
	return 0, 0, false
}

// processYUV runs the YUV path. done=false means the image does not
// qualify and nothing was done; otherwise err is nil or a *Reject, and on
// success p.enc, p.outW and p.outH hold the result.
func (p *Processor) processYUV(data []byte) (done bool, ow, oh int, err error) {
	if jpegOrientation(data) != 1 {
		return false, 0, 0, nil
	}
	w, h, ss, cs, err := p.tj.headerSub(data)
	if err != nil || (cs != tjcsYCbCr && cs != tjcsGray) {
		return false, 0, 0, nil // decode reports header errors
	}
	hf, vf, ok := chromaFactors(ss)
	gray := ss == tjsampGray
	if !ok || gray != (cs == tjcsGray) {
		return false, 0, 0, nil
	}
	if r := p.checkSize(w, h); r != nil {
		return true, 0, 0, r
	}

	// The decoder: dctdecode.c where it handles the file (it scales by any
	// n/8 and transforms only the blocks the resampler reads), libjpeg-turbo
	// otherwise or when dctdecode.c finds damage.
	sw, sh := p.scaledSize(w, h)
	var info dctInfo
	scale := 0 // dctdecode.c's scale n/8; 0: libjpeg-turbo decodes
	if p.dct != nil && !p.dctSkip {
		if in, ok := p.dct.header(data); ok && in.w == w && in.h == h && in.matches(hf, vf) {
			info, scale = in, p.dctScale(w, h)
			sw, sh = (w*scale+7)/8, (h*scale+7)/8
		}
	}

	// Geometry, as resizeAndEncode computes it on the decoded image: the
	// source window (sx, sy, spw, sph) maps onto dw x dh pixels at (x0, y0)
	// of a CW x CH canvas.
	// After dctdecode.c's n/8 scaling the output size still comes from the
	// image's own size (as the full-size decode gives it) and the window is
	// the same part of the picture, in scaled, fractional coordinates.
	S := p.opt.Size
	gw, gh := sw, sh
	fw, fh := float64(sw), float64(sh)
	if scale > 0 {
		gw, gh = w, h
		fw, fh = float64(w*scale)/8, float64(h*scale)/8
	}
	sx, sy, spw, sph := 0.0, 0.0, fw, fh
	dw, dh, x0, y0 := gw, gh, 0, 0
	mode := p.effectiveMode(gw, gh)
	switch mode {
	case CenterCrop:
		side := min(fw, fh)
		sx, sy, spw, sph = (fw-side)/2, (fh-side)/2, side, side
		dw, dh = S, S
	case KeepRatio:
		dw, dh = fitSize(gw, gh, S, true)
	case KeepRatioLargest:
		dw, dh = fitSize(gw, gh, S, false)
	case Border:
		dw, dh = fitSize(gw, gh, S, false)
		x0, y0 = (S-dw)/2, (S-dh)/2
		if x0&1 != 0 || y0&1 != 0 {
			return false, 0, 0, nil
		}
	}
	CW, CH := dw, dh
	if mode == Border {
		CW, CH = S, S
	}

	// Kernels first: their widths size the slack the plane buffers need.
	p.hk.build(sw, sx, spw, dw)
	p.vk.build(sh, sy, sph, dh)
	dcw, dch := (dw+1)/2, (dh+1)/2 // output chroma samples of the image
	ipw0, iph0 := planeSize(0, sw, sh, ss)
	var ipw1, iph1 int
	slack := planeSlack(&p.hk)
	if !gray {
		ipw1, iph1 = planeSize(1, sw, sh, ss)
		// One output chroma sample covers 2 output luma samples, i.e.
		// 2*spw/dw source luma, i.e. 2*spw/(dw*hf) source chroma samples.
		p.hkc.build(ipw1, sx/float64(hf), float64(dcw)*2*spw/(float64(dw)*float64(hf)), dcw)
		p.vkc.build(iph1, sy/float64(vf), float64(dch)*2*sph/(float64(dh)*float64(vf)), dch)
		slack = max(slack, planeSlack(&p.hkc))
	}
	ys, cs := ipw0, ipw1 // plane strides
	if scale > 0 {
		var rows0, rows1 int
		ys, rows0 = info.planeDims(0, scale)
		iph0 = rows0
		if !gray {
			cs, rows1 = info.planeDims(1, scale)
			iph1 = rows1
		}
	}
	n0, n1 := ys*iph0, cs*iph1
	p.yuvIn = grow(p.yuvIn, n0+2*n1+slack)
	in := p.yuvIn
	iy, iu, iv := in[:n0], in[n0:n0+n1], in[n0+n1:]
	if scale > 0 {
		win := [3]dctWindow{{p.hk.lo, p.hk.hi, p.vk.lo, p.vk.hi}}
		if !gray {
			win[1] = dctWindow{p.hkc.lo, p.hkc.hi, p.vkc.lo, p.vkc.hi}
			win[2] = win[1]
		}
		if !p.dct.decode(data, &info, scale, [3][]byte{iy, iu, iv[:n1]}, win) {
			// Unsupported or damaged after all: libjpeg-turbo decodes it
			// and reports any damage.
			p.dctSkip = true
			defer func() { p.dctSkip = false }()
			return p.processYUV(data)
		}
		p.dctDecodes++
	} else {
		warn, err := p.tj.decodeYUV(data, iy, iu, iv, ipw0, ipw1, sw, sh)
		if err != nil && !warn {
			return true, 0, 0, reject(ReasonDecode, "JPEG: %v", err)
		}
		if warn {
			if r := warningError(data); r != nil {
				return true, 0, 0, r
			}
		}
	}

	opw0, oph0 := planeSize(0, CW, CH, tjsamp420)
	opw1, oph1 := planeSize(1, CW, CH, tjsamp420)
	m0, m1 := opw0*oph0, opw1*oph1
	p.yuvOut = grow(p.yuvOut, m0+2*m1)
	out := p.yuvOut
	oy, ou, ov := out[:m0], out[m0:m0+m1], out[m0+m1:m0+2*m1]
	if CW != dw || CH != dh { // border: fill the canvas first
		c := p.opt.BorderColor
		Y, Cb, Cr := color.RGBToYCbCr(c.R, c.G, c.B)
		fillBytes(oy, Y)
		fillBytes(ou, Cb)
		fillBytes(ov, Cr)
	}
	p.resamplePlane(iy, ys, &p.hk, &p.vk, oy[y0*opw0+x0:], opw0)
	cx0, cy0 := x0/2, y0/2
	if gray {
		for y := cy0; y < cy0+dch; y++ {
			fillBytes(ou[y*opw1+cx0:][:dcw], 128)
			fillBytes(ov[y*opw1+cx0:][:dcw], 128)
		}
	} else {
		p.resamplePlane(iu, cs, &p.hkc, &p.vkc, ou[cy0*opw1+cx0:], opw1)
		p.resamplePlane(iv, cs, &p.hkc, &p.vkc, ov[cy0*opw1+cx0:], opw1)
	}
	// TurboJPEG reads the luma plane padded to whole chroma samples:
	// replicate the last column and row there, as libjpeg pads an image.
	for y := 0; y < CH && opw0 > CW; y++ {
		r := oy[y*opw0:][:opw0]
		fillBytes(r[CW:], r[CW-1])
	}
	for y := CH; y < oph0; y++ {
		copy(oy[y*opw0:][:opw0], oy[(CH-1)*opw0:][:opw0])
	}

	p.enc = grow(p.enc, encodeBound(CW, CH))
	n, err := p.tj.encodeYUV(oy, ou, ov, opw0, opw1, CW, CH, p.opt.Quality, p.enc)
	if err != nil {
		return true, 0, 0, reject(ReasonEncode, "%dx%d JPEG: %v", CW, CH, err)
	}
	p.enc = p.enc[:n]
	p.outW, p.outH = CW, CH
	return true, w, h, nil
}

// matches reports whether the header's sampling factors are the chroma
// factors (hf, vf) libjpeg-turbo reported ((0, 0) for grayscale).
func (in *dctInfo) matches(hf, vf int) bool {
	if in.ncomp == 1 {
		return hf == 0
	}
	return in.hs[0] == hf && in.vs[0] == vf
}

// dctScale is the smallest n for which a decode at n/8 still has the
// pixels the resize needs, as scaledSize decides for libjpeg-turbo's
// factors.
func (p *Processor) dctScale(w, h int) int {
	if p.noDCTScale || p.opt.Mode == NoResize {
		return 8
	}
	side := min(w, h)
	if p.opt.Mode == KeepRatioLargest || p.opt.Mode == Border {
		side = max(w, h)
	}
	for n := 1; n < 8; n++ {
		if (side*n+7)/8 >= p.opt.Size {
			return n
		}
	}
	return 8
}

func fillBytes(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
