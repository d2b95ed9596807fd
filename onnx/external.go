package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// An ONNX model may keep tensor data in other files: a TensorProto with
// data_location EXTERNAL names them in its external_data entries ("location",
// relative to the model's folder). onnxruntime opens whatever a location
// names, so a hostile model could make it read /etc/passwd or ../../secret.
// checkExternalData walks the model's protobuf (without loading it: tensor
// bytes are skipped, memory stays at a small read window) and refuses any
// location that is absolute, climbs out of the model's folder, or resolves
// (through symbolic links) outside it, before onnxruntime sees the file.

// Field numbers of onnx.proto used by the walk.
const (
	modelGraph        = 7  // ModelProto.graph
	modelTrainingInfo = 20 // ModelProto.training_info
	modelFunctions    = 25 // ModelProto.functions
	trainInit         = 1  // TrainingInfoProto.initialization
	trainAlgorithm    = 2  // TrainingInfoProto.algorithm
	graphNode         = 1  // GraphProto.node
	graphInitializer  = 5  // GraphProto.initializer
	graphSparseInit   = 15 // GraphProto.sparse_initializer
	nodeAttribute     = 5  // NodeProto.attribute
	funcNode          = 7  // FunctionProto.node
	attrT             = 5  // AttributeProto.t
	attrG             = 6  // AttributeProto.g
	attrTensors       = 10 // AttributeProto.tensors
	attrGraphs        = 11 // AttributeProto.graphs
	attrSparseTensor  = 22 // AttributeProto.sparse_tensor
	attrSparseTensors = 23 // AttributeProto.sparse_tensors
	sparseValues      = 1  // SparseTensorProto.values
	sparseIndices     = 2  // SparseTensorProto.indices
	tensorName        = 8  // TensorProto.name
	tensorExternal    = 13 // TensorProto.external_data
	entryKey          = 1  // StringStringEntryProto.key
	entryValue        = 2  // StringStringEntryProto.value
)

type msgKind int

const (
	kModel msgKind = iota
	kTrainingInfo
	kGraph
	kNode
	kFunction
	kAttribute
	kSparse
	kTensor
	kEntry
)

// children maps a message kind's fields to the kinds of message they hold.
var children = map[msgKind]map[protowire.Number]msgKind{
	kModel:        {modelGraph: kGraph, modelTrainingInfo: kTrainingInfo, modelFunctions: kFunction},
	kTrainingInfo: {trainInit: kGraph, trainAlgorithm: kGraph},
	kGraph:        {graphNode: kNode, graphInitializer: kTensor, graphSparseInit: kSparse},
	kNode:         {nodeAttribute: kAttribute},
	kFunction:     {funcNode: kNode},
	kAttribute: {attrT: kTensor, attrG: kGraph, attrTensors: kTensor, attrGraphs: kGraph,
		attrSparseTensor: kSparse, attrSparseTensors: kSparse},
	kSparse: {sparseValues: kTensor, sparseIndices: kTensor},
}

// maxDepth bounds message nesting (graphs in node attributes in graphs ...).
const maxDepth = 64

// maxString bounds the strings the walk reads (tensor names, locations).
const maxString = 64 << 10

// checkExternalData checks the model file at path (see above).
func checkExternalData(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("onnx: model %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("onnx: model %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("onnx: model %s: %w", path, err)
	}
	if err := checkExternalDataIn(f, st.Size(), dir); err != nil {
		return fmt.Errorf("onnx: model %s: %w", filepath.Base(path), err)
	}
	return nil
}

// checkExternalDataIn walks the size bytes of a ModelProto in r, whose
// external data would be looked up in dir.
func checkExternalDataIn(r io.ReaderAt, size int64, dir string) error {
	w := &walker{r: &window{r: r, size: size}, dir: dir}
	return w.message(kModel, 0, size, 0)
}

type walker struct {
	r   *window
	dir string
}

var errCorrupt = errors.New("not a valid ONNX file (protobuf parsing failed: truncated, or not an ONNX export); re-download or re-export it")

// message walks the fields of one message of kind k held in [off, end).
func (w *walker) message(k msgKind, off, end int64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("messages nested more than %d deep; not a model kediff loads", maxDepth)
	}
	var name, location string
	external := false
	for off < end {
		num, typ, n, err := w.r.tag(off, end)
		if err != nil {
			return err
		}
		off += int64(n)
		switch typ {
		case protowire.VarintType:
			_, n, err := w.r.varint(off, end)
			if err != nil {
				return err
			}
			off += int64(n)
		case protowire.Fixed32Type:
			off += 4
		case protowire.Fixed64Type:
			off += 8
		case protowire.BytesType:
			l, n, err := w.r.varint(off, end)
			if err != nil {
				return err
			}
			off += int64(n)
			if l > uint64(end-off) {
				return errCorrupt
			}
			lo, hi := off, off+int64(l)
			off = hi
			if ck, ok := children[k][num]; ok {
				if err := w.message(ck, lo, hi, depth+1); err != nil {
					return err
				}
				continue
			}
			switch {
			case k == kTensor && num == tensorName:
				if name, err = w.r.str(lo, hi); err != nil {
					return err
				}
			case k == kTensor && num == tensorExternal:
				external = true
				key, val, err := w.entry(lo, hi)
				if err != nil {
					return err
				}
				if key == "location" {
					location = val
				}
			}
		case protowire.StartGroupType, protowire.EndGroupType:
			// ONNX uses no groups; a protobuf parser would skip them, but
			// nothing valid has them: refuse rather than guess.
			return errCorrupt
		default:
			return errCorrupt
		}
		if off > end {
			return errCorrupt
		}
	}
	if external {
		return w.checkLocation(name, location)
	}
	return nil
}

