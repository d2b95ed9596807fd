package kernels

// Purpose says what a buffer holds, so that a device backend can keep one
// arena per purpose and pick its element type: in mixed precision (package
// kernels/cuda's bf16) activations and their gradients are bf16, everything
// else fp32. CPU ignores it.
type Purpose uint8

const (
	ForParams          Purpose = iota // parameter values (the fp32 master weights)
	ForGrads                          // parameter gradients
	ForMoments                        // optimizer state (AdamW moments, EMA weights)
	ForActivations                    // activations
	ForActivationGrads                // the gradients of activations
	ForStats                          // norm statistics, attention probabilities, per-call inputs
)

// Backend is the set of ops a model is built from, op by op, over float32
// buffers. Shapes and layouts are those of the generic functions of the same
// name. CPU implements it with host slices; a device implementation (package
// kernels/cuda) satisfies it with slices that view device memory it allocated
// itself (Alloc), so buffer arguments are opaque handles to it: host code
// never reads a []float32 it got from a device backend's Alloc except through
// CopyToHost, and may only slice it. Methods may run asynchronously on a
// device except those returning a value and CopyToHost, which synchronise.
// A Backend is not safe for concurrent use (CPU keeps shared scratch space).
type Backend interface {
	// Alloc returns a zeroed buffer of n elements owned by the backend, for
	// purpose p.
	Alloc(n int, p Purpose) []float32
	// Free releases a buffer Alloc returned (not a slice of one); nil is a
	// no-op. The CPU leaves it to the garbage collector.
	Free(buf []float32)
	// CopyToDevice copies host src into backend buffer dst; CopyToHost the reverse.
	CopyToDevice(dst, src []float32)
	CopyToHost(dst, src []float32)
	// Zero clears a backend buffer (e.g. gradients before backward).
	Zero(buf []float32)

	// Gemm is the raw matrix product (row-major, cblas semantics) for model
	// code that needs one outside the ops below.
	Gemm(transA, transB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int)
	Conv2DForward(out, inp, weight, bias []float32, s ConvShape)
	Conv2DBackward(dinp, dweight, dbias, dout, inp, weight []float32, s ConvShape)
	GroupNormForward(out, mean, rstd, inp, weight, bias []float32, B, C, HW, G int, eps float64)
	GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, B, C, HW, G int)
	LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int, eps float64)
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int)
	LinearForward(out, inp, weight, bias []float32, N, C, OC int)
	LinearBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int)
	SiLUForward(out, inp []float32, n int)
	SiLUBackward(dinp, dout, inp []float32, n int)
	GELUForward(out, inp []float32, n int)
	GELUBackward(dinp, dout, inp []float32, n int)
	DropoutForward(out, inp []float32, n int, p float64, seed uint64)
	DropoutBackward(dinp, dout []float32, n int, p float64, seed uint64)
	SoftmaxForward(out, inp []float32, N, C int)
	SoftmaxBackward(dinp, dout, out []float32, N, C int)
	AttentionForward(out, att, q, k, v, keyScale, keyMask []float32, s AttentionShape)
	AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale []float32, s AttentionShape)
	Permute0213(out, inp []float32, A, B, C, D int)
	Permute0213Backward(dinp, dout []float32, A, B, C, D int)
	// Token ids are host memory; a device backend uploads them itself.
	EmbeddingForward(out, table []float32, tokens []int32, V, C int)
	EmbeddingBackward(dtable, dout []float32, tokens []int32, V, C int)
	TimestepEmbedding(out, t []float32, B, dim int, maxPeriod float64)
	UpsampleNearest2xForward(out, inp []float32, N, H, W int)
	UpsampleNearest2xBackward(dinp, dout []float32, N, H, W int)
	AvgPool2xForward(out, inp []float32, N, H, W int)
	AvgPool2xBackward(dinp, dout []float32, N, H, W int)
	AddForward(out, a, b []float32, n int)
	Accumulate(dst, src []float32, n int)
	ScaleShiftForward(out, inp, scale, shift []float32, B, C, HW int)
	ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale []float32, B, C, HW int)
	ConcatChannelsForward(out, a, b []float32, B, C1, C2, HW int)
	ConcatChannelsBackward(da, db, dout []float32, B, C1, C2, HW int)
	WeightedMSEForward(epsHat, eps, weight []float32, B, C, HW int) float64
	WeightedMSEBackward(dEpsHat, epsHat, eps, weight []float32, dloss float64, B, C, HW int)
	// ClipGradNorm, AdamWUpdate and EMAUpdate work on whole flat buffers
	// (Params.Grad, ...).
	ClipGradNorm(grads []float32, maxNorm float64) float64
	AdamWUpdate(params, grads, m, v []float32, cfg AdamWConfig, step int)
	EMAUpdate(ema, params []float32, decay float64)
}

