package safetensors

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"sort"
)

// Tensor is one entry of a safetensors file: its dtype name as the format
// spells it ("F32", "F16", "BF16", "I32", "I64", "U8", "BOOL", ...), its
// shape, and its raw little-endian bytes.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

// Numel is the element count of the shape (1 for a scalar).
func (t Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// F32 makes an F32 tensor from values (copied).
func F32(shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: append([]int(nil), shape...), Data: b}
}

// F64 makes an F64 tensor from values (copied).
func F64(shape []int, v []float64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return Tensor{DType: "F64", Shape: append([]int(nil), shape...), Data: b}
}

// I64 makes an I64 tensor (PyTorch's int64, e.g. token ids) from values.
func I64(shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{DType: "I64", Shape: append([]int(nil), shape...), Data: b}
}

// Bool makes a BOOL tensor (one byte per value, 0 or 1) from values.
func Bool(shape []int, v []bool) Tensor {
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return Tensor{DType: "BOOL", Shape: append([]int(nil), shape...), Data: b}
}

// Float32s decodes a floating-point tensor (F32, F16, BF16 or F64) to float32.
func (t Tensor) Float32s() ([]float32, error) {
	out := make([]float32, t.Numel())
	return out, t.DecodeFloat32(out)
}

// DecodeFloat32 is Float32s into dst, which must hold Numel values.
func (t Tensor) DecodeFloat32(out []float32) error {
	if len(out) != t.Numel() {
		return fmt.Errorf("%d values for a %v tensor", len(out), t.Shape)
	}
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s is not a float type", t.DType)
	}
	return nil
}

// Float64s decodes a floating-point tensor to float64 (exactly).
func (t Tensor) Float64s() ([]float64, error) {
	if t.DType == "F64" {
		out := make([]float64, t.Numel())
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// Ints decodes an integer or boolean tensor (I64, I32, I16, I8, U8, BOOL).
func (t Tensor) Ints() ([]int64, error) {
	n := t.Numel()
	out := make([]int64, n)
	for i := range out {
		switch t.DType {
		case "I64":
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		case "I32":
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		case "I16":
			out[i] = int64(int16(binary.LittleEndian.Uint16(t.Data[2*i:])))
		case "I8":
			out[i] = int64(int8(t.Data[i]))
		case "U8", "BOOL":
			out[i] = int64(t.Data[i])
		default:
			return nil, fmt.Errorf("dtype %s is not an integer type", t.DType)
		}
	}
	return out, nil
}

// halfToFloat converts IEEE 754 binary16 bits to float32 (exactly).
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value man * 2^-24
		f := float32(man) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

type stEntry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// maxHeader bounds the JSON header (the reference implementation uses 100 MB).
const maxHeader = 100 << 20

// Encode serialises tensors in the safetensors format: an 8-byte
// little-endian header length, a JSON header mapping each name to its dtype,
// shape and [begin, end) byte offsets (plus "__metadata__" when meta is
// non-empty), padded with spaces to a multiple of 8, then the data, tensors in
// name order.
func Encode(tensors map[string]Tensor, meta map[string]string) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	header := make(map[string]any, len(names)+1)
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	off := 0
	for _, name := range names {
		t := tensors[name]
		size, ok := dtypeSize[t.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, t.DType)
		}
		if len(t.Data) != size*t.Numel() {
			return nil, fmt.Errorf("safetensors: tensor %q: %d bytes for %s shape %v (want %d)", name, len(t.Data), t.DType, t.Shape, size*t.Numel())
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[name] = stEntry{DType: t.DType, Shape: shape, Offsets: [2]int{off, off + len(t.Data)}}
		off += len(t.Data)
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	out := make([]byte, 8, 8+len(hj)+off)
	binary.LittleEndian.PutUint64(out, uint64(len(hj)))
	out = append(out, hj...)
	for _, name := range names {
		out = append(out, tensors[name].Data...)
	}
	return out, nil
}

// Entry is one tensor of a file's header: dtype, shape and the [Begin, End)
// byte range of its data, counted from the start of the data section.
type Entry struct {
	DType      string
	Shape      []int
	Begin, End int
}

// Header is a parsed safetensors header.
type Header struct {
	Tensors map[string]Entry
	Meta    map[string]string
	// DataStart is the file offset of the data section (8 + header length).
	DataStart int64
}

// parseHeader decodes the JSON header of a file whose data section holds
// dataLen bytes, with the checks Decode documents.
func parseHeader(hj []byte, dataLen int) (Header, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return Header{}, fmt.Errorf("safetensors: header: %w", err)
	}
	h := Header{Tensors: make(map[string]Entry, len(raw)), DataStart: int64(8 + len(hj))}
	type span struct {
		name   string
		lo, hi int
	}
	spans := make([]span, 0, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &h.Meta); err != nil {
				return Header{}, fmt.Errorf("safetensors: __metadata__: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return Header{}, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return Header{}, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", name, e.DType)
		}
		n := 1
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt32/d) {
				return Header{}, fmt.Errorf("safetensors: tensor %q: bad shape %v", name, e.Shape)
			}
			n *= d
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > dataLen || hi-lo != n*size {
			return Header{}, fmt.Errorf("safetensors: tensor %q: data_offsets %v do not hold %s %v in %d data bytes", name, e.Offsets, e.DType, e.Shape, dataLen)
		}
		h.Tensors[name] = Entry{DType: e.DType, Shape: e.Shape, Begin: lo, End: hi}
		spans = append(spans, span{name, lo, hi})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	end := 0
	for _, s := range spans {
		if s.lo != end {
			return Header{}, fmt.Errorf("safetensors: tensor %q starts at byte %d, want %d (overlap or gap)", s.name, s.lo, end)
		}
		end = s.hi
	}
	if end != dataLen {
		return Header{}, fmt.Errorf("safetensors: tensors cover %d of %d data bytes", end, dataLen)
	}
	return h, nil
}

