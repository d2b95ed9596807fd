package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSafetensors(t *testing.T) {
	ts := map[string]Tensor{
		"a":      F32([]int{2, 3}, []float32{1, 2, 3, 4, 5, -6}),
		"half":   {DType: "F16", Shape: []int{3}, Data: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}}, // 1, -2, 2^-24
		"scalar": F32(nil, []float32{7}),
		"ids":    {DType: "I32", Shape: []int{2}, Data: []byte{5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
	}
	buf, err := Encode(ts, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	got, meta, err := Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" || len(got) != 4 {
		t.Fatalf("meta %v, %d tensors", meta, len(got))
	}
	if h, _ := got["half"].Float32s(); !slices.Equal(h, []float32{1, -2, 1.0 / (1 << 24)}) {
		t.Errorf("F16 decoded as %v", h)
	}
	if a, _ := got["a"].Float32s(); !slices.Equal(a, []float32{1, 2, 3, 4, 5, -6}) {
		t.Errorf("F32 decoded as %v", a)
	}
	if ids, _ := got["ids"].Ints(); !slices.Equal(ids, []int64{5, -1}) {
		t.Errorf("I32 decoded as %v", ids)
	}
	if hl := binary.LittleEndian.Uint64(buf); hl%8 != 0 || buf[8] != '{' || buf[8+hl-1] != ' ' && buf[8+hl-1] != '}' {
		t.Errorf("header not aligned or not JSON")
	}

	corrupt := map[string][]byte{
		"short":          buf[:5],
		"huge_header":    append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, buf[8:]...),
		"truncated_data": buf[:len(buf)-1],
		"extra_data":     append(slices.Clone(buf), 0),
	}
	for name, b := range corrupt {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	buf, _ := Encode(map[string]Tensor{"a": F32([]int{2}, []float32{1, 2})}, nil)
	f.Add(buf)
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := Decode(b)
		if err != nil {
			return
		}
		for _, v := range ts {
			v.Float32s()
			v.Ints()
		}
	})
}

// TestReadHeader checks that the header-only read sees what Decode sees and
// that ReadAt at DataStart + Begin gives a tensor's bytes.
func TestReadHeader(t *testing.T) {
	ts := map[string]Tensor{
		"a":   F32([]int{2, 2}, []float32{1, 2, 3, 4}),
		"ids": I64([]int{3}, []int64{7, -1, 1 << 40}),
		"m":   Bool([]int{2}, []bool{true, false}),
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, ts, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.Meta["k"] != "v" || len(h.Tensors) != 3 {
		t.Fatalf("header %+v", h)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, want := range ts {
		e := h.Tensors[name]
		got := make([]byte, e.End-e.Begin)
		if _, err := f.ReadAt(got, h.DataStart+int64(e.Begin)); err != nil {
			t.Fatal(err)
		}
		if e.DType != want.DType || !slices.Equal(e.Shape, want.Shape) || !slices.Equal(got, want.Data) {
			t.Errorf("%s: header %+v, bytes %v, want %s %v %v", name, e, got, want.DType, want.Shape, want.Data)
		}
	}
	if ids, _ := ts["ids"].Ints(); !slices.Equal(ids, []int64{7, -1, 1 << 40}) {
		t.Errorf("I64 round trip %v", ids)
	}
	raw, _ := os.ReadFile(path)
	// streaming: every tensor once, in file order, with the file's digest
	sf, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := -1
	err = sf.Each(func(name string, e Entry, data []byte) error {
		if e.Begin <= last || seen[name] || !slices.Equal(data, ts[name].Data) {
			t.Errorf("Each: %s at %d (after %d) with %v", name, e.Begin, last, data)
		}
		seen[name], last = true, e.Begin
		return nil
	})
	sf.Close()
	if err != nil || len(seen) != 3 {
		t.Fatalf("Each: %v, %d tensors", err, len(seen))
	}
	if sum := sha256.Sum256(raw); sf.SHA256() != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 %s, want %x", sf.SHA256(), sum)
	}
	short := filepath.Join(t.TempDir(), "short.safetensors")
	os.WriteFile(short, raw[:len(raw)-1], 0o644)
	if _, err := ReadHeader(short); err == nil {
		t.Error("truncated file: header accepted")
	}
	if _, err := ReadHeader(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing file accepted")
	}
}