// CPU is the host Backend: multi-threaded Go loops plus OpenBLAS (or the pure-Go
// fallback) GEMM. The zero value is ready to use.
type CPU struct {
	col   []float32 // im2col scratch, grown on demand and reused across calls
	convs dnnConvs  // oneDNN convolutions where the library loads
}

var _ Backend = (*CPU)(nil)

func (c *CPU) scratch(n int) []float32 {
	if cap(c.col) < n {
		c.col = make([]float32, n)
	}
	return c.col[:n]
}

func (*CPU) Alloc(n int, _ Purpose) []float32 { return make([]float32, n) }
func (*CPU) Free([]float32)                   {}
func (*CPU) CopyToDevice(dst, src []float32)  { copy(dst, src) }
func (*CPU) CopyToHost(dst, src []float32)    { copy(dst, src) }
func (*CPU) Zero(buf []float32)               { clear(buf) }

func (*CPU) Gemm(transA, transB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	Gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
}

// Conv2DForward and Conv2DBackward run 1x1 convolutions as plain GEMMs
// (ConvShape.direct), the others on oneDNN when it loads (its blocked-layout
// kernels are about twice im2col + sgemm's speed; see package onednn) and on
// the generic im2col + GEMM functions otherwise.
func (c *CPU) Conv2DForward(out, inp, weight, bias []float32, s ConvShape) {
	if s.direct() { // 1x1: plain GEMMs (see ConvShape.direct)
		Conv2DForward(out, inp, weight, bias, nil, s)
		return
	}
	if cv := c.convs.get(s); cv != nil {
		if err := cv.Forward(out, inp, weight, bias); err != nil {
			panic(err)
		}
		return
	}
	Conv2DForward(out, inp, weight, bias, c.scratch(s.ColSize()), s)
}
func (c *CPU) Conv2DBackward(dinp, dweight, dbias, dout, inp, weight []float32, s ConvShape) {
	if s.direct() {
		Conv2DBackward(dinp, dweight, dbias, nil, dout, inp, weight, s)
		return
	}
	if cv := c.convs.get(s); cv != nil {
		if err := cv.Backward(dinp, dweight, dbias, dout, inp, weight); err != nil {
			panic(err)
		}
		return
	}
	Conv2DBackward(dinp, dweight, dbias, c.scratch(s.ColSize()), dout, inp, weight, s)
}
func (*CPU) GroupNormForward(out, mean, rstd, inp, weight, bias []float32, B, C, HW, G int, eps float64) {
	GroupNormForward(out, mean, rstd, inp, weight, bias, B, C, HW, G, eps)
}
func (*CPU) GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, B, C, HW, G int) {
	GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, C, HW, G)
}
func (*CPU) LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int, eps float64) {
	LayerNormForward(out, mean, rstd, inp, weight, bias, N, C, eps)
}
func (*CPU) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C)
}
func (*CPU) LinearForward(out, inp, weight, bias []float32, N, C, OC int) {
	LinearForward(out, inp, weight, bias, N, C, OC)
}
func (*CPU) LinearBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	LinearBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC)
}
func (*CPU) SiLUForward(out, inp []float32, n int)         { SiLUForward(out, inp, n) }
func (*CPU) SiLUBackward(dinp, dout, inp []float32, n int) { SiLUBackward(dinp, dout, inp, n) }
func (*CPU) GELUForward(out, inp []float32, n int)         { GELUForward(out, inp, n) }
func (*CPU) GELUBackward(dinp, dout, inp []float32, n int) { GELUBackward(dinp, dout, inp, n) }
func (*CPU) SoftmaxForward(out, inp []float32, N, C int)   { SoftmaxForward(out, inp, N, C) }
func (*CPU) SoftmaxBackward(dinp, dout, out []float32, N, C int) {
	SoftmaxBackward(dinp, dout, out, N, C)
}
func (*CPU) DropoutForward(out, inp []float32, n int, p float64, seed uint64) {
	DropoutForward(out, inp, n, p, seed)
}
func (*CPU) DropoutBackward(dinp, dout []float32, n int, p float64, seed uint64) {
	DropoutBackward(dinp, dout, n, p, seed)
}
func (*CPU) AttentionForward(out, att, q, k, v, keyScale, keyMask []float32, s AttentionShape) {
	AttentionForward(out, att, q, k, v, keyScale, keyMask, s)
}
func (*CPU) AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale []float32, s AttentionShape) {
	AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale, s)
}
func (*CPU) Permute0213(out, inp []float32, A, B, C, D int) { Permute0213(out, inp, A, B, C, D) }
func (*CPU) Permute0213Backward(dinp, dout []float32, A, B, C, D int) {
	Permute0213Backward(dinp, dout, A, B, C, D)
}
func (*CPU) EmbeddingForward(out, table []float32, tokens []int32, V, C int) {
	EmbeddingForward(out, table, tokens, V, C)
}
func (*CPU) EmbeddingBackward(dtable, dout []float32, tokens []int32, V, C int) {
	EmbeddingBackward(dtable, dout, tokens, V, C)
}
func (*CPU) TimestepEmbedding(out, t []float32, B, dim int, maxPeriod float64) {
	TimestepEmbedding(out, t, B, dim, maxPeriod)
}
func (*CPU) UpsampleNearest2xForward(out, inp []float32, N, H, W int) {
	UpsampleNearest2xForward(out, inp, N, H, W)
}
func (*CPU) UpsampleNearest2xBackward(dinp, dout []float32, N, H, W int) {
	UpsampleNearest2xBackward(dinp, dout, N, H, W)
}
func (*CPU) AvgPool2xForward(out, inp []float32, N, H, W int) { AvgPool2xForward(out, inp, N, H, W) }
func (*CPU) AvgPool2xBackward(dinp, dout []float32, N, H, W int) {
	AvgPool2xBackward(dinp, dout, N, H, W)
}
func (*CPU) AddForward(out, a, b []float32, n int) { AddForward(out, a, b, n) }
func (*CPU) Accumulate(dst, src []float32, n int)  { Accumulate(dst, src, n) }
func (*CPU) ScaleShiftForward(out, inp, scale, shift []float32, B, C, HW int) {
	ScaleShiftForward(out, inp, scale, shift, B, C, HW)
}
func (*CPU) ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale []float32, B, C, HW int) {
	ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale, B, C, HW)
}
func (*CPU) ConcatChannelsForward(out, a, b []float32, B, C1, C2, HW int) {
	ConcatChannelsForward(out, a, b, B, C1, C2, HW)
}
func (*CPU) ConcatChannelsBackward(da, db, dout []float32, B, C1, C2, HW int) {
	ConcatChannelsBackward(da, db, dout, B, C1, C2, HW)
}
func (*CPU) WeightedMSEForward(epsHat, eps, weight []float32, B, C, HW int) float64 {
	return WeightedMSEForward(epsHat, eps, weight, B, C, HW)
}
func (*CPU) WeightedMSEBackward(dEpsHat, epsHat, eps, weight []float32, dloss float64, B, C, HW int) {
	WeightedMSEBackward(dEpsHat, epsHat, eps, weight, dloss, B, C, HW)
}
func (*CPU) ClipGradNorm(grads []float32, maxNorm float64) float64 {
	return ClipGradNorm(grads, maxNorm)
}
func (*CPU) AdamWUpdate(params, grads, m, v []float32, cfg AdamWConfig, step int) {
	AdamWUpdate(params, grads, m, v, cfg, step)
}
func (*CPU) EMAUpdate(ema, params []float32, decay float64) { EMAUpdate(ema, params, decay) }
