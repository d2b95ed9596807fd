package onnx

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	s       ortSession // nil once closed
}

// Open loads the ONNX model at path. It initialises onnxruntime first (see
// Init). Errors name the model and say what to do: a file that is missing,
// empty or not an ONNX model, a model whose external data lies outside its
// folder (refused before onnxruntime reads anything), a library without the
// CUDA provider, or a model with a non-tensor input or output.
func Open(path string, opt SessionOptions) (*Session, error) {
	name := filepath.Base(path)
	if err := sniff(path); err != nil {
		return nil, err
	}
	if err := checkExternalData(path); err != nil {
		return nil, err
	}
	if err := Init(opt.Library); err != nil {
		return nil, err
	}
	return open(path, name, opt)
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

// FileSHA256 returns the hex SHA-256 of a model file: the identity kediff
// records for the models a run used (shard metadata, cached statistics).
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
