package onnx

import (
	"fmt"
	"strconv"
	"strings"
)

// ShapeError says that a model's tensor does not have the shape (or element
// type) a caller's configuration expects.
type ShapeError struct {
	Model  string  // model file name
	Kind   string  // "input" or "output"
	Tensor string  // tensor name
	Want   []int64 // expected shape; -1 = any size
	Got    []int64 // actual shape; -1 = dynamic
	// WantType and GotType are set when the element type is what differs.
	WantType, GotType string
	// Hint, when set, says what to change (e.g. "try --format yolox").
	Hint string
}

func (e *ShapeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s: %s %q ", e.Model, e.Kind, e.Tensor)
	if e.WantType != "" {
		fmt.Fprintf(&b, "has element type %s, want %s", e.GotType, e.WantType)
	} else {
		fmt.Fprintf(&b, "has shape %s, want %s", FormatShape(e.Got), FormatShape(e.Want))
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// FormatShape writes a shape as [1 3 -1 -1] with "N" for -1: [1 3 N N].
func FormatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			parts[i] = "N"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ShapeMatches reports whether a shape got (from a model, -1 = dynamic, or
// from a run) fits want (-1 = any size): same rank, and each dimension equal
// or unknown on either side.
func ShapeMatches(want, got []int64) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] >= 0 && got[i] >= 0 && want[i] != got[i] {
			return false
		}
	}
	return true
}

// Check compares the model's inputs and outputs with the shapes the caller
// expects, by tensor name; a name of "" matches the model's only (first)
// input or output. Element types must be float32. The first mismatch is
// returned as a *ShapeError; a missing tensor is an error listing the model's
// tensors.
func (s *Session) Check(inputs, outputs map[string][]int64) error {
	if err := s.check("input", s.inputs, inputs); err != nil {
		return err
	}
	return s.check("output", s.outputs, outputs)
}

func (s *Session) check(kind string, have []TensorInfo, want map[string][]int64) error {
	for name, shape := range want {
		var t TensorInfo
		var ok bool
		if name == "" {
			t, ok = have[0], true
		} else {
			t, ok = find(have, name)
		}
		if !ok {
			return fmt.Errorf("onnx: model %s has no %s %q; its %ss are %s", s.name, kind, name, kind, list(have))
		}
		if err := s.CheckTensor(kind, t, shape, "float32"); err != nil {
			return err
		}
	}
	return nil
}

// CheckTensor returns a *ShapeError when t does not match shape (see
// ShapeMatches) or, when typ is not "", the element type typ.
func (s *Session) CheckTensor(kind string, t TensorInfo, shape []int64, typ string) error {
	if typ != "" && t.Type != typ {
		return &ShapeError{Model: s.name, Kind: kind, Tensor: t.Name, Want: shape, Got: t.Shape, WantType: typ, GotType: t.Type}
	}
	if shape != nil && !ShapeMatches(shape, t.Shape) {
		return &ShapeError{Model: s.name, Kind: kind, Tensor: t.Name, Want: shape, Got: t.Shape}
	}
	return nil
}

func list(ts []TensorInfo) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

// Tensor is a named tensor in Go memory. Data is a []float32, []int64,
// []int32, []uint8 or []bool holding the elements in row-major order.
type Tensor struct {
	Name  string
	Shape []int64
	Data  any
}

// Float32 makes a float32 tensor.
func Float32(name string, shape []int64, data []float32) Tensor {
	return Tensor{Name: name, Shape: shape, Data: data}
}

// Int64 makes an int64 tensor.
func Int64(name string, shape []int64, data []int64) Tensor {
	return Tensor{Name: name, Shape: shape, Data: data}
}

// Float32s returns the data of a float32 tensor, or nil.
func (t Tensor) Float32s() []float32 { v, _ := t.Data.([]float32); return v }

// Int64s returns the data of an int64 tensor, or nil.
func (t Tensor) Int64s() []int64 { v, _ := t.Data.([]int64); return v }
