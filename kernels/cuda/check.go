package cuda

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/kediff/kediff/kernels"
)

// Argument kinds of a Case: an input, an output (poisoned with NaN on the
// device before the call, so an unwritten element fails), or a buffer the op
// accumulates into (random initial values on both sides).
const (
	argIn = iota
	argOut
	argAcc
)

// How an argument's values are drawn.
const (
	genNormal   = iota // N(0, 1)
	genPositive        // in [0.5, 1.5): rstd, variances
	genUnit            // in [0, 1): probabilities
	genMask            // 0 or 1, mostly 1
	genScale           // 1 or 1.25: keyword key scales
	genTimestep        // integers in [0, 1000)
)

// Arg is one buffer argument of a Case.
type Arg struct {
	N       int
	Kind    int
	Purpose kernels.Purpose
	Gen     int
}

// Case is one kernel call at one shape: how to make its arguments and how to
// run it on a backend (returning its scalar result, if any).
type Case struct {
	Op    string // the Backend method
	Key   string // its shape
	Args  []Arg
	Run   func(be kernels.Backend, b [][]float32) float64
	Flops float64 // multiply-adds x 2 of its matrix products (0 for memory-bound ops)
}

func (c Case) String() string { return c.Op + " " + c.Key }

// Recorder is a kernels.Backend that runs everything on the CPU and records a
// Case for every distinct (op, shape) it sees, so that Check can test each
// device kernel at the shapes a real model uses.
type Recorder struct {
	kernels.CPU
	cases map[string]Case
	rng   *rand.Rand
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{cases: map[string]Case{}, rng: rand.New(rand.NewPCG(17, 18))}
}

