package onnx

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// SessionOptions configures Open. The zero value runs on the CPU with
// onnxruntime's default threading.
type SessionOptions struct {
	// Library is an explicit onnxruntime shared library (a --onnxruntime flag
	// value); "" resolves it with LibraryPath.
	Library string
	// IntraOpThreads is the thread count one Run may use; 0 leaves
	// onnxruntime's default (one per physical core).
	IntraOpThreads int
	// InterOpThreads bounds parallelism across graph nodes; 0 = default.
	InterOpThreads int
	// UseCUDA appends the CUDA execution provider on device CUDADevice. Open
	// fails with a clear error when the loaded library has no CUDA support.
	UseCUDA    bool
	CUDADevice int
}

// TensorInfo describes one model input or output. Shape holds -1 for a
// dynamic (named or unknown) dimension.
type TensorInfo struct {
	Name  string
	Type  string // element type: "float32", "int64", "float16", ...
	Shape []int64
}

func (t TensorInfo) String() string {
	return fmt.Sprintf("%q %s %s", t.Name, t.Type, FormatShape(t.Shape))
}

// Session is one loaded model. It is safe for concurrent use by several
// goroutines (see the package doc); Close must not overlap a Run.
type Session struct {
	path    string
	name    string
	inputs  []TensorInfo
	outputs []TensorInfo
	cuda    bool
	s       *ort.DynamicAdvancedSession
}

// Open loads the ONNX model at path. It initialises onnxruntime first (see
// Init). Errors name the model and say what to do: a file that is missing,
// empty or not an ONNX model, a library without the CUDA provider, or a model
// with a non-tensor input or output.
func Open(path string, opt SessionOptions) (*Session, error) {
	name := filepath.Base(path)
	if err := sniff(path); err != nil {
		return nil, err
	}
	if err := Init(opt.Library); err != nil {
		return nil, err
	}
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

// sniff rejects files that cannot be ONNX before onnxruntime sees them, so
// the message is plain: missing, a folder, empty, or text/an image/an archive.
func sniff(path string) error {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("onnx: model %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("onnx: model %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("onnx: model %s is a folder; give the .onnx file inside it", path)
	}
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if n == 0 {
		return fmt.Errorf("onnx: model %s is empty; re-export it", name)
	}
	// An ONNX ModelProto starts with a protobuf field tag; field 1
	// (ir_version, varint) is 0x08, but exporters may order fields
	// differently, so only reject what is clearly something else.
	for _, m := range []struct {
		magic []byte
		what  string
	}{
		{[]byte("\x89PNG"), "a PNG image"},
		{[]byte("\xff\xd8\xff"), "a JPEG image"},
		{[]byte("PK\x03\x04"), "a zip archive (a PyTorch checkpoint?)"},
		{[]byte("\x1f\x8b"), "a gzip file"},
		{[]byte("\x80\x02"), "a Python pickle (a PyTorch checkpoint?)"},
		{[]byte("version https://git-lfs"), "a Git LFS pointer (run git lfs pull)"},
		{[]byte("<"), "an HTML or XML page"},
		{[]byte("{"), "a JSON file"},
	} {
		if bytes.HasPrefix(head, m.magic) {
			return fmt.Errorf("onnx: model %s is not an ONNX file: it looks like %s", name, m.what)
		}
	}
	if head[0] == 0 || head[0]&0x7 > 5 {
		return fmt.Errorf("onnx: model %s is not an ONNX file (first byte %#02x is no protobuf field); re-export it with torch.onnx.export or the model's exporter", name, head[0])
	}
	return nil
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

// Name is the model's file name, as messages use it.
func (s *Session) Name() string { return s.name }

// Path is the model file Open loaded.
func (s *Session) Path() string { return s.path }

// CUDA reports whether the session was opened with the CUDA provider.
func (s *Session) CUDA() bool { return s.cuda }

// Inputs returns the model's inputs in order. The slice must not be changed.
func (s *Session) Inputs() []TensorInfo { return s.inputs }

// Outputs returns the model's outputs in order. The slice must not be changed.
func (s *Session) Outputs() []TensorInfo { return s.outputs }

// Input returns the input named name.
func (s *Session) Input(name string) (TensorInfo, bool) { return find(s.inputs, name) }

// Output returns the output named name.
func (s *Session) Output(name string) (TensorInfo, bool) { return find(s.outputs, name) }

func find(ts []TensorInfo, name string) (TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// Close releases the session. It must not overlap a Run.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}
