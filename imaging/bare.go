package imaging

import "fmt"

// BareTurboDecoder decodes JPEGs at full size with libjpeg-turbo into a
// reusable RGB buffer and does nothing else. It is the anchor the pipeline
// benchmark compares against; it is not safe for concurrent use.
type BareTurboDecoder struct {
	tj  *tjCodec
	buf []byte
}

// NewBareTurboDecoder fails when libjpeg-turbo cannot be loaded (see
// Backend for why).
func NewBareTurboDecoder() (*BareTurboDecoder, error) {
	tj, err := newTJCodec(false)
	if err != nil {
		return nil, err
	}
	return &BareTurboDecoder{tj: tj}, nil
}

// Decode decompresses data at full size (accurate DCT, fancy upsampling,
// the library defaults, as djpeg) and returns its size. Pixels returns the
// RGB result until the next call.
func (d *BareTurboDecoder) Decode(data []byte) (w, h int, err error) {
	w, h, _, err = d.tj.header(data)
	if err != nil {
		return 0, 0, fmt.Errorf("imaging: JPEG header: %w", err)
	}
	d.buf = grow(d.buf, w*h*3)
	if _, err := d.tj.decode(data, d.buf, w, h); err != nil {
		return 0, 0, fmt.Errorf("imaging: JPEG: %w", err)
	}
	return w, h, nil
}

// Pixels returns the packed RGB result of the last Decode.
func (d *BareTurboDecoder) Pixels() []byte { return d.buf }

// Close releases the libjpeg-turbo handle.
func (d *BareTurboDecoder) Close() { d.tj.close() }