// Cases are the recorded cases in a stable order.
func (r *Recorder) Cases() []Case {
	out := make([]Case, 0, len(r.cases))
	for _, c := range r.cases {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (r *Recorder) add(op, key string, args []Arg, run func(be kernels.Backend, b [][]float32) float64) {
	r.addFlops(op, key, 0, args, run)
}

func (r *Recorder) addFlops(op, key string, flops float64, args []Arg, run func(be kernels.Backend, b [][]float32) float64) {
	if _, ok := r.cases[op+" "+key]; !ok {
		r.cases[op+" "+key] = Case{Op: op, Key: key, Args: args, Run: run, Flops: flops}
	}
}

func a(n, kind int, p kernels.Purpose) Arg { return Arg{N: n, Kind: kind, Purpose: p} }
func ag(n, kind int, p kernels.Purpose, g int) Arg {
	return Arg{N: n, Kind: kind, Purpose: p, Gen: g}
}

// opt is an optional argument: absent (nil) when the call had none.
func opt(b []float32, arg Arg) Arg {
	if b == nil {
		arg.N = -1
	}
	return arg
}

const (
	act   = kernels.ForActivations
	agrd  = kernels.ForActivationGrads
	par   = kernels.ForParams
	grd   = kernels.ForGrads
	stat  = kernels.ForStats
	moms  = kernels.ForMoments
	in    = argIn
	out   = argOut
	accum = argAcc
)

func (r *Recorder) Gemm(transA, transB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	r.CPU.Gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
	na, nb := M*lda, K*ldb
	if transA {
		na = K * lda
	}
	if transB {
		nb = N * ldb
	}
	r.addFlops("Gemm", fmt.Sprintf("%v %v %dx%dx%d", transA, transB, M, N, K), 2*float64(M)*float64(N)*float64(K), []Arg{a(na, in, act), a(nb, in, par), a(M*ldc, accum, act)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.Gemm(transA, transB, M, N, K, alpha, b[0], lda, b[1], ldb, beta, b[2], ldc)
			return 0
		})
}

func (r *Recorder) Conv2DForward(o, inp, weight, bias []float32, s kernels.ConvShape) {
	r.CPU.Conv2DForward(o, inp, weight, bias, s)
	r.addFlops("Conv2DForward", convKey(s, bias != nil), convFlops(s), []Arg{a(s.B*s.OC*s.OH()*s.OW(), out, act), a(s.B*s.C*s.H*s.W, in, act), a(s.OC*s.C*s.K*s.K, in, par), opt(bias, a(s.OC, in, par))},
		func(be kernels.Backend, b [][]float32) float64 { be.Conv2DForward(b[0], b[1], b[2], b[3], s); return 0 })
}

func (r *Recorder) Conv2DBackward(dinp, dweight, dbias, dout, inp, weight []float32, s kernels.ConvShape) {
	r.CPU.Conv2DBackward(dinp, dweight, dbias, dout, inp, weight, s)
	r.addFlops("Conv2DBackward", convKey(s, dbias != nil)+fmt.Sprintf(" dinp %v", dinp != nil), convFlops(s)*float64(1+b2i(dinp != nil)),
		[]Arg{opt(dinp, a(s.B*s.C*s.H*s.W, accum, agrd)), a(s.OC*s.C*s.K*s.K, accum, grd), opt(dbias, a(s.OC, accum, grd)), a(s.B*s.OC*s.OH()*s.OW(), in, agrd), a(s.B*s.C*s.H*s.W, in, act), a(s.OC*s.C*s.K*s.K, in, par)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.Conv2DBackward(b[0], b[1], b[2], b[3], b[4], b[5], s)
			return 0
		})
}

func convFlops(s kernels.ConvShape) float64 {
	return 2 * float64(s.B) * float64(s.OC) * float64(s.OH()*s.OW()) * float64(s.C*s.K*s.K)
}

func convKey(s kernels.ConvShape, bias bool) string {
	return fmt.Sprintf("B%d C%d %dx%d ->%d k%d s%d p%d bias %v", s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad, bias)
}

func (r *Recorder) GroupNormForward(o, mean, rstd, inp, weight, bias []float32, B, C, HW, G int, eps float64) {
	r.CPU.GroupNormForward(o, mean, rstd, inp, weight, bias, B, C, HW, G, eps)
	r.add("GroupNormForward", fmt.Sprintf("B%d C%d HW%d G%d", B, C, HW, G),
		[]Arg{a(B*C*HW, out, act), a(B*G, out, stat), a(B*G, out, stat), a(B*C*HW, in, act), ag(C, in, par, genPositive), a(C, in, par)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.GroupNormForward(b[0], b[1], b[2], b[3], b[4], b[5], B, C, HW, G, eps)
			return 0
		})
}

func (r *Recorder) GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, B, C, HW, G int) {
	r.CPU.GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, C, HW, G)
	r.add("GroupNormBackward", fmt.Sprintf("B%d C%d HW%d G%d dinp %v", B, C, HW, G, dinp != nil),
		[]Arg{opt(dinp, a(B*C*HW, accum, agrd)), a(C, accum, grd), a(C, accum, grd), a(B*C*HW, in, agrd), a(B*C*HW, in, act), ag(C, in, par, genPositive), a(B*G, in, stat), ag(B*G, in, stat, genPositive)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.GroupNormBackward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], B, C, HW, G)
			return 0
		})
}

func (r *Recorder) LayerNormForward(o, mean, rstd, inp, weight, bias []float32, N, C int, eps float64) {
	r.CPU.LayerNormForward(o, mean, rstd, inp, weight, bias, N, C, eps)
	r.add("LayerNormForward", fmt.Sprintf("N%d C%d", N, C),
		[]Arg{a(N*C, out, act), a(N, out, stat), a(N, out, stat), a(N*C, in, act), ag(C, in, par, genPositive), a(C, in, par)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.LayerNormForward(b[0], b[1], b[2], b[3], b[4], b[5], N, C, eps)
			return 0
		})
}

func (r *Recorder) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	r.CPU.LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C)
	r.add("LayerNormBackward", fmt.Sprintf("N%d C%d dinp %v", N, C, dinp != nil),
		[]Arg{opt(dinp, a(N*C, accum, agrd)), a(C, accum, grd), a(C, accum, grd), a(N*C, in, agrd), a(N*C, in, act), ag(C, in, par, genPositive), a(N, in, stat), ag(N, in, stat, genPositive)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.LayerNormBackward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], N, C)
			return 0
		})
}

