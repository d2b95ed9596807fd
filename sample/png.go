package sample

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
)

// Text is one PNG text chunk: a keyword (1 to 79 Latin-1 characters, e.g.
// "prompt") and its UTF-8 value.
type Text struct{ Key, Value string }

// EncodePNG encodes img as PNG with texts as iTXt chunks (UTF-8,
// uncompressed; PIL's Image.text, exiftool and browsers read them) right
// after the header chunk.
func EncodePNG(img image.Image, texts []Text) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	// signature (8) + IHDR: length (4), type (4), 13 data bytes, CRC (4)
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	if len(b) < ihdrEnd || string(b[12:16]) != "IHDR" {
		return nil, errors.New("sample: PNG without a leading IHDR chunk")
	}
	var chunks bytes.Buffer
	for _, t := range texts {
		if len(t.Key) < 1 || len(t.Key) > 79 {
			return nil, fmt.Errorf("sample: PNG text keyword %q must have 1 to 79 characters", t.Key)
		}
		for _, r := range t.Key {
			if r < 32 || r > 126 {
				return nil, fmt.Errorf("sample: PNG text keyword %q must be printable ASCII", t.Key)
			}
		}
		// keyword, NUL, compression flag 0, method 0, language "" NUL,
		// translated keyword "" NUL, text
		data := append([]byte(t.Key), 0, 0, 0, 0, 0)
		data = append(data, t.Value...)
		writeChunk(&chunks, "iTXt", data)
	}
	out := make([]byte, 0, len(b)+chunks.Len())
	out = append(out, b[:ihdrEnd]...)
	out = append(out, chunks.Bytes()...)
	return append(out, b[ihdrEnd:]...), nil
}

func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.WriteString(typ)
	w.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// Grid tiles equally sized images cols to a row, left to right, top to
// bottom, with a 2-pixel white gap.
func Grid(imgs []image.Image, cols int) *image.RGBA {
	if len(imgs) == 0 {
		return image.NewRGBA(image.Rect(0, 0, 0, 0))
	}
	cols = max(1, min(cols, len(imgs)))
	rows := (len(imgs) + cols - 1) / cols
	const gap = 2
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	g := image.NewRGBA(image.Rect(0, 0, cols*w+(cols-1)*gap, rows*h+(rows-1)*gap))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	for i, img := range imgs {
		x, y := (i%cols)*(w+gap), (i/cols)*(h+gap)
		b := img.Bounds()
		for yy := range min(h, b.Dy()) {
			for xx := range min(w, b.Dx()) {
				g.Set(x+xx, y+yy, img.At(b.Min.X+xx, b.Min.Y+yy))
			}
		}
	}
	return g
}
