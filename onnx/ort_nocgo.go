//go:build !cgo

package onnx

import (
	"errors"
	"fmt"
)

// errNoCgo is what every use of onnxruntime returns in a build without cgo.
var errNoCgo = errors.New("onnx: this kediff was built without cgo (CGO_ENABLED=0), so it cannot load onnxruntime; rebuild with CGO_ENABLED=1 to run ONNX models")

// ortSession stands in for the onnxruntime session; it is never set.
type ortSession = *noSession

type noSession struct{}

func (*noSession) Destroy() error { return nil }

func loadLibrary(path string) (string, error) { return "", errNoCgo }

func open(path, name string, opt SessionOptions) (*Session, error) { return nil, errNoCgo }

// Run fails: see errNoCgo.
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) {
	return nil, fmt.Errorf("onnx: model %s: %w", s.name, errNoCgo)
}
