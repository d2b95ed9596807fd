package imaging

import (
	"bytes"
	"encoding/binary"
)

// exifOrientation returns the EXIF orientation (1..8) stored in a JPEG APP1
// segment, a PNG eXIf chunk or a WebP EXIF chunk, or 1 when there is none
// or it is malformed. It only reads, never trusts, offsets in the input.
func exifOrientation(b []byte, f format) int {
	switch f {
	case fmtJPEG:
		return jpegOrientation(b)
	case fmtPNG:
		return pngOrientation(b)
	case fmtWebP:
		return webpOrientation(b)
	}
	return 1
}

var exifHeader = []byte("Exif\x00\x00")

func jpegOrientation(b []byte) int {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 1
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7): // no length
			i += 2
			continue
		case m == 0xDA || m == 0xD9: // start of scan, end of image: no Exif
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if m == 0xE1 && bytes.HasPrefix(seg, exifHeader) {
			return tiffOrientation(seg[len(exifHeader):])
		}
		i += 2 + n
	}
	return 1
}

func pngOrientation(b []byte) int {
	i := len(pngSignature)
	for i+8 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || n > len(b)-i-8 {
			return 1
		}
		if typ == "eXIf" {
			return tiffOrientation(bytes.TrimPrefix(b[i+8:i+8+n], exifHeader))
		}
		if typ == "IEND" {
			return 1
		}
		i += 12 + n // length, type, data, CRC
	}
	return 1
}

func webpOrientation(b []byte) int {
	i := 12 // "RIFF" size "WEBP"
	for i+8 <= len(b) {
		typ := string(b[i : i+4])
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n < 0 || n > len(b)-i-8 {
			return 1
		}
		if typ == "EXIF" {
			return tiffOrientation(bytes.TrimPrefix(b[i+8:i+8+n], exifHeader))
		}
		i += 8 + n + n&1 // chunks are padded to even sizes
	}
	return 1
}

// tiffOrientation reads tag 0x0112 (Orientation) from IFD0 of a TIFF
// structure in either byte order.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	n := int(bo.Uint16(t[ifd:]))
	for k := 0; k < n; k++ {
		e := int(ifd) + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		var v int
		switch bo.Uint16(t[e+2:]) { // field type
		case 3: // SHORT: the value sits left-justified in the 4-byte field
			v = int(bo.Uint16(t[e+8:]))
		case 4: // LONG
			v = int(bo.Uint32(t[e+8:]))
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return v
	}
	return 1
}
