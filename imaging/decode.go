package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

type format int

const (
	fmtUnknown format = iota
	fmtJPEG
	fmtPNG
	fmtGIF
	fmtWebP
)

func (f format) String() string {
	return [...]string{"unknown", "JPEG", "PNG", "GIF", "WebP"}[f]
}

const pngSignature = "\x89PNG\r\n\x1a\n"

// sniff identifies the format from its magic bytes.
func sniff(b []byte) format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return fmtJPEG
	case bytes.HasPrefix(b, []byte(pngSignature)):
		return fmtPNG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return fmtGIF
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return fmtWebP
	}
	return fmtUnknown
}

// decode checks the declared size, decodes to upright packed RGB and
// returns it with the original upright size.
func (p *Processor) decode(data []byte, f format) (img rgbImage, ow, oh int, err error) {
	orient := exifOrientation(data, f)
	if f == fmtJPEG && p.tj != nil {
		w, h, cs, err := p.tj.header(data)
		if err != nil {
			return img, 0, 0, reject(ReasonDecode, "JPEG header: %v", err)
		}
		ow, oh = upright(w, h, orient)
		if r := p.checkSize(ow, oh); r != nil {
			return img, 0, 0, r
		}
		// TurboJPEG cannot produce RGB from CMYK/YCCK; Go's decoder can.
		if cs != tjcsCMYK && cs != tjcsYCCK {
			sw, sh := p.scaledSize(w, h)
			p.dec = grow(p.dec, sw*sh*3)
			warn, err := p.tj.decode(data, p.dec, sw, sh)
			if err != nil && !warn {
				return img, 0, 0, reject(ReasonDecode, "JPEG: %v", err)
			}
			if warn {
				if r := warningError(data); r != nil {
					return img, 0, 0, r
				}
			}
			return p.orient(rgbImage{p.dec, sw, sh}, orient), ow, oh, nil
		}
	}
	p.rd.Reset(data)
	var cfg image.Config
	switch f {
	case fmtJPEG:
		cfg, err = jpeg.DecodeConfig(&p.rd)
	case fmtPNG:
		cfg, err = png.DecodeConfig(&p.rd)
	case fmtGIF:
		cfg, err = gif.DecodeConfig(&p.rd)
	case fmtWebP:
		cfg, err = webp.DecodeConfig(&p.rd)
	}
	if err != nil {
		return img, 0, 0, reject(ReasonDecode, "%v header: %v", f, err)
	}
	ow, oh = upright(cfg.Width, cfg.Height, orient)
	if r := p.checkSize(ow, oh); r != nil {
		return img, 0, 0, r
	}
	p.rd.Reset(data)
	var m image.Image
	switch f {
	case fmtJPEG:
		m, err = jpeg.Decode(&p.rd)
	case fmtPNG:
		m, err = png.Decode(&p.rd)
	case fmtGIF:
		m, err = gif.Decode(&p.rd) // the first frame
	case fmtWebP:
		m, err = webp.Decode(&p.rd)
	}
	if err != nil {
		return img, 0, 0, reject(ReasonDecode, "%v: %v", f, err)
	}
	b := m.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return img, 0, 0, reject(ReasonDecode, "%v: empty %dx%d image", f, b.Dx(), b.Dy())
	}
	p.dec = toRGBRange(m, p.dec, f == fmtWebP)
	img = p.orient(rgbImage{p.dec, b.Dx(), b.Dy()}, orient)
	// A GIF's first frame may be smaller than its logical screen: report the
	// pixels we actually have.
	return img, img.w, img.h, nil
}

// upright returns the displayed size for a stored w x h and an EXIF
// orientation: 5..8 swap the axes.
func upright(w, h, orient int) (int, int) {
	if orient >= 5 {
		return h, w
	}
	return w, h
}

// scaledSize picks the smallest libjpeg-turbo DCT scaling factor (1/8, 1/4
// or 1/2, else 1) whose
// output still covers what the resize needs, and returns the scaled size of
// the stored w x h image.
func (p *Processor) scaledSize(w, h int) (int, int) {
	need := p.opt.Size
	if p.noDCTScale {
		return w, h
	}
	side := min(w, h)
	switch p.opt.Mode {
	case NoResize:
		return w, h
	case KeepRatioLargest, Border:
		side = max(w, h)
	}
	for _, f := range turboFactors() { // ascending
		// Only 1/8, 1/4 and 1/2: libjpeg-turbo 2.1 has SIMD code for those
		// reduced IDCTs, while the other M/8 sizes use scalar code and
		// measured slower than a full-size decode.
		if f.num >= f.denom {
			break
		}
		if r := f.denom / f.num; f.denom%f.num != 0 || r&(r-1) != 0 {
			continue
		}
		if (side*f.num+f.denom-1)/f.denom >= need {
			return (w*f.num + f.denom - 1) / f.denom, (h*f.num + f.denom - 1) / f.denom
		}
	}
	return w, h
}