func (r *Recorder) LinearForward(o, inp, weight, bias []float32, N, C, OC int) {
	r.CPU.LinearForward(o, inp, weight, bias, N, C, OC)
	r.addFlops("LinearForward", fmt.Sprintf("N%d C%d OC%d bias %v", N, C, OC, bias != nil), 2*float64(N)*float64(C)*float64(OC),
		[]Arg{a(N*OC, out, act), a(N*C, in, act), a(OC*C, in, par), opt(bias, a(OC, in, par))},
		func(be kernels.Backend, b [][]float32) float64 {
			be.LinearForward(b[0], b[1], b[2], b[3], N, C, OC)
			return 0
		})
}

func (r *Recorder) LinearBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	r.CPU.LinearBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
	r.addFlops("LinearBackward", fmt.Sprintf("N%d C%d OC%d dinp %v dbias %v", N, C, OC, dinp != nil, dbias != nil), 2*float64(N)*float64(C)*float64(OC)*float64(1+b2i(dinp != nil)),
		[]Arg{opt(dinp, a(N*C, accum, agrd)), a(OC*C, accum, grd), opt(dbias, a(OC, accum, grd)), a(N*OC, in, agrd), a(N*C, in, act), a(OC*C, in, par)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.LinearBackward(b[0], b[1], b[2], b[3], b[4], b[5], N, C, OC)
			return 0
		})
}

func (r *Recorder) unary(op string, n int, run func(be kernels.Backend, o, i []float32)) {
	r.add(op, fmt.Sprintf("n%d", n), []Arg{a(n, out, act), a(n, in, act)},
		func(be kernels.Backend, b [][]float32) float64 { run(be, b[0], b[1]); return 0 })
}

func (r *Recorder) unaryBwd(op string, n int, run func(be kernels.Backend, dx, dy, x []float32)) {
	r.add(op, fmt.Sprintf("n%d", n), []Arg{a(n, accum, agrd), a(n, in, agrd), a(n, in, act)},
		func(be kernels.Backend, b [][]float32) float64 { run(be, b[0], b[1], b[2]); return 0 })
}

func (r *Recorder) SiLUForward(o, inp []float32, n int) {
	r.CPU.SiLUForward(o, inp, n)
	r.unary("SiLUForward", n, func(be kernels.Backend, o, i []float32) { be.SiLUForward(o, i, n) })
}

func (r *Recorder) SiLUBackward(dinp, dout, inp []float32, n int) {
	r.CPU.SiLUBackward(dinp, dout, inp, n)
	r.unaryBwd("SiLUBackward", n, func(be kernels.Backend, dx, dy, x []float32) { be.SiLUBackward(dx, dy, x, n) })
}

func (r *Recorder) GELUForward(o, inp []float32, n int) {
	r.CPU.GELUForward(o, inp, n)
	r.unary("GELUForward", n, func(be kernels.Backend, o, i []float32) { be.GELUForward(o, i, n) })
}

func (r *Recorder) GELUBackward(dinp, dout, inp []float32, n int) {
	r.CPU.GELUBackward(dinp, dout, inp, n)
	r.unaryBwd("GELUBackward", n, func(be kernels.Backend, dx, dy, x []float32) { be.GELUBackward(dx, dy, x, n) })
}

func (r *Recorder) DropoutForward(o, inp []float32, n int, p float64, seed uint64) {
	r.CPU.DropoutForward(o, inp, n, p, seed)
	r.unary("DropoutForward", n, func(be kernels.Backend, o, i []float32) { be.DropoutForward(o, i, n, p, seed) })
}

func (r *Recorder) DropoutBackward(dinp, dout []float32, n int, p float64, seed uint64) {
	r.CPU.DropoutBackward(dinp, dout, n, p, seed)
	r.add("DropoutBackward", fmt.Sprintf("n%d p%g", n, p), []Arg{a(n, accum, agrd), a(n, in, agrd)},
		func(be kernels.Backend, b [][]float32) float64 { be.DropoutBackward(b[0], b[1], n, p, seed); return 0 })
}

