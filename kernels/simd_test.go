package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// simdLevels are the SIMD paths this machine can run, widest first.
func simdLevels(t testing.TB) []int {
	if !haveSIMD {
		t.Skip("built without cgo: no SIMD kernels")
	}
	was := setSIMD(512)
	t.Cleanup(func() { setSIMD(was) })
	var levels []int
	for _, l := range []int{512, 256, 0} {
		setSIMD(l)
		if simdLevel == l {
			levels = append(levels, l)
		}
	}
	return levels
}

// activationInputs is a fine grid over [-30, 30], the float32 extremes of each
// kernel's range (where exp saturates or underflows), and a few specials.
func activationInputs() []float32 {
	var xs []float32
	for x := -30.0; x <= 30; x += 1.0 / 1024 {
		xs = append(xs, float32(x))
	}
	for _, x := range []float64{-1e30, -1000, -120, -104, -89, -88, -87.5, -87, -86.9, 86.9, 87, 88, 88.5, 89, 104, 120, 1000, 1e30, 0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7} {
		xs = append(xs, float32(x))
	}
	return xs
}

// phi is the normal CDF through Erfc, accurate in the lower tail too (the
// generic kernels' 1+Erf loses it below about -8).
func phi(x float64) float64 { return math.Erfc(-x/math.Sqrt2) / 2 }