// toRGB converts any decoded image to packed 8-bit RGB in dst, compositing
// alpha onto white. 16-bit samples keep their high byte.
func toRGB(m image.Image, dst []byte) []byte { return toRGBRange(m, dst, false) }

// toRGBRange is toRGB; limited says Y'CbCr uses the BT.601 video range
// (Y' 16..235), as lossy WebP (VP8) does, instead of JPEG's full range.
func toRGBRange(m image.Image, dst []byte, limited bool) []byte {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	dst = grow(dst, w*h*3)
	o := 0
	switch m := m.(type) {
	case *image.YCbCr:
		if b.Min == (image.Point{}) {
			ycbcrFancy(m.Y, m.Cb, m.Cr, nil, m.YStride, m.CStride, 0, m.SubsampleRatio, w, h, limited, dst)
			break
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				dst[o], dst[o+1], dst[o+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o += 3
			}
		}
	case *image.NYCbCrA:
		if b.Min == (image.Point{}) {
			ycbcrFancy(m.Y, m.Cb, m.Cr, m.A, m.YStride, m.CStride, m.AStride, m.SubsampleRatio, w, h, limited, dst)
			break
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				a := uint32(m.A[m.AOffset(x, y)])
				dst[o], dst[o+1], dst[o+2] = over8(r, a), over8(g, a), over8(bb, a)
				o += 3
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:w]
			for _, v := range row {
				dst[o], dst[o+1], dst[o+2] = v, v, v
				o += 3
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:2*w]
			for i := 0; i < len(row); i += 2 {
				v := row[i]
				dst[o], dst[o+1], dst[o+2] = v, v, v
				o += 3
			}
		}
	case *image.RGBA: // premultiplied: c + (255 - a) is c over white
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			for i := 0; i < len(row); i += 4 {
				k := 255 - row[i+3]
				dst[o], dst[o+1], dst[o+2] = row[i]+k, row[i+1]+k, row[i+2]+k
				o += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			for i := 0; i < len(row); i += 4 {
				a := uint32(row[i+3])
				dst[o], dst[o+1], dst[o+2] = over8(row[i], a), over8(row[i+1], a), over8(row[i+2], a)
				o += 3
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:8*w]
			for i := 0; i < len(row); i += 8 {
				a := uint32(row[i+6])
				dst[o], dst[o+1], dst[o+2] = over8(row[i], a), over8(row[i+2], a), over8(row[i+4], a)
				o += 3
			}
		}
	case *image.Paletted:
		var lut [256][3]byte
		for i := range lut {
			c := color.RGBA{255, 255, 255, 255} // indices past the palette: white
			if i < len(m.Palette) {
				r, g, bb, a := m.Palette[i].RGBA()
				k := 0xffff - a
				c = color.RGBA{uint8((r + k) >> 8), uint8((g + k) >> 8), uint8((bb + k) >> 8), 255}
			}
			lut[i] = [3]byte{c.R, c.G, c.B}
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:w]
			for _, v := range row {
				c := lut[v]
				dst[o], dst[o+1], dst[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	case *image.CMYK:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			for i := 0; i < len(row); i += 4 {
				dst[o], dst[o+1], dst[o+2] = color.CMYKToRGB(row[i], row[i+1], row[i+2], row[i+3])
				o += 3
			}
		}
	default: // RGBA64, Gray16 with alpha, ...: premultiplied 16-bit over white
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, a := m.At(x, y).RGBA()
				k := 0xffff - a
				dst[o], dst[o+1], dst[o+2] = uint8((r+k)>>8), uint8((g+k)>>8), uint8((bb+k)>>8)
				o += 3
			}
		}
	}
	return dst
}

// over8 composites a non-premultiplied 8-bit sample with alpha a onto white.
func over8(c uint8, a uint32) uint8 {
	return uint8((uint32(c)*a + 255*(255-a) + 127) / 255)
}

// orient applies an EXIF orientation (2..8) into p.rot; 1 returns img.
func (p *Processor) orient(img rgbImage, o int) rgbImage {
	if o <= 1 || o > 8 {
		return img
	}
	w, h := img.w, img.h
	ow, oh := upright(w, h, o)
	p.rot = grow(p.rot, len(img.pix))
	dst, src := p.rot, img.pix
	// For each output pixel (x, y), the source pixel is (sx, sy) =
	// (x0 + x*dxx + y*dxy, y0 + x*dyx + y*dyy).
	var x0, y0, dxx, dxy, dyx, dyy int
	switch o {
	case 2: // mirror horizontally
		x0, dxx, dyy = w-1, -1, 1
	case 3: // rotate 180
		x0, y0, dxx, dyy = w-1, h-1, -1, -1
	case 4: // mirror vertically
		y0, dxx, dyy = h-1, 1, -1
	case 5: // transpose
		dxy, dyx = 1, 1
	case 6: // rotate 90 clockwise
		y0, dxy, dyx = h-1, 1, -1
	case 7: // transverse
		x0, y0, dxy, dyx = w-1, h-1, -1, -1
	case 8: // rotate 90 counter-clockwise
		x0, dxy, dyx = w-1, -1, 1
	}
	i := 0
	for y := 0; y < oh; y++ {
		sx, sy := x0+y*dxy, y0+y*dyy
		for x := 0; x < ow; x++ {
			s := (sy*w + sx) * 3
			dst[i], dst[i+1], dst[i+2] = src[s], src[s+1], src[s+2]
			i += 3
			sx += dxx
			sy += dyx
		}
	}
	return rgbImage{dst[:ow*oh*3], ow, oh}
}