func (r *Recorder) SoftmaxForward(o, inp []float32, N, C int) {
	r.CPU.SoftmaxForward(o, inp, N, C)
	r.add("SoftmaxForward", fmt.Sprintf("N%d C%d", N, C), []Arg{a(N*C, out, act), a(N*C, in, act)},
		func(be kernels.Backend, b [][]float32) float64 { be.SoftmaxForward(b[0], b[1], N, C); return 0 })
}

func (r *Recorder) SoftmaxBackward(dinp, dout, o []float32, N, C int) {
	r.CPU.SoftmaxBackward(dinp, dout, o, N, C)
	r.add("SoftmaxBackward", fmt.Sprintf("N%d C%d", N, C), []Arg{a(N*C, accum, agrd), a(N*C, in, agrd), ag(N*C, in, act, genUnit)},
		func(be kernels.Backend, b [][]float32) float64 { be.SoftmaxBackward(b[0], b[1], b[2], N, C); return 0 })
}

func attnKey(s kernels.AttentionShape, scale, mask bool) string {
	return fmt.Sprintf("B%d NH%d Nq%d Nk%d D%d scale %v mask %v", s.B, s.NH, s.Nq, s.Nk, s.D, scale, mask)
}

func (r *Recorder) AttentionForward(o, att, q, k, v, keyScale, keyMask []float32, s kernels.AttentionShape) {
	r.CPU.AttentionForward(o, att, q, k, v, keyScale, keyMask, s)
	bh := s.B * s.NH
	r.addFlops("AttentionForward", attnKey(s, keyScale != nil, keyMask != nil), 4*float64(bh)*float64(s.Nq)*float64(s.Nk)*float64(s.D),
		[]Arg{a(bh*s.Nq*s.D, out, act), a(bh*s.Nq*s.Nk, out, stat), a(bh*s.Nq*s.D, in, act), a(bh*s.Nk*s.D, in, act), a(bh*s.Nk*s.D, in, act), opt(keyScale, ag(s.B*s.Nk, in, stat, genScale)), opt(keyMask, ag(s.B*s.Nk, in, stat, genMask))},
		func(be kernels.Backend, b [][]float32) float64 {
			be.AttentionForward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], s)
			return 0
		})
}

func (r *Recorder) AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale []float32, s kernels.AttentionShape) {
	r.CPU.AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale, s)
	bh := s.B * s.NH
	r.addFlops("AttentionBackward", attnKey(s, keyScale != nil, false), 8*float64(bh)*float64(s.Nq)*float64(s.Nk)*float64(s.D),
		[]Arg{a(bh*s.Nq*s.D, accum, agrd), a(bh*s.Nk*s.D, accum, agrd), a(bh*s.Nk*s.D, accum, agrd), a(bh*s.Nq*s.Nk, out, stat), a(bh*s.Nq*s.D, in, agrd), ag(bh*s.Nq*s.Nk, in, stat, genUnit), a(bh*s.Nq*s.D, in, act), a(bh*s.Nk*s.D, in, act), a(bh*s.Nk*s.D, in, act), opt(keyScale, ag(s.B*s.Nk, in, stat, genScale))},
		func(be kernels.Backend, b [][]float32) float64 {
			be.AttentionBackward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], s)
			return 0
		})
}

func (r *Recorder) Permute0213(o, inp []float32, A, B, C, D int) {
	r.CPU.Permute0213(o, inp, A, B, C, D)
	n := A * B * C * D
	r.add("Permute0213", fmt.Sprintf("%dx%dx%dx%d", A, B, C, D), []Arg{a(n, out, act), a(n, in, act)},
		func(be kernels.Backend, b [][]float32) float64 { be.Permute0213(b[0], b[1], A, B, C, D); return 0 })
}

func (r *Recorder) Permute0213Backward(dinp, dout []float32, A, B, C, D int) {
	r.CPU.Permute0213Backward(dinp, dout, A, B, C, D)
	n := A * B * C * D
	r.add("Permute0213Backward", fmt.Sprintf("%dx%dx%dx%d", A, B, C, D), []Arg{a(n, accum, agrd), a(n, in, agrd)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.Permute0213Backward(b[0], b[1], A, B, C, D)
			return 0
		})
}

