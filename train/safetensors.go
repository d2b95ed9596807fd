package train

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
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

// Float32s decodes a floating-point tensor (F32, F16, BF16 or F64) to float32.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Numel()
	out := make([]float32, n)
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
		return nil, fmt.Errorf("dtype %s is not a float type", t.DType)
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

// EncodeSafetensors serialises tensors in the safetensors format: an 8-byte
// little-endian header length, a JSON header mapping each name to its dtype,
// shape and [begin, end) byte offsets (plus "__metadata__" when meta is
// non-empty), padded with spaces to a multiple of 8, then the data, tensors in
// name order.
func EncodeSafetensors(tensors map[string]Tensor, meta map[string]string) ([]byte, error) {
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

// DecodeSafetensors parses a safetensors file held in memory. It checks that
// the header is well-formed, every tensor's byte range matches its dtype and
// shape, and the ranges tile the data section exactly, as the reference
// implementation does. Tensor data aliases buf.
func DecodeSafetensors(buf []byte) (map[string]Tensor, map[string]string, error) {
	if len(buf) < 8 {
		return nil, nil, fmt.Errorf("safetensors: file of %d bytes has no header length", len(buf))
	}
	hl := binary.LittleEndian.Uint64(buf)
	if hl > maxHeader || hl > uint64(len(buf)-8) {
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds file size %d or limit %d", hl, len(buf), maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(buf[8:8+hl], &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	data := buf[8+hl:]
	var meta map[string]string
	tensors := make(map[string]Tensor, len(raw))
	type span struct {
		name   string
		lo, hi int
	}
	spans := make([]span, 0, len(raw))
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", name, e.DType)
		}
		n := 1
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt32/d) {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: bad shape %v", name, e.Shape)
			}
			n *= d
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > len(data) || hi-lo != n*size {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets %v do not hold %s %v in %d data bytes", name, e.Offsets, e.DType, e.Shape, len(data))
		}
		tensors[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[lo:hi:hi]}
		spans = append(spans, span{name, lo, hi})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
	end := 0
	for _, s := range spans {
		if s.lo != end {
			return nil, nil, fmt.Errorf("safetensors: tensor %q starts at byte %d, want %d (overlap or gap)", s.name, s.lo, end)
		}
		end = s.hi
	}
	if end != len(data) {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d of %d data bytes", end, len(data))
	}
	return tensors, meta, nil
}

// WriteSafetensors writes tensors to path (see EncodeSafetensors).
func WriteSafetensors(path string, tensors map[string]Tensor, meta map[string]string) error {
	b, err := EncodeSafetensors(tensors, meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// ReadSafetensors reads and decodes a safetensors file.
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	t, m, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return t, m, nil
}