// entry reads a StringStringEntryProto.
func (w *walker) entry(off, end int64) (key, val string, err error) {
	for off < end {
		num, typ, n, err := w.r.tag(off, end)
		if err != nil {
			return "", "", err
		}
		off += int64(n)
		if typ != protowire.BytesType {
			return "", "", errCorrupt
		}
		l, n, err := w.r.varint(off, end)
		if err != nil {
			return "", "", err
		}
		off += int64(n)
		if l > uint64(end-off) {
			return "", "", errCorrupt
		}
		s, err := w.r.str(off, off+int64(l))
		if err != nil {
			return "", "", err
		}
		off += int64(l)
		switch num {
		case entryKey:
			key = s
		case entryValue:
			val = s
		}
	}
	return key, val, nil
}

// checkLocation refuses an external-data location outside the model's
// folder.
func (w *walker) checkLocation(tensor, loc string) error {
	what := fmt.Sprintf("tensor %q keeps its data in external file %q", tensor, loc)
	switch {
	case loc == "":
		return fmt.Errorf("tensor %q has external data without a location; re-export the model", tensor)
	case strings.ContainsRune(loc, 0):
		return fmt.Errorf("%s, which holds a NUL byte; refusing the model", what)
	case filepath.IsAbs(loc) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, `\`) || filepath.VolumeName(loc) != "":
		return fmt.Errorf("%s, an absolute path; external data must lie in the model's folder (refusing to read it)", what)
	case !filepath.IsLocal(filepath.FromSlash(loc)) || !filepath.IsLocal(strings.ReplaceAll(loc, `\`, "/")):
		return fmt.Errorf("%s, outside the model's folder; external data must lie in the model's folder (refusing to read it)", what)
	}
	// A symbolic link in the folder may still point out of it.
	p := filepath.Join(w.dir, filepath.FromSlash(loc))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil // missing: onnxruntime says so, naming the file
	}
	base, err := filepath.EvalSymlinks(w.dir)
	if err != nil {
		return nil
	}
	if rel, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("%s, a link to %s outside the model's folder (refusing to read it)", what, real)
	}
	return nil
}

// window reads a file through one small cached window, so that the walk
// costs O(window) memory however large the model.
type window struct {
	r    io.ReaderAt
	size int64
	off  int64
	buf  []byte
}

const windowSize = 64 << 10

// at returns at least min(n, size-off) bytes at off (fewer at the end of the
// file).
func (w *window) at(off int64, n int) ([]byte, error) {
	if off < w.off || off+int64(n) > w.off+int64(len(w.buf)) {
		if w.buf == nil {
			w.buf = make([]byte, 0, windowSize)
		}
		m := min(int64(windowSize), w.size-off)
		if m <= 0 {
			return nil, errCorrupt
		}
		b := w.buf[:m]
		k, err := w.r.ReadAt(b, off)
		if k < len(b) {
			if err == nil || err == io.EOF {
				err = errCorrupt
			}
			return nil, err
		}
		w.off, w.buf = off, b
	}
	return w.buf[off-w.off : min(off-w.off+int64(n), int64(len(w.buf)))], nil
}

func (w *window) varint(off, end int64) (uint64, int, error) {
	b, err := w.at(off, min(binaryMaxVarint, int(end-off)))
	if err != nil {
		return 0, 0, err
	}
	if int64(len(b)) > end-off {
		b = b[:end-off]
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, errCorrupt
	}
	return v, n, nil
}

const binaryMaxVarint = 10

func (w *window) tag(off, end int64) (protowire.Number, protowire.Type, int, error) {
	v, n, err := w.varint(off, end)
	if err != nil {
		return 0, 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num <= 0 || num > protowire.MaxValidNumber {
		return 0, 0, 0, errCorrupt
	}
	return num, typ, n, nil
}

func (w *window) str(off, end int64) (string, error) {
	if end-off > maxString {
		return "", fmt.Errorf("a string of %d bytes in a tensor's name or external data entry (limit %d); not a model kediff loads", end-off, maxString)
	}
	b := make([]byte, end-off)
	if len(b) == 0 {
		return "", nil
	}
	if k, err := w.r.ReadAt(b, off); k < len(b) {
		if err == nil || err == io.EOF {
			err = errCorrupt
		}
		return "", err
	}
	return string(b), nil
}