// headerLength reads the 8-byte header length of a file of size bytes.
func headerLength(first8 []byte, size int64) (int, error) {
	if len(first8) < 8 {
		return 0, fmt.Errorf("safetensors: file of %d bytes has no header length", size)
	}
	hl := binary.LittleEndian.Uint64(first8)
	if hl > maxHeader || hl > uint64(size-8) {
		return 0, fmt.Errorf("safetensors: header length %d exceeds file size %d or limit %d", hl, size, maxHeader)
	}
	return int(hl), nil
}

// Decode parses a safetensors file held in memory. It checks that the
// header is well-formed, every tensor's byte range matches its dtype and
// shape, and the ranges tile the data section exactly, as the reference
// implementation does. Tensor data aliases buf.
func Decode(buf []byte) (map[string]Tensor, map[string]string, error) {
	hl, err := headerLength(buf, int64(len(buf)))
	if err != nil {
		return nil, nil, err
	}
	data := buf[8+hl:]
	h, err := parseHeader(buf[8:8+hl], len(data))
	if err != nil {
		return nil, nil, err
	}
	tensors := make(map[string]Tensor, len(h.Tensors))
	for name, e := range h.Tensors {
		tensors[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[e.Begin:e.End:e.End]}
	}
	return tensors, h.Meta, nil
}

// File is a safetensors file opened for streaming: Open reads and checks the
// header, Each then reads the tensors in file order, one at a time, and
// SHA256 is the digest of every byte read, so a caller loads weights with
// memory for one tensor and hashes the file in the same pass.
type File struct {
	Header
	f    *os.File
	r    *bufio.Reader
	hash hash.Hash
	path string
}

// Open opens path and reads its header (checked as Decode checks it).
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	sf := &File{f: f, hash: sha256.New(), path: path}
	sf.r = bufio.NewReaderSize(io.TeeReader(f, sf.hash), 1<<20)
	var first [8]byte
	n, _ := io.ReadFull(sf.r, first[:])
	hl, err := headerLength(first[:n], st.Size())
	if err == nil {
		hj := make([]byte, hl)
		if _, err = io.ReadFull(sf.r, hj); err == nil {
			sf.Header, err = parseHeader(hj, int(st.Size()-8-int64(hl)))
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return sf, nil
}

// Each reads every tensor's data in file order and calls fn with it; data
// is valid only during the call. It reads the whole file, so SHA256 is final
// afterwards.
func (f *File) Each(fn func(name string, e Entry, data []byte) error) error {
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Tensors {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return f.Tensors[names[i]].Begin < f.Tensors[names[j]].Begin })
	var buf []byte
	for _, name := range names {
		e := f.Tensors[name]
		if cap(buf) < e.End-e.Begin {
			buf = make([]byte, e.End-e.Begin)
		}
		buf = buf[:e.End-e.Begin]
		if _, err := io.ReadFull(f.r, buf); err != nil {
			return fmt.Errorf("safetensors: %s: tensor %s: %w", f.path, name, err)
		}
		if err := fn(name, e, buf); err != nil {
			return err
		}
	}
	return nil
}

// SHA256 is the hex SHA-256 of the bytes read so far (of the whole file
// after Each).
func (f *File) SHA256() string { return hex.EncodeToString(f.hash.Sum(nil)) }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadHeader parses only the header of the file at path (checked as Decode
// checks it), so that single tensors can be read with ReadAt at
// DataStart + Begin without reading the whole file.
func ReadHeader(path string) (Header, error) {
	f, err := Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return f.Header, nil
}

// WriteFile writes tensors to path (see Encode).
func WriteFile(path string, tensors map[string]Tensor, meta map[string]string) error {
	b, err := Encode(tensors, meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// ReadFile reads and decodes a safetensors file.
func ReadFile(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	t, m, err := Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return t, m, nil
}
