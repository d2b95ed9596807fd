//go:build cgo

package onnx

import (
	"fmt"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// ortSession is the onnxruntime session behind a Session.
type ortSession = *ort.DynamicAdvancedSession

// loadLibrary loads the onnxruntime shared library at path and creates the
// environment; it returns the runtime's version.
func loadLibrary(path string) (string, error) {
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", err
	}
	return ort.GetVersion(), nil
}

// open creates the session of Open once the file passed sniff and the
// library is loaded.
func open(path, name string, opt SessionOptions) (*Session, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: session options: %v", name, err)
	}
	defer so.Destroy()
	if opt.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opt.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("onnx: model %s: intra-op threads %d: %v", name, opt.IntraOpThreads, err)
		}
	}
	if opt.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opt.InterOpThreads); err != nil {
			return nil, fmt.Errorf("onnx: model %s: inter-op threads %d: %v", name, opt.InterOpThreads, err)
		}
	}
	if opt.UseCUDA {
		if err := appendCUDA(so, opt.CUDADevice); err != nil {
			lib, _ := Loaded()
			return nil, fmt.Errorf("onnx: model %s: CUDA execution provider unavailable in %s: %v (use a GPU build of onnxruntime via --onnxruntime or %s, or run on the CPU)", name, lib, err, EnvLibrary)
		}
	}

	// A first, single-threaded CPU session reads the inputs and outputs; the
	// real session needs their names.
	info, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: session options: %v", name, err)
	}
	defer info.Destroy()
	_ = info.SetIntraOpNumThreads(1)
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, info)
	if err != nil {
		if strings.Contains(err.Error(), "Protobuf parsing failed") {
			return nil, fmt.Errorf("onnx: model %s is not a valid ONNX file (protobuf parsing failed: truncated, or not an ONNX export); re-download or re-export it", path)
		}
		return nil, fmt.Errorf("onnx: model %s: onnxruntime cannot load it: %v", path, err)
	}
	s := &Session{path: path, name: name, cuda: opt.UseCUDA}
	var inNames, outNames []string
	for _, in := range ins {
		ti, err := tensorInfo(name, "input", in)
		if err != nil {
			return nil, err
		}
		s.inputs = append(s.inputs, ti)
		inNames = append(inNames, in.Name)
	}
	for _, out := range outs {
		ti, err := tensorInfo(name, "output", out)
		if err != nil {
			return nil, err
		}
		s.outputs = append(s.outputs, ti)
		outNames = append(outNames, out.Name)
	}
	if len(inNames) == 0 || len(outNames) == 0 {
		return nil, fmt.Errorf("onnx: model %s has %d inputs and %d outputs; want at least one of each", name, len(inNames), len(outNames))
	}
	s.s, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("onnx: model %s: cannot create session: %v", name, err)
	}
	return s, nil
}

func appendCUDA(so *ort.SessionOptions, device int) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": strconv.Itoa(device)}); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(co)
}

func tensorInfo(model, kind string, io ort.InputOutputInfo) (TensorInfo, error) {
	if io.OrtValueType != ort.ONNXTypeTensor {
		return TensorInfo{}, fmt.Errorf("onnx: model %s: %s %q is a %s, not a tensor; kediff runs tensor-only models", model, kind, io.Name, io.OrtValueType)
	}
	shape := make([]int64, len(io.Dimensions))
	for i, d := range io.Dimensions {
		if d <= 0 {
			d = -1
		}
		shape[i] = d
	}
	return TensorInfo{Name: io.Name, Type: typeName(io.DataType), Shape: shape}, nil
}

func typeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeBFloat16:
		return "bfloat16"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeInt16:
		return "int16"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeBool:
		return "bool"
	case ort.TensorElementDataTypeString:
		return "string"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
}

// Run runs the model on inputs given in the order of Inputs() (a Name, when
// set, must match). Each input's shape must fit the model's (dynamic
// dimensions take any size) and its Data must hold exactly the shape's
// element count. It returns every output, in the order of Outputs(), copied
// into Go memory. The input slices are read, not kept.
func (s *Session) Run(inputs ...Tensor) ([]Tensor, error) {
	if s.s == nil {
		return nil, fmt.Errorf("onnx: model %s: session is closed", s.name)
	}
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("onnx: model %s takes %d inputs (%s), got %d", s.name, len(s.inputs), list(s.inputs), len(inputs))
	}
	values := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range values {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, in := range inputs {
		want := s.inputs[i]
		if in.Name != "" && in.Name != want.Name {
			return nil, fmt.Errorf("onnx: model %s: input %d is %q, got %q", s.name, i, want.Name, in.Name)
		}
		if !ShapeMatches(want.Shape, in.Shape) {
			return nil, &ShapeError{Model: s.name, Kind: "input", Tensor: want.Name, Want: want.Shape, Got: in.Shape}
		}
		v, err := newValue(in)
		if err != nil {
			return nil, fmt.Errorf("onnx: model %s: input %q: %v", s.name, want.Name, err)
		}
		if got := typeName(ort.TensorElementDataType(v.DataType())); got != want.Type {
			v.Destroy()
			return nil, &ShapeError{Model: s.name, Kind: "input", Tensor: want.Name, Want: want.Shape, Got: in.Shape, WantType: want.Type, GotType: got}
		}
		values[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(values, outs); err != nil {
		return nil, fmt.Errorf("onnx: model %s: run: %v", s.name, err)
	}
	result := make([]Tensor, len(outs))
	for i, o := range outs {
		result[i] = Tensor{Name: s.outputs[i].Name, Shape: []int64(o.GetShape().Clone())}
		switch t := o.(type) {
		case *ort.Tensor[float32]:
			result[i].Data = t.GetData()
		case *ort.Tensor[int64]:
			result[i].Data = t.GetData()
		case *ort.Tensor[int32]:
			result[i].Data = t.GetData()
		case *ort.Tensor[uint8]:
			result[i].Data = t.GetData()
		case *ort.Tensor[bool]:
			result[i].Data = t.GetData()
		case *ort.Tensor[float64]:
			result[i].Data = t.GetData()
		default:
			result[i].Data = nil
		}
		// The data above is Go memory (onnxruntime_go copies outputs);
		// Destroy only releases the OrtValue.
		o.Destroy()
	}
	return result, nil
}

// newTensor wraps d as a tensor of the given shape after checking that
// the shape holds exactly len(d) elements.
func newTensor[T ort.TensorData](dims []int64, d []T) (ort.Value, error) {
	shape := ort.NewShape(dims...)
	if n := shape.FlattenedSize(); int64(len(d)) != n {
		return nil, fmt.Errorf("shape %s holds %d elements, data has %d", FormatShape(dims), n, len(d))
	}
	return ort.NewTensor(shape, d)
}

func newValue(t Tensor) (ort.Value, error) {
	switch d := t.Data.(type) {
	case []float32:
		return newTensor(t.Shape, d)
	case []int64:
		return newTensor(t.Shape, d)
	case []int32:
		return newTensor(t.Shape, d)
	case []uint8:
		return newTensor(t.Shape, d)
	case []bool:
		return newTensor(t.Shape, d)
	}
	return nil, fmt.Errorf("unsupported data type %T (use []float32, []int64, []int32, []uint8 or []bool)", t.Data)
}