// tokens draws ids in [0, V), repeating some (the backward must sum them).
func (r *Recorder) tokens(n, V int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(r.rng.IntN(max(1, min(V, n/2+1))))
	}
	return t
}

func (r *Recorder) EmbeddingForward(o, table []float32, tokens []int32, V, C int) {
	r.CPU.EmbeddingForward(o, table, tokens, V, C)
	n := len(tokens)
	tok := r.tokens(n, V)
	r.add("EmbeddingForward", fmt.Sprintf("N%d V%d C%d", n, V, C), []Arg{a(n*C, out, act), a(V*C, in, par)},
		func(be kernels.Backend, b [][]float32) float64 { be.EmbeddingForward(b[0], b[1], tok, V, C); return 0 })
}

func (r *Recorder) EmbeddingBackward(dtable, dout []float32, tokens []int32, V, C int) {
	r.CPU.EmbeddingBackward(dtable, dout, tokens, V, C)
	n := len(tokens)
	tok := r.tokens(n, V)
	r.add("EmbeddingBackward", fmt.Sprintf("N%d V%d C%d", n, V, C), []Arg{a(V*C, accum, grd), a(n*C, in, agrd)},
		func(be kernels.Backend, b [][]float32) float64 { be.EmbeddingBackward(b[0], b[1], tok, V, C); return 0 })
}

func (r *Recorder) TimestepEmbedding(o, t []float32, B, dim int, maxPeriod float64) {
	r.CPU.TimestepEmbedding(o, t, B, dim, maxPeriod)
	r.add("TimestepEmbedding", fmt.Sprintf("B%d dim%d", B, dim), []Arg{a(B*dim, out, stat), ag(B, in, stat, genTimestep)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.TimestepEmbedding(b[0], b[1], B, dim, maxPeriod)
			return 0
		})
}

func (r *Recorder) spatial(op string, N, H, W, nOut, nIn, kind int, run func(be kernels.Backend, x, y []float32)) {
	p := act
	if kind == accum { // a backward pass: both are gradients
		p = agrd
	}
	r.add(op, fmt.Sprintf("N%d %dx%d", N, H, W), []Arg{a(nOut, kind, p), a(nIn, in, p)},
		func(be kernels.Backend, b [][]float32) float64 { run(be, b[0], b[1]); return 0 })
}

func (r *Recorder) UpsampleNearest2xForward(o, inp []float32, N, H, W int) {
	r.CPU.UpsampleNearest2xForward(o, inp, N, H, W)
	r.spatial("UpsampleNearest2xForward", N, H, W, 4*N*H*W, N*H*W, out, func(be kernels.Backend, x, y []float32) { be.UpsampleNearest2xForward(x, y, N, H, W) })
}

func (r *Recorder) UpsampleNearest2xBackward(dinp, dout []float32, N, H, W int) {
	r.CPU.UpsampleNearest2xBackward(dinp, dout, N, H, W)
	r.spatial("UpsampleNearest2xBackward", N, H, W, N*H*W, 4*N*H*W, accum, func(be kernels.Backend, x, y []float32) { be.UpsampleNearest2xBackward(x, y, N, H, W) })
}

func (r *Recorder) AvgPool2xForward(o, inp []float32, N, H, W int) {
	r.CPU.AvgPool2xForward(o, inp, N, H, W)
	r.spatial("AvgPool2xForward", N, H, W, N*(H/2)*(W/2), N*H*W, out, func(be kernels.Backend, x, y []float32) { be.AvgPool2xForward(x, y, N, H, W) })
}

func (r *Recorder) AvgPool2xBackward(dinp, dout []float32, N, H, W int) {
	r.CPU.AvgPool2xBackward(dinp, dout, N, H, W)
	r.spatial("AvgPool2xBackward", N, H, W, N*H*W, N*(H/2)*(W/2), accum, func(be kernels.Backend, x, y []float32) { be.AvgPool2xBackward(x, y, N, H, W) })
}