// ycbcrFancy converts Y'CbCr planes to RGB, interpolating 4:2:0 and 4:2:2
// chroma linearly between sample centres (weights 3/4 and 1/4 per axis, the
// "fancy upsampling" of libjpeg and libwebp) instead of replicating it, so
// that the pure-Go path stays close to libjpeg-turbo and PIL. Other
// subsamplings replicate. Alpha, when present, is composited onto white.
func ycbcrFancy(Y, Cb, Cr, A []byte, ys, cs, as int, sr image.YCbCrSubsampleRatio, w, h int, limited bool, dst []byte) {
	hx, vy := 1, 1 // chroma subsampling factors
	switch sr {
	case image.YCbCrSubsampleRatio420:
		hx, vy = 2, 2
	case image.YCbCrSubsampleRatio422:
		hx = 2
	}
	cw, ch := (w+hx-1)/hx, (h+vy-1)/vy
	o := 0
	for y := 0; y < h; y++ {
		cy0, cy1 := y/vy, y/vy
		if vy == 2 {
			if y&1 == 0 {
				cy1 = max(cy0-1, 0)
			} else {
				cy1 = min(cy0+1, ch-1)
			}
		}
		r0, r1 := cy0*cs, cy1*cs
		for x := 0; x < w; x++ {
			cx0, cx1 := x/hx, x/hx
			if hx == 2 {
				if x&1 == 0 {
					cx1 = max(cx0-1, 0)
				} else {
					cx1 = min(cx0+1, cw-1)
				}
			}
			var cb, cr uint8
			if hx == 2 && vy == 2 {
				cb = uint8((9*int(Cb[r0+cx0]) + 3*int(Cb[r0+cx1]) + 3*int(Cb[r1+cx0]) + int(Cb[r1+cx1]) + 8) >> 4)
				cr = uint8((9*int(Cr[r0+cx0]) + 3*int(Cr[r0+cx1]) + 3*int(Cr[r1+cx0]) + int(Cr[r1+cx1]) + 8) >> 4)
			} else {
				cb = uint8((3*int(Cb[r0+cx0]) + int(Cb[r0+cx1]) + 2) >> 2)
				cr = uint8((3*int(Cr[r0+cx0]) + int(Cr[r0+cx1]) + 2) >> 2)
			}
			var r, g, b uint8
			if limited {
				r, g, b = videoYCbCrToRGB(Y[y*ys+x], cb, cr)
			} else {
				r, g, b = color.YCbCrToRGB(Y[y*ys+x], cb, cr)
			}
			if A != nil {
				a := uint32(A[y*as+x])
				r, g, b = over8(r, a), over8(g, a), over8(b, a)
			}
			dst[o], dst[o+1], dst[o+2] = r, g, b
			o += 3
		}
	}
}

// videoYCbCrToRGB converts BT.601 video-range Y'CbCr (16..235, 16..240):
// R = 1.164(Y-16) + 1.596(Cr-128), G = 1.164(Y-16) - 0.392(Cb-128) -
// 0.813(Cr-128), B = 1.164(Y-16) + 2.017(Cb-128), in 16-bit fixed point.
func videoYCbCrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := (int32(y) - 16) * 76284
	u, v := int32(cb)-128, int32(cr)-128
	c := func(x int32) uint8 {
		x = (x + 1<<15) >> 16
		return uint8(min(max(x, 0), 255))
	}
	return c(yy + 104595*v), c(yy - 25690*u - 53281*v), c(yy + 132186*u)
}

// warningError turns a libjpeg-turbo warning into a reject, or nil when the
// image is usable. TurboJPEG 2.x keeps a warning's text in one process-wide
// buffer that other decodes overwrite (and leaves it "No error" for all but
// a handle's first warning), so the text cannot be trusted; the decision and
// the detail come from the data instead. A JPEG that reaches its end-of-image
// marker decoded completely: its warning (extraneous bytes before a marker,
// common in web JPEGs) is harmless, as PIL and OpenCV also treat it. One that
// does not reach it is truncated: part of the image is grey fill.
func warningError(data []byte) error {
	if jpegComplete(data) {
		return nil
	}
	return reject(ReasonDecode, "JPEG: the data ends before the end-of-image marker (truncated file)")
}

// jpegComplete reports whether data ends with the EOI marker (FF D9), allowing
// for trailing zero padding. Inside entropy-coded data 0xFF is always stuffed
// or a restart marker, so FF D9 at the end is the real EOI.
func jpegComplete(data []byte) bool {
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	return end >= 2 && data[end-2] == 0xFF && data[end-1] == 0xD9
}
