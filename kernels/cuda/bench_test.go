//go:build cgo

package cuda

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kediff/kediff/kernels"
)

// TestBenchAccounting checks what kernels bench divides by: a GEMM's and a
// convolution's FLOPs, and the bytes each moves at fp32 and with bf16
// activations (parameters and gradients stay fp32).
func TestBenchAccounting(t *testing.T) {
	rec := NewRecorder()
	M, N, K := 8, 12, 16
	rec.Gemm(false, true, M, N, K, 1, make([]float32, M*K), K, make([]float32, N*K), K, 0, make([]float32, M*N), N)
	s := kernels.ConvShape{B: 2, C: 3, H: 8, W: 8, OC: 4, K: 3, Stride: 1, Pad: 1}
	rec.Conv2DForward(make([]float32, 2*4*64), make([]float32, 2*3*64), make([]float32, 4*3*9), make([]float32, 4), s)
	cases := rec.Cases()
	if len(cases) != 2 {
		t.Fatalf("recorded %d cases, want 2", len(cases))
	}
	for _, tc := range []struct {
		bf16                 bool
		gemmBytes, convBytes float64
	}{
		// Gemm: A read (activation), B read (parameter, fp32), C accumulated (activation, read and written).
		// Conv: output written, input read (activations), weight and bias read (parameters).
		{false, 4 * float64(M*K+N*K+2*M*N), 4 * float64(2*4*64+2*3*64+4*3*9+4)},
		{true, 2*float64(M*K+2*M*N) + 4*float64(N*K), 2*float64(2*4*64+2*3*64) + 4*float64(4*3*9+4)},
	} {
		dev := emu(t, tc.bf16)
		var out bytes.Buffer
		res := Bench(dev, cases, 1, Rates{Bandwidth: 1e9, Matrix: 1e9}, &out)
		byOp := map[string]BenchResult{}
		for _, r := range res {
			byOp[r.Case.Op] = r
			if r.Time <= 0 {
				t.Errorf("bf16 %v: %s timed at %v", tc.bf16, r.Case, r.Time)
			}
		}
		if g := byOp["Gemm"]; g.Flops != 2*float64(M*N*K) || g.Bytes != tc.gemmBytes {
			t.Errorf("bf16 %v: Gemm flops %g bytes %g, want %d and %g", tc.bf16, g.Flops, g.Bytes, 2*M*N*K, tc.gemmBytes)
		}
		if c := byOp["Conv2DForward"]; c.Flops != 2*2*4*64*3*9 || c.Bytes != tc.convBytes {
			t.Errorf("bf16 %v: Conv2DForward flops %g bytes %g, want %d and %g", tc.bf16, c.Flops, c.Bytes, 2*2*4*64*3*9, tc.convBytes)
		}
		if !strings.Contains(out.String(), "2 cases") {
			t.Errorf("bf16 %v: table lacks its summary line:\n%s", tc.bf16, out.String())
		}
	}
}
