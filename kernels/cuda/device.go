//go:build cgo

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kediff/kediff/kernels"
)

// Device is a kernels.Backend whose buffers live on a GPU (or in the host
// emulation): Alloc returns views that only the device's ops may read, and
// every op runs libkediff_cuda's kernels. A Device is not safe for concurrent
// use, as no Backend is.
type Device struct {
	lib   *library
	name  string
	total int64
	emu   bool
	bf16  bool // activations in bf16
	a     args
}

var _ kernels.Backend = (*Device)(nil)

// open loads the library at path and selects the device.
func open(path string, device int, emu, bf16 bool) (*Device, error) {
	lib, err := openLibrary(path)
	if err != nil {
		return nil, err
	}
	name, total, err := lib.init(device)
	if err != nil {
		return nil, err
	}
	return &Device{lib: lib, name: name, total: total, emu: emu, bf16: bf16, a: newArgs()}, nil
}

// String names the device and its precision.
func (d *Device) String() string {
	p := "fp32"
	if d.bf16 {
		p = "bf16 activations, fp32 weights and optimizer state"
	}
	if d.total > 0 {
		return fmt.Sprintf("%s, %.1f GiB, %s", d.name, float64(d.total)/(1<<30), p)
	}
	return fmt.Sprintf("%s, %s", d.name, p)
}

func (d *Device) check(o string, err error) {
	if err != nil {
		panic(&Error{Op: o, Err: err})
	}
}

func view(b []float32) unsafe.Pointer {
	if b == nil {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// run calls op o with view arguments bufs, integers and floats.
func (d *Device) run(o op, bufs [][]float32, ints []int, floats []float64, host []int32) float64 {
	ptrs := make([]unsafe.Pointer, len(bufs))
	for i, b := range bufs {
		ptrs[i] = view(b)
	}
	setArgs(d.a, ptrs, ints, floats)
	r, err := d.lib.run(o, d.a, host)
	d.check(o.String(), err)
	return r
}

func (d *Device) Alloc(n int, p kernels.Purpose) []float32 {
	if n == 0 {
		return []float32{}
	}
	dt := dtF32
	if d.bf16 && p == kernels.ForActivations {
		dt = dtBF16
	}
	v, err := d.lib.alloc(n, dt)
	d.check(fmt.Sprintf("alloc %d elements", n), err)
	return unsafe.Slice((*float32)(v), n)
}

func (d *Device) Free(b []float32) {
	if len(b) > 0 {
		d.lib.free(view(b))
	}
}

// DType is the element type of the buffer holding b: "fp32" or "bf16".
func (d *Device) DType(b []float32) string {
	if d.lib.dtype(view(b)) == dtBF16 {
		return "bf16"
	}
	return "fp32"
}

// DevicePointer returns the device address of the n elements a buffer's
// view address (its slice's data pointer) stands for, for libraries that
// take device memory (NCCL through package dist); want says which element
// type the caller expects. In the emulation the address is host memory.
func (d *Device) DevicePointer(addr uintptr, n int, bf16 bool) (uintptr, error) {
	p, dt, err := d.lib.devicePointer(addr, n)
	if err != nil {
		return 0, err
	}
	if (dt == dtBF16) != bf16 {
		have, want := "fp32", "fp32"
		if dt == dtBF16 {
			have = "bf16"
		}
		if bf16 {
			want = "bf16"
		}
		return 0, fmt.Errorf("kernels/cuda: the buffer holds %s, the caller wants %s", have, want)
	}
	return p, nil
}

// Stream is the CUDA stream the kernels run on (a cudaStream_t as a
// number; 0 in the emulation): work queued on it runs after theirs.
func (d *Device) Stream() uintptr { return d.lib.stream() }

func (d *Device) CopyToDevice(dst, src []float32) {
	d.check("copy to the device", d.lib.upload(view(dst), src[:min(len(src), len(dst))]))
}

func (d *Device) CopyToHost(dst, src []float32) {
	d.check("copy to the host", d.lib.download(dst[:min(len(src), len(dst))], view(src)))
}

func (d *Device) Zero(buf []float32) { d.check("zero", d.lib.zero(view(buf), len(buf))) }

// Memory reports the device memory kediff's buffers and scratch hold, and
// the peak since the last reset (reset sets the peak to what is live).
func (d *Device) Memory(reset bool) (live, peak int64) { return d.lib.mem(reset) }

// Emulated reports whether d is the host emulation (where every kernel
// version runs as the same serial code).
func (d *Device) Emulated() bool { return d.emu }

// RowVariants are the versions of the row kernels (norms, softmax, gradient
// sums) that SetRowVariant chooses from: 1, one thread per row; 2, a thread
// block per row (the default). The host emulation runs both serially.
var RowVariants = []int{1, 2}

// SetRowVariant makes the following ops run row kernels in version v (one of
// RowVariants) and returns the previous version. Every Device of the process
// shares the choice.
func (d *Device) SetRowVariant(v int) (previous int, err error) {
	if p := d.lib.setVariant(0, v); p >= 0 {
		return p, nil
	}
	return 0, fmt.Errorf("kernels/cuda: no row-kernel version %d (have %v)", v, RowVariants)
}

// Sync waits for the device's queued work and reports any asynchronous error.
func (d *Device) Sync() { d.check("sync", d.lib.sync()) }

func (d *Device) Gemm(transA, transB bool, M, N, K int, alpha float32, A []float32, lda int, B []float32, ldb int, beta float32, C []float32, ldc int) {
	d.run(opGemm, [][]float32{A, B, C}, []int{b2i(transA), b2i(transB), M, N, K, lda, ldb, ldc}, []float64{float64(alpha), float64(beta)}, nil)
}

func convInts(s kernels.ConvShape) []int {
	return []int{s.B, s.C, s.H, s.W, s.OC, s.K, s.Stride, s.Pad}
}

func (d *Device) Conv2DForward(out, inp, weight, bias []float32, s kernels.ConvShape) {
	d.run(opConvFwd, [][]float32{out, inp, weight, bias}, convInts(s), nil, nil)
}

func (d *Device) Conv2DBackward(dinp, dweight, dbias, dout, inp, weight []float32, s kernels.ConvShape) {
	d.run(opConvBwd, [][]float32{dinp, dweight, dbias, dout, inp, weight}, convInts(s), nil, nil)
}

func (d *Device) GroupNormForward(out, mean, rstd, inp, weight, bias []float32, B, C, HW, G int, eps float64) {
	d.run(opGroupNormFwd, [][]float32{out, mean, rstd, inp, weight, bias}, []int{B, C, HW, G}, []float64{eps}, nil)
}

func (d *Device) GroupNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, B, C, HW, G int) {
	d.run(opGroupNormBwd, [][]float32{dinp, dweight, dbias, dout, inp, weight, mean, rstd}, []int{B, C, HW, G}, nil, nil)
}

func (d *Device) LayerNormForward(out, mean, rstd, inp, weight, bias []float32, N, C int, eps float64) {
	d.run(opLayerNormFwd, [][]float32{out, mean, rstd, inp, weight, bias}, []int{N, C}, []float64{eps}, nil)
}

func (d *Device) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd []float32, N, C int) {
	d.run(opLayerNormBwd, [][]float32{dinp, dweight, dbias, dout, inp, weight, mean, rstd}, []int{N, C}, nil, nil)
}

