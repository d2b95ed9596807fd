package kernels

import (
	"log/slog"

	"github.com/kediff/kediff/kernels/onednn"
)

// dnnConvs holds CPU's oneDNN convolutions, one per shape, built on first
// use. When oneDNN is missing or refuses a shape, that shape takes the
// im2col + GEMM path (Conv2DForward/Conv2DBackward) for the rest of the run.
type dnnConvs struct {
	byShape map[ConvShape]*onednn.Conv // nil entry: use im2col for this shape
	off     bool                       // oneDNN did not load
}

// get returns the oneDNN convolution for s, or nil.
func (d *dnnConvs) get(s ConvShape) *onednn.Conv {
	if d.off {
		return nil
	}
	if c, ok := d.byShape[s]; ok {
		return c
	}
	if d.byShape == nil {
		if err := onednn.Load(); err != nil {
			slog.Debug("kernels: convolutions use im2col + GEMM", "why", err)
			d.off = true
			return nil
		}
		d.byShape = map[ConvShape]*onednn.Conv{}
	}
	c, err := onednn.NewConv(s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad)
	if err != nil {
		slog.Warn("kernels: this convolution uses im2col + GEMM", "shape", s, "err", err)
		c = nil
	}
	d.byShape[s] = c
	return c
}

// ConvBackend names what CPU runs convolutions on.
func ConvBackend() string {
	if err := onednn.Load(); err != nil {
		return "im2col + GEMM (" + err.Error() + ")"
	}
	return onednn.Version()
}