func (r *Recorder) AddForward(o, x, y []float32, n int) {
	r.CPU.AddForward(o, x, y, n)
	r.add("AddForward", fmt.Sprintf("n%d", n), []Arg{a(n, out, act), a(n, in, act), a(n, in, act)},
		func(be kernels.Backend, b [][]float32) float64 { be.AddForward(b[0], b[1], b[2], n); return 0 })
}

func (r *Recorder) Accumulate(dst, src []float32, n int) {
	r.CPU.Accumulate(dst, src, n)
	// on activations (forward) and on their gradients (backward) alike
	for _, p := range []kernels.Purpose{act, agrd} {
		r.add("Accumulate", fmt.Sprintf("n%d purpose %d", n, p), []Arg{a(n, accum, p), a(n, in, p)},
			func(be kernels.Backend, b [][]float32) float64 { be.Accumulate(b[0], b[1], n); return 0 })
	}
}

func (r *Recorder) ScaleShiftForward(o, inp, scale, shift []float32, B, C, HW int) {
	r.CPU.ScaleShiftForward(o, inp, scale, shift, B, C, HW)
	r.add("ScaleShiftForward", fmt.Sprintf("B%d C%d HW%d scale %v", B, C, HW, scale != nil),
		[]Arg{a(B*C*HW, out, act), a(B*C*HW, in, act), opt(scale, a(B*C, in, act)), a(B*C, in, act)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.ScaleShiftForward(b[0], b[1], b[2], b[3], B, C, HW)
			return 0
		})
}

func (r *Recorder) ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale []float32, B, C, HW int) {
	r.CPU.ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale, B, C, HW)
	r.add("ScaleShiftBackward", fmt.Sprintf("B%d C%d HW%d dinp %v scale %v", B, C, HW, dinp != nil, scale != nil),
		[]Arg{opt(dinp, a(B*C*HW, accum, agrd)), opt(dscale, a(B*C, accum, agrd)), a(B*C, accum, agrd), a(B*C*HW, in, agrd), a(B*C*HW, in, act), opt(scale, a(B*C, in, act))},
		func(be kernels.Backend, b [][]float32) float64 {
			be.ScaleShiftBackward(b[0], b[1], b[2], b[3], b[4], b[5], B, C, HW)
			return 0
		})
}

func (r *Recorder) ConcatChannelsForward(o, x, y []float32, B, C1, C2, HW int) {
	r.CPU.ConcatChannelsForward(o, x, y, B, C1, C2, HW)
	r.add("ConcatChannelsForward", fmt.Sprintf("B%d C%d+%d HW%d", B, C1, C2, HW), []Arg{a(B*(C1+C2)*HW, out, act), a(B*C1*HW, in, act), a(B*C2*HW, in, act)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.ConcatChannelsForward(b[0], b[1], b[2], B, C1, C2, HW)
			return 0
		})
}

func (r *Recorder) ConcatChannelsBackward(da, db, dout []float32, B, C1, C2, HW int) {
	r.CPU.ConcatChannelsBackward(da, db, dout, B, C1, C2, HW)
	r.add("ConcatChannelsBackward", fmt.Sprintf("B%d C%d+%d HW%d", B, C1, C2, HW), []Arg{opt(da, a(B*C1*HW, accum, agrd)), opt(db, a(B*C2*HW, accum, agrd)), a(B*(C1+C2)*HW, in, agrd)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.ConcatChannelsBackward(b[0], b[1], b[2], B, C1, C2, HW)
			return 0
		})
}

func (r *Recorder) WeightedMSEForward(epsHat, eps, weight []float32, B, C, HW int) float64 {
	l := r.CPU.WeightedMSEForward(epsHat, eps, weight, B, C, HW)
	r.add("WeightedMSEForward", fmt.Sprintf("B%d C%d HW%d weight %v", B, C, HW, weight != nil), []Arg{a(B*C*HW, in, act), a(B*C*HW, in, stat), opt(weight, ag(B*HW, in, stat, genPositive))},
		func(be kernels.Backend, b [][]float32) float64 {
			return be.WeightedMSEForward(b[0], b[1], b[2], B, C, HW)
		})
	return l
}