func (d *Device) LinearForward(out, inp, weight, bias []float32, N, C, OC int) {
	d.run(opLinearFwd, [][]float32{out, inp, weight, bias}, []int{N, C, OC}, nil, nil)
}

func (d *Device) LinearBackward(dinp, dweight, dbias, dout, inp, weight []float32, N, C, OC int) {
	d.run(opLinearBwd, [][]float32{dinp, dweight, dbias, dout, inp, weight}, []int{N, C, OC}, nil, nil)
}

func (d *Device) SiLUForward(out, inp []float32, n int) {
	d.run(opSiLUFwd, [][]float32{out, inp}, []int{n}, nil, nil)
}
func (d *Device) SiLUBackward(dinp, dout, inp []float32, n int) {
	d.run(opSiLUBwd, [][]float32{dinp, dout, inp}, []int{n}, nil, nil)
}
func (d *Device) GELUForward(out, inp []float32, n int) {
	d.run(opGELUFwd, [][]float32{out, inp}, []int{n}, nil, nil)
}
func (d *Device) GELUBackward(dinp, dout, inp []float32, n int) {
	d.run(opGELUBwd, [][]float32{dinp, dout, inp}, []int{n}, nil, nil)
}

func (d *Device) DropoutForward(out, inp []float32, n int, p float64, seed uint64) {
	d.run(opDropoutFwd, [][]float32{out, inp}, []int{n, int(seed)}, []float64{p}, nil)
}

func (d *Device) DropoutBackward(dinp, dout []float32, n int, p float64, seed uint64) {
	d.run(opDropoutBwd, [][]float32{dinp, dout}, []int{n, int(seed)}, []float64{p}, nil)
}

func (d *Device) SoftmaxForward(out, inp []float32, N, C int) {
	d.run(opSoftmaxFwd, [][]float32{out, inp}, []int{N, C}, nil, nil)
}

func (d *Device) SoftmaxBackward(dinp, dout, out []float32, N, C int) {
	d.run(opSoftmaxBwd, [][]float32{dinp, dout, out}, []int{N, C}, nil, nil)
}

func attnInts(s kernels.AttentionShape) []int { return []int{s.B, s.NH, s.Nq, s.Nk, s.D} }

func (d *Device) AttentionForward(out, att, q, k, v, keyScale, keyMask []float32, s kernels.AttentionShape) {
	d.run(opAttnFwd, [][]float32{out, att, q, k, v, keyScale, keyMask}, attnInts(s), nil, nil)
}

