package dist

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

// bf16Cases are float32 bit patterns where rounding to bfloat16 can go
// wrong: ties either side of even, one ulp off a tie, subnormals, zeros,
// infinities, the largest floats (which round to infinity), NaNs quiet
// and signaling, and pseudo-random patterns over every exponent.
func bf16Cases() []uint32 {
	var c []uint32
	for _, sign := range []uint32{0, 0x80000000} {
		for _, hi := range []uint32{0x0000, 0x0001, 0x0002, 0x007f, 0x0080, 0x0081, 0x3f80, 0x3f81, 0x3fff, 0x4000, 0x7f7e, 0x7f7f, 0x7f80} {
			for _, lo := range []uint32{0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff} {
				c = append(c, sign|hi<<16|lo)
			}
		}
		c = append(c, sign|0x7f800000, sign|0x7fc00000, sign|0x7f800001, sign|0x7fbfffff, sign|0x7fffffff, sign|0x7f7fffff,
			sign|0x00000001, sign|0x007fffff, sign|0x00800000)
	}
	x := uint32(2463534242) // xorshift32: the same patterns every run
	for range 4000 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		c = append(c, x)
	}
	return c
}

// TestFloat32ToBF16MatchesPyTorch compares Float32ToBF16 with
// torch.Tensor.to(torch.bfloat16) on the CPU bit for bit, except that NaN
// need only stay NaN.
func TestFloat32ToBF16MatchesPyTorch(t *testing.T) {
	py := pyref.Torch(t)
	bits := bf16Cases()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "f32.bin"), filepath.Join(dir, "bf16.bin")
	b := make([]byte, 4*len(bits))
	for i, v := range bits {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The bits go through numpy views, never Python floats, so signaling
	// NaNs and subnormals arrive as they are.
	code := `import sys, numpy as np, torch
x = torch.from_numpy(np.fromfile(sys.argv[1], dtype="<u4").view(np.float32))
x.to(torch.bfloat16).view(torch.int16).numpy().astype("<u2").tofile(sys.argv[2])`
	if msg, err := exec.Command(py, "-c", code, in, out).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", py, err, msg)
	}
	ref, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ref) != 2*len(bits) {
		t.Fatalf("PyTorch wrote %d bytes, want %d", len(ref), 2*len(bits))
	}
	src := make([]float32, len(bits))
	for i, v := range bits {
		src[i] = math.Float32frombits(v)
	}
	got := make([]uint16, len(bits))
	Float32ToBF16(got, src)
	isNaN := func(h uint16) bool { return h&0x7f80 == 0x7f80 && h&0x7f != 0 }
	bad := 0
	for i, v := range bits {
		want := binary.LittleEndian.Uint16(ref[2*i:])
		ok := got[i] == want
		if src[i] != src[i] {
			ok = isNaN(got[i]) && isNaN(want)
		}
		if !ok {
			if bad++; bad <= 20 {
				t.Errorf("%#08x (%g): Float32ToBF16 gives %#04x, PyTorch %#04x", v, src[i], got[i], want)
			}
		}
	}
	if bad > 20 {
		t.Errorf("... %d mismatches of %d values in all", bad, len(bits))
	}
}
