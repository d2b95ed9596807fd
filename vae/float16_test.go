package vae

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat16Known(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                      // largest half
		{65520, 0x7c00},                      // halfway to 2^16 rounds to even: infinity
		{65519.99, 0x7bff},                   // just below the halfway point
		{1e6, 0x7c00},                        // overflow
		{float32(math.Inf(-1)), 0xfc00},      // -inf
		{6.103515625e-05, 0x0400},            // smallest normal 2^-14
		{5.960464477539063e-08, 0x0001},      // smallest subnormal 2^-24
		{2.9802322387695312e-08, 0x0000},     // 2^-25: a tie, rounds to even zero
		{2.9802326e-08, 0x0001},              // just above 2^-25
		{1 + 1.0/2048, 0x3c00},               // tie between 1 and 1+2^-10: even (1)
		{1 + 3.0/2048, 0x3c02},               // tie between 1+2^-10 and 1+2^-9: even
		{0.18215, 0x31d4},                    // 0.18215 -> 0.182128...
		{6.102e-05, 0x0400},                  // nearer the smallest normal than the largest subnormal
		{6.09755e-05, 0x03ff},                // largest subnormal
		{-5.960464477539063e-08 * 3, 0x8003}, // negative subnormal
	} {
		if got := Float16(tc.f); got != tc.h {
			t.Errorf("Float16(%g) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	if h := Float16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float16(NaN) = %#04x, not a NaN", h)
	}
}

// Every half value converts to float32 and back unchanged, and every float32
// rounds to the nearest half (checked against a float64 search).
func TestFloat16RoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := Float32From16(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := Float16(f); got != uint16(h) {
			t.Fatalf("Float16(Float32From16(%#04x) = %g) = %#04x", h, f, got)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) || math.Abs(float64(f)) > 65504 {
			continue
		}
		h := Float16(f)
		got := float64(Float32From16(h))
		// The neighbours of h must not be nearer to f.
		for _, n := range []uint16{h - 1, h + 1} {
			if n&0x7c00 == 0x7c00 || (h&0x7fff == 0 && n == h-1) {
				continue
			}
			alt := float64(Float32From16(n))
			if math.Signbit(alt) != math.Signbit(got) && got != 0 {
				continue
			}
			if d0, d1 := math.Abs(float64(f)-got), math.Abs(float64(f)-alt); d1 < d0 || (d1 == d0 && h&1 == 1) {
				t.Fatalf("Float16(%g) = %#04x (%g), but %#04x (%g) is nearer or even", f, h, got, n, alt)
			}
		}
	}
}

func TestFloat16Bytes(t *testing.T) {
	b := AppendFloat16(nil, []float32{1, -2, 0.5})
	if want := []byte{0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38}; string(b) != string(want) {
		t.Fatalf("AppendFloat16 = % x, want % x", b, want)
	}
	v, err := Float16Values(b)
	if err != nil || v[0] != 1 || v[1] != -2 || v[2] != 0.5 {
		t.Fatalf("Float16Values = %v, %v", v, err)
	}
	if _, err := Float16Values([]byte{1}); err == nil {
		t.Fatal("odd byte count: want an error")
	}
}