// TestSIMDActivationsMatchFloat64 checks every SIMD path of SiLU, GELU and
// their gradients element by element against float64 (SiLU's generic kernels,
// GELU through Erfc):
// within a few float32 ulps of the result's magnitude (plus an absolute 1e-30
// for results that underflow).
func TestSIMDActivationsMatchFloat64(t *testing.T) {
	xs := activationInputs()
	n := len(xs)
	x64 := make([]float64, n)
	dy := make([]float32, n)
	dy64 := make([]float64, n)
	for i, x := range xs {
		x64[i] = float64(x)
		dy[i] = float32(0.5 + float64(i%7)/7)
		dy64[i] = float64(dy[i])
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	pdf := func(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
	// Each op's error is measured against mag, the size of the terms its
	// formula adds (so a gradient crossing zero is judged by the terms that
	// cancel), times 1+x^2 for GELU, whose float32 exp argument -x^2/2 carries
	// an absolute rounding error of about x^2 ulps.
	type op struct {
		name string
		f32  func(out []float32)
		want func(x, dy float64) float64
		mag  func(x, dy float64) float64
		tol  float64 // in float32 ulps (2^-24) of mag
	}
	ops := []op{
		{"silu", func(o []float32) { SiLUForward(o, xs, n) },
			func(x, _ float64) float64 { return x * sig(x) },
			func(x, _ float64) float64 { return math.Abs(x) * sig(x) }, 4},
		{"silu_grad", func(o []float32) { SiLUBackward(o, dy, xs, n) },
			func(x, dy float64) float64 { return dy * sig(x) * (1 + x*(1-sig(x))) },
			func(x, dy float64) float64 { return math.Abs(dy) * sig(x) * (1 + math.Abs(x)*(1-sig(x))) }, 6},
		{"gelu", func(o []float32) { GELUForward(o, xs, n) },
			func(x, _ float64) float64 { return x * phi(x) },
			func(x, _ float64) float64 { return math.Abs(x) * phi(x) * (1 + x*x) }, 8},
		{"gelu_grad", func(o []float32) { GELUBackward(o, dy, xs, n) },
			func(x, dy float64) float64 { return dy * (phi(x) + x*pdf(x)) },
			func(x, dy float64) float64 { return math.Abs(dy) * (phi(x) + math.Abs(x)*pdf(x)) * (1 + x*x) }, 8},
	}
	for _, level := range simdLevels(t) {
		for _, o := range ops {
			t.Run(fmt.Sprintf("%d/%s", level, o.name), func(t *testing.T) {
				setSIMD(level)
				got := make([]float32, n)
				o.f32(got)
				worst, at := 0.0, 0
				for i, x := range x64 {
					d := math.Abs(float64(got[i]) - o.want(x, dy64[i]))
					if d <= 1e-30 { // results that underflow
						continue
					}
					if e := d / o.mag(x, dy64[i]); e > worst || math.IsNaN(e) {
						worst, at = e, i
					}
				}
				ulps := worst * (1 << 24)
				if !(ulps <= o.tol) {
					t.Errorf("x=%g: got %g, want %g (%.1f ulps > %g)", xs[at], got[at], o.want(x64[at], dy64[at]), ulps, o.tol)
				} else if testing.Verbose() {
					t.Logf("worst %.2f ulps at x=%g", ulps, xs[at])
				}
			})
		}
	}
}

// TestSIMDSoftmaxMatchesFloat64 covers the float32 softmax row (SIMD exp)
// with key scales and a padding mask: masked keys get exactly 0, the rest
// match float64 to a few ulps, on every SIMD path.
func TestSIMDSoftmaxMatchesFloat64(t *testing.T) {
	const n = 77
	x, scale, mask := make([]float32, n), make([]float32, n), make([]float32, n)
	for j := range x {
		x[j] = float32(math.Sin(float64(j)*1.7) * 12)
		scale[j], mask[j] = 1, 1
		if j%5 == 0 {
			scale[j] = 1.25
		}
		if j%9 == 4 {
			mask[j] = 0
		}
	}
	x[10] = -1e30 // exp underflows to 0 without being masked
	want := make([]float64, n)
	softmaxRow(want, f64s(x), f64s(scale), f64s(mask), 0.3)
	for _, level := range simdLevels(t) {
		setSIMD(level)
		got := make([]float32, n)
		softmaxRow(got, x, scale, mask, 0.3)
		for j := range got {
			if mask[j] == 0 && got[j] != 0 {
				t.Fatalf("level %d: masked key %d has probability %g", level, j, got[j])
			}
			if e := math.Abs(float64(got[j])-want[j]) / max(want[j], 1e-30); e > 16.0/(1<<24) && want[j] > 1e-30 {
				t.Errorf("level %d: key %d: got %g, want %g", level, j, got[j], want[j])
			}
		}
	}
}

func f64s(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

// TestSIMDIm2colMatchesGo checks the C im2col and col2im against the Go loops
// (bit for bit: the same copies, and the same sums in the same order) over
// kernel sizes, strides, paddings and sample groups.
func TestSIMDIm2colMatchesGo(t *testing.T) {
	shapes := []ConvShape{
		{B: 3, C: 2, H: 7, W: 5, OC: 1, K: 3, Stride: 1, Pad: 1},
		{B: 2, C: 3, H: 8, W: 8, OC: 1, K: 3, Stride: 2, Pad: 1},
		{B: 2, C: 2, H: 9, W: 6, OC: 1, K: 3, Stride: 2, Pad: 0},
		{B: 2, C: 4, H: 4, W: 4, OC: 1, K: 1, Stride: 1, Pad: 0},
		{B: 1, C: 2, H: 3, W: 3, OC: 1, K: 3, Stride: 1, Pad: 2},
		{B: 2, C: 2, H: 5, W: 4, OC: 1, K: 1, Stride: 2, Pad: 1},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, level := range simdLevels(t) {
		for _, s := range shapes {
			for _, g := range []int{1, s.B} {
				t.Run(fmt.Sprintf("%d/%+v/g%d", level, s, g), func(t *testing.T) {
					x := randSlice32(rng, g*s.C*s.H*s.W)
					n := s.C * s.K * s.K * g * s.OH() * s.OW()
					col := randSlice32(rng, n)
					dx := randSlice32(rng, len(x))
					run := func(level int) ([]float32, []float32) {
						setSIMD(level)
						c, d := slices.Clone(col), slices.Clone(dx)
						im2col(c, x, g, s)
						col2im(d, col, g, s)
						return c, d
					}
					wc, wd := run(-1)
					gc, gd := run(level)
					if !slices.Equal(gc, wc) {
						t.Error("im2col differs from the Go loops")
					}
					if !slices.Equal(gd, wd) {
						t.Error("col2im differs from the Go loops")
					}
				})
			}
		}
	}
}

// TestSIMDNormAndAdamWMatchGo checks the C GroupNorm (forward, backward) and
// AdamW against the Go loops on float32, at every SIMD level: the same
// arithmetic up to summation order and fused multiply-adds.
func TestSIMDNormAndAdamWMatchGo(t *testing.T) {
	const B, C, HW, G = 3, 12, 37, 4
	rng := rand.New(rand.NewPCG(7, 8))
	x, dy := randSlice32(rng, B*C*HW), randSlice32(rng, B*C*HW)
	w, b := randSlice32(rng, C), randSlice32(rng, C)
	p0, g, m0, v0 := randSlice32(rng, 1001), randSlice32(rng, 1001), randSlice32(rng, 1001), randSlice32(rng, 1001)
	for i := range v0 {
		v0[i] *= v0[i]
	}
	cfg := AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	run := func(level int) [][]float32 {
		setSIMD(level)
		out, mean, rstd := make([]float32, len(x)), make([]float32, B*G), make([]float32, B*G)
		GroupNormForward(out, mean, rstd, x, w, b, B, C, HW, G, 1e-5)
		dx, dw, db := make([]float32, len(x)), make([]float32, C), make([]float32, C)
		GroupNormBackward(dx, dw, db, dy, x, w, mean, rstd, B, C, HW, G)
		p, m, v := slices.Clone(p0), slices.Clone(m0), slices.Clone(v0)
		AdamWUpdate(p, g, m, v, cfg, 3)
		return [][]float32{out, mean, rstd, dx, dw, db, p, m, v}
	}
	want := run(-1)
	names := []string{"out", "mean", "rstd", "dinp", "dweight", "dbias", "params", "m", "v"}
	for _, level := range simdLevels(t) {
		got := run(level)
		for i := range got {
			if e := relErr(got[i], want[i]); e > 1e-6 {
				t.Errorf("level %d: %s: relative error %.3g", level, names[i], e)
			}
		}
	}
}

// TestSIMDAttentionMatchesGo checks the C attention softmax (forward and
// backward, with key scales and a padding mask that empties one sample), the
// C permutes and the C sum of squares against the Go loops on float32.
func TestSIMDAttentionMatchesGo(t *testing.T) {
	s := AttentionShape{B: 2, NH: 3, Nq: 5, Nk: 7, D: 4}
	rng := rand.New(rand.NewPCG(9, 10))
	q, k, v := randSlice32(rng, s.B*s.NH*s.Nq*s.D), randSlice32(rng, s.B*s.NH*s.Nk*s.D), randSlice32(rng, s.B*s.NH*s.Nk*s.D)
	dout := randSlice32(rng, len(q))
	scale, mask := make([]float32, s.B*s.Nk), make([]float32, s.B*s.Nk)
	for j := range scale {
		scale[j] = 1 + float32(j%3)*0.25
		if j < s.Nk && j%2 == 0 { // sample 0: some keys padded; sample 1: none
			mask[j] = 0
		} else {
			mask[j] = 1
		}
	}
	x := randSlice32(rng, 3*37*21*4)
	run := func(level int, A, B, C, D int) [][]float32 {
		setSIMD(level)
		out, att := make([]float32, len(q)), make([]float32, s.B*s.NH*s.Nq*s.Nk)
		AttentionForward(out, att, q, k, v, scale, mask, s)
		dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
		AttentionBackward(dq, dk, dv, make([]float32, len(att)), dout, att, q, k, v, scale, s)
		n := A * B * C * D
		p := make([]float32, n)
		Permute0213(p, x[:n], A, B, C, D)
		pb := slices.Clone(x[:n])
		Permute0213Backward(pb, x[len(x)-n:], A, B, C, D)
		return [][]float32{out, att, dq, dk, dv, p, pb, {float32(ClipGradNorm(slices.Clone(x), 1))}}
	}
	names := []string{"out", "att", "dq", "dk", "dv", "permute", "permute_backward", "grad_norm"}
	for _, p := range [][4]int{{2, 3, 5, 1}, {2, 3, 5, 4}, {3, 37, 21, 1}, {3, 21, 37, 1}} {
		want := run(-1, p[0], p[1], p[2], p[3])
		for _, level := range simdLevels(t) {
			got := run(level, p[0], p[1], p[2], p[3])
			for i := range got {
				if e := relErr(got[i], want[i]); e > 1e-6 {
					t.Errorf("level %d, permute %v: %s: relative error %.3g", level, p, names[i], e)
				}
			}
		}
	}
}

// TestSIMDAddsMatchGo checks AddForward, Accumulate and ClipGradNorm's
// scaling (C in cgo builds) bit for bit against the Go loops.
func TestSIMDAddsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	a, b := randSlice32(rng, 1037), randSlice32(rng, 1037)
	run := func(level int) [][]float32 {
		setSIMD(level)
		sum, acc, clip := make([]float32, len(a)), slices.Clone(a), slices.Clone(a)
		AddForward(sum, a, b, len(a))
		Accumulate(acc, b, len(a))
		ClipGradNorm(clip, 0.5)
		return [][]float32{sum, acc, clip}
	}
	want := run(-1)
	for _, level := range simdLevels(t) {
		for i, got := range run(level) {
			if !slices.Equal(got, want[i]) {
				t.Errorf("level %d: %s differs", level, []string{"AddForward", "Accumulate", "ClipGradNorm"}[i])
			}
		}
	}
}

// TestSIMDMatchesGoWhenSplit reruns the comparisons with every parallel loop
// split into chunks of one item over 4 workers, so the C kernels see chunk
// boundaries (row, plane, group and element ranges) everywhere.
func TestSIMDMatchesGoWhenSplit(t *testing.T) {
	defer forceSplit()()
	for name, f := range map[string]func(*testing.T){
		"activations": TestSIMDActivationsMatchFloat64,
		"im2col":      TestSIMDIm2colMatchesGo,
		"norm_adamw":  TestSIMDNormAndAdamWMatchGo,
		"attention":   TestSIMDAttentionMatchesGo,
		"adds":        TestSIMDAddsMatchGo,
	} {
		t.Run(name, f)
	}
}
