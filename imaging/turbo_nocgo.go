//go:build !cgo

package imaging

import "errors"

const (
	tjcsCMYK = 3
	tjcsYCCK = 4
)

type scalingFactor struct{ num, denom int }

type tjCodec struct{}

const noCgo = "pure Go (built without cgo, so libturbojpeg cannot be loaded; rebuild with CGO_ENABLED=1 for libjpeg-turbo speed)"

func loadTurbo() bool { return false }

// Backend describes the JPEG codec this process uses; without cgo it is
// always the pure-Go one.
func Backend() string { return noCgo }

func newTJCodec(bool) (*tjCodec, error) { return nil, errors.New("imaging: " + noCgo) }
func (c *tjCodec) close()               {}
func (c *tjCodec) header([]byte) (int, int, int, error) {
	return 0, 0, 0, errors.New(noCgo)
}
func (c *tjCodec) decode([]byte, []byte, int, int) (bool, error) { return false, errors.New(noCgo) }
func encodeBound(w, h int) int                                   { return 0 }
func (c *tjCodec) encode([]byte, int, int, int, []byte) (int, error) {
	return 0, errors.New(noCgo)
}
func turboFactors() []scalingFactor { return nil }

func haveTurboYUV() bool { return false }

func (p *Processor) processYUV([]byte) (bool, int, int, error) { return false, 0, 0, nil }
