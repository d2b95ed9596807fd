package unet

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kediff/kediff/safetensors"
)

func TestBatchFromTensors(t *testing.T) {
	c := TinyConfig()
	m, err := NewModel(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(2)
	B, L := 2, c.TextCtx
	x := make([]float32, B*4*64)
	for i := range x {
		x[i] = float32(i%17)/8 - 1
	}
	i64 := func(v ...int64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
		}
		return b
	}
	toks := make([]int64, B*L)
	maskB := make([]byte, B*L)
	for i := range toks {
		toks[i] = int64(i % 20)
		if i%L < 5 {
			maskB[i] = 1
		}
	}
	in := map[string]safetensors.Tensor{
		"x":         safetensors.F32([]int{B, 4, 8, 8}, x),
		"timesteps": {DType: "I64", Shape: []int{B}, Data: i64(10, 900)},
		"tokens":    {DType: "I64", Shape: []int{B, L}, Data: i64(toks...)},
		"mask":      {DType: "BOOL", Shape: []int{B, L}, Data: maskB},
		"keyword":   {DType: "BOOL", Shape: []int{B, L}, Data: maskB},
		"w_a":       safetensors.F32([]int{B}, []float32{0.01, 0}),
	}
	b, err := BatchFromTensors(in, c)
	if err != nil {
		t.Fatal(err)
	}
	if b.Timesteps[1] != 900 || b.Tokens[3] != 3 || !b.Mask[4] || b.Mask[5] || b.WA[0] != 0.01 || !b.Keyword[0] {
		t.Fatalf("decoded %+v", b)
	}
	if _, err := m.Forward(b); err != nil {
		t.Fatal(err)
	}
	delete(in, "mask")
	if _, err := BatchFromTensors(in, c); err == nil || !strings.Contains(err.Error(), "mask") {
		t.Errorf("missing mask: %v", err)
	}
}
