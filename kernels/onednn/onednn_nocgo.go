//go:build !cgo

package onednn

import "errors"

var errNoCgo = errors.New("onednn: this build has no cgo (CGO_ENABLED=0)")

func Load() error     { return errNoCgo }
func Version() string { return errNoCgo.Error() }

type Conv struct{}

func NewConv(B, Ch, H, W, OC, K, stride, pad int) (*Conv, error) { return nil, errNoCgo }
func (c *Conv) Impl() string                                     { return "" }
func (c *Conv) Close()                                           {}
func (c *Conv) Forward(out, inp, weight, bias []float32) error   { return errNoCgo }
func (c *Conv) Backward(dinp, dweight, dbias, dout, inp, weight []float32) error {
	return errNoCgo
}