func (r *Recorder) WeightedMSEBackward(dEpsHat, epsHat, eps, weight []float32, dloss float64, B, C, HW int) {
	r.CPU.WeightedMSEBackward(dEpsHat, epsHat, eps, weight, dloss, B, C, HW)
	r.add("WeightedMSEBackward", fmt.Sprintf("B%d C%d HW%d weight %v", B, C, HW, weight != nil),
		[]Arg{a(B*C*HW, accum, agrd), a(B*C*HW, in, act), a(B*C*HW, in, stat), opt(weight, ag(B*HW, in, stat, genPositive))},
		func(be kernels.Backend, b [][]float32) float64 {
			be.WeightedMSEBackward(b[0], b[1], b[2], b[3], dloss, B, C, HW)
			return 0
		})
}

func (r *Recorder) ClipGradNorm(grads []float32, maxNorm float64) float64 {
	n := r.CPU.ClipGradNorm(grads, maxNorm)
	N := len(grads)
	// clipping (a small maximum) and not clipping (an infinite one) both
	for _, mx := range []float64{0.5, math.Inf(1)} {
		r.add("ClipGradNorm", fmt.Sprintf("n%d max %g", N, mx), []Arg{a(N, accum, grd)},
			func(be kernels.Backend, b [][]float32) float64 { return be.ClipGradNorm(b[0], mx) })
	}
	return n
}

func (r *Recorder) AdamWUpdate(params, grads, m, v []float32, cfg kernels.AdamWConfig, step int) {
	r.CPU.AdamWUpdate(params, grads, m, v, cfg, step)
	N := len(params)
	r.add("AdamWUpdate", fmt.Sprintf("n%d step %d", N, step), []Arg{a(N, accum, par), a(N, in, grd), a(N, accum, moms), ag(N, accum, moms, genPositive)},
		func(be kernels.Backend, b [][]float32) float64 {
			be.AdamWUpdate(b[0], b[1], b[2], b[3], cfg, step)
			return 0
		})
}

func (r *Recorder) EMAUpdate(ema, params []float32, decay float64) {
	r.CPU.EMAUpdate(ema, params, decay)
	N := len(params)
	r.add("EMAUpdate", fmt.Sprintf("n%d", N), []Arg{a(N, accum, moms), a(N, in, par)},
		func(be kernels.Backend, b [][]float32) float64 { be.EMAUpdate(b[0], b[1], decay); return 0 })
}

// Result is the outcome of one Case.
type Result struct {
	Case   Case
	Err    float64 // worst norm-wise relative error over the outputs (and the scalar)
	Tol    float64
	Detail string // the worst output, or what went wrong
	OK     bool
}

// Tolerances of Check on the norm-wise relative error: fp32 kernels agree
// with the CPU's far below 1e-4; bf16 activations round to 8 bits.
const (
	TolFP32 = 1e-4
	TolBF16 = 2e-2
)

// Check runs every case on the CPU (the reference) and on dev from the same
// fresh random inputs (rounded to bf16 where dev holds the argument in
// bf16), with dev's outputs poisoned with NaN first, and compares every
// output and accumulated buffer (and scalar result). It writes one line per
// case to w and returns the results.
func Check(dev kernels.Backend, cases []Case, bf16 bool, seed uint64, w io.Writer) []Result {
	rng := rand.New(rand.NewPCG(seed, 99))
	tol := TolFP32
	if bf16 {
		tol = TolBF16
	}
	var res []Result
	for _, c := range cases {
		r := checkOne(dev, c, bf16, tol, rng)
		res = append(res, r)
		if w != nil {
			mark := "ok  "
			if !r.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "%s %-70s rel err %.2e (tol %.0e) %s\n", mark, c.String(), r.Err, r.Tol, r.Detail)
		}
	}
	return res
}

func draw(rng *rand.Rand, g int) float32 {
	switch g {
	case genPositive:
		return float32(0.5 + rng.Float64())
	case genUnit:
		return float32(rng.Float64())
	case genMask:
		if rng.IntN(4) == 0 {
			return 0
		}
		return 1
	case genScale:
		if rng.IntN(3) == 0 {
			return 1.25
		}
		return 1
	case genTimestep:
		return float32(rng.IntN(1000))
	}
	return float32(rng.NormFloat64())
}