func (d *Device) AttentionBackward(dq, dk, dv, scratch, dout, att, q, k, v, keyScale []float32, s kernels.AttentionShape) {
	d.run(opAttnBwd, [][]float32{dq, dk, dv, scratch, dout, att, q, k, v, keyScale}, attnInts(s), nil, nil)
}

func (d *Device) Permute0213(out, inp []float32, A, B, C, D int) {
	d.run(opPermute, [][]float32{out, inp}, []int{A, B, C, D}, nil, nil)
}

func (d *Device) Permute0213Backward(dinp, dout []float32, A, B, C, D int) {
	d.run(opPermuteBwd, [][]float32{dinp, dout}, []int{A, B, C, D}, nil, nil)
}

func (d *Device) EmbeddingForward(out, table []float32, tokens []int32, V, C int) {
	d.run(opEmbedFwd, [][]float32{out, table}, []int{len(tokens), V, C}, nil, tokens)
}

func (d *Device) EmbeddingBackward(dtable, dout []float32, tokens []int32, V, C int) {
	d.run(opEmbedBwd, [][]float32{dtable, dout}, []int{len(tokens), V, C}, nil, tokens)
}

func (d *Device) TimestepEmbedding(out, t []float32, B, dim int, maxPeriod float64) {
	d.run(opTimestep, [][]float32{out, t}, []int{B, dim}, []float64{maxPeriod}, nil)
}

func (d *Device) UpsampleNearest2xForward(out, inp []float32, N, H, W int) {
	d.run(opUpsampleFwd, [][]float32{out, inp}, []int{N, H, W}, nil, nil)
}

func (d *Device) UpsampleNearest2xBackward(dinp, dout []float32, N, H, W int) {
	d.run(opUpsampleBwd, [][]float32{dinp, dout}, []int{N, H, W}, nil, nil)
}

func (d *Device) AvgPool2xForward(out, inp []float32, N, H, W int) {
	d.run(opPoolFwd, [][]float32{out, inp}, []int{N, H, W}, nil, nil)
}

func (d *Device) AvgPool2xBackward(dinp, dout []float32, N, H, W int) {
	d.run(opPoolBwd, [][]float32{dinp, dout}, []int{N, H, W}, nil, nil)
}

func (d *Device) AddForward(out, a, b []float32, n int) {
	d.run(opAdd, [][]float32{out, a, b}, []int{n}, nil, nil)
}

func (d *Device) Accumulate(dst, src []float32, n int) {
	d.run(opAccumulate, [][]float32{dst, src}, []int{n}, nil, nil)
}

func (d *Device) ScaleShiftForward(out, inp, scale, shift []float32, B, C, HW int) {
	d.run(opScaleShiftFwd, [][]float32{out, inp, scale, shift}, []int{B, C, HW}, nil, nil)
}

func (d *Device) ScaleShiftBackward(dinp, dscale, dshift, dout, inp, scale []float32, B, C, HW int) {
	d.run(opScaleShiftBwd, [][]float32{dinp, dscale, dshift, dout, inp, scale}, []int{B, C, HW}, nil, nil)
}

func (d *Device) ConcatChannelsForward(out, a, b []float32, B, C1, C2, HW int) {
	d.run(opConcatFwd, [][]float32{out, a, b}, []int{B, C1, C2, HW}, nil, nil)
}

func (d *Device) ConcatChannelsBackward(da, db, dout []float32, B, C1, C2, HW int) {
	d.run(opConcatBwd, [][]float32{da, db, dout}, []int{B, C1, C2, HW}, nil, nil)
}

func (d *Device) WeightedMSEForward(epsHat, eps, weight []float32, B, C, HW int) float64 {
	return d.run(opMSEFwd, [][]float32{epsHat, eps, weight}, []int{B, C, HW}, nil, nil)
}

func (d *Device) WeightedMSEBackward(dEpsHat, epsHat, eps, weight []float32, dloss float64, B, C, HW int) {
	d.run(opMSEBwd, [][]float32{dEpsHat, epsHat, eps, weight}, []int{B, C, HW}, []float64{dloss}, nil)
}

func (d *Device) ClipGradNorm(grads []float32, maxNorm float64) float64 {
	if math.IsInf(maxNorm, 1) {
		maxNorm = math.MaxFloat64
	}
	return d.run(opClip, [][]float32{grads}, []int{len(grads)}, []float64{maxNorm}, nil)
}

func (d *Device) AdamWUpdate(params, grads, m, v []float32, cfg kernels.AdamWConfig, step int) {
	d.run(opAdamW, [][]float32{params, grads, m, v}, []int{len(params), step}, []float64{cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Eps, cfg.WeightDecay}, nil)
}

func (d *Device) EMAUpdate(ema, params []float32, decay float64) {
	d.run(opEMA, [][]float32{ema, params}, []int{len(params)}, []float64{decay}, nil)
}