// bf16 rounds v as kd_f2bf does (to nearest even).
func bf16(v float32) float32 {
	u := math.Float32bits(v)
	if u&0x7fffffff > 0x7f800000 {
		return v
	}
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}

func checkOne(dev kernels.Backend, c Case, bf bool, tol float64, rng *rand.Rand) (r Result) {
	r.Case, r.Tol = c, tol
	defer func() {
		if p := recover(); p != nil {
			r.OK, r.Err, r.Detail = false, math.Inf(1), fmt.Sprint("panic: ", p)
		}
	}()
	cpu := &kernels.CPU{}
	host := make([][]float32, len(c.Args))
	devb := make([][]float32, len(c.Args))
	for i, arg := range c.Args {
		if arg.N < 0 {
			continue
		}
		host[i] = make([]float32, arg.N)
		for j := range host[i] {
			v := draw(rng, arg.Gen)
			if bf && arg.Purpose == kernels.ForActivations { // what the device will hold
				v = bf16(v)
			}
			host[i][j] = v
		}
		devb[i] = dev.Alloc(arg.N, arg.Purpose)
		if arg.Kind == argOut {
			nan := make([]float32, arg.N)
			for j := range nan {
				nan[j] = float32(math.NaN())
			}
			dev.CopyToDevice(devb[i], nan)
		} else {
			dev.CopyToDevice(devb[i], host[i])
		}
	}
	defer func() {
		for _, b := range devb {
			dev.Free(b)
		}
	}()
	want := c.Run(cpu, host)
	got := c.Run(dev, devb)
	r.OK = true
	scalarErr := math.Abs(got-want) / math.Max(math.Abs(want), 1e-30)
	if want != 0 || got != 0 {
		r.Err = scalarErr
		r.Detail = fmt.Sprintf("result %.6g vs %.6g", got, want)
		if !(scalarErr <= tol) {
			r.OK = false
		}
	}
	for i, arg := range c.Args {
		if arg.N <= 0 || arg.Kind == argIn {
			continue
		}
		g := make([]float32, arg.N)
		dev.CopyToHost(g, devb[i])
		e, nan := relErrNaN(g, host[i])
		if nan >= 0 {
			r.OK, r.Err = false, math.Inf(1)
			r.Detail = fmt.Sprintf("argument %d: element %d is %v (reference %v): unwritten or not finite", i, nan, g[nan], host[i][nan])
			return r
		}
		if e > r.Err || (r.Detail == "" && e >= r.Err) {
			r.Err, r.Detail = e, fmt.Sprintf("worst: argument %d", i)
		}
		if !(e <= tol) {
			r.OK = false
		}
	}
	return r
}

// relErrNaN is ||a - b|| / ||b|| (||a - b|| when b is 0), and the first
// index where a is not finite while b is (-1: none).
func relErrNaN(a, b []float32) (float64, int) {
	var num, den float64
	for i := range b {
		if fa, fb := float64(a[i]), float64(b[i]); math.IsNaN(fa) || math.IsInf(fa, 0) {
			if !math.IsNaN(fb) && !math.IsInf(fb, 0) {
				return math.Inf(1), i
			}
			continue
		} else {
			num += (fa - fb) * (fa - fb)
			den += fb * fb
		}
	}
	if den == 0 {
		return math.Sqrt(num), -1
	}
	return math.Sqrt(num / den), -1
}

// Summary is a one-line verdict over results.
func Summary(res []Result) string {
	var bad []string
	worst := 0.0
	for _, r := range res {
		if !r.OK {
			bad = append(bad, r.Case.String())
		}
		if r.OK {
			worst = max(worst, r.Err/r.Tol)
		}
	}
	if len(bad) == 0 {
		return fmt.Sprintf("all %d kernel cases agree with the CPU reference (worst at %.0f%% of its tolerance)", len(res), 100*worst)
	}
	return fmt.Sprintf("%d of %d kernel cases differ from the CPU reference: %s", len(bad), len(res), strings.Join(bad, "; "))
}
