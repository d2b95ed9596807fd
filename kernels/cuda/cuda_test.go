//go:build cgo

package cuda

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/cudaemu"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/unet"
)

func emu(t testing.TB, bf16 bool) *Device {
	t.Helper()
	cudaemu.Lib(t)
	d, err := Open(Options{Emulate: true, BF16: bf16})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// modelConfigs cover every branch of the U-Net: scale-shift and additive
// conditioning, ResBlock and convolution resampling, attention at several
// levels, dropout, masked padding keys, with and without the final LayerNorm
// and padding embedding.
func modelConfigs() []unet.Config {
	a := unet.TinyConfig()
	a.Dropout = 0.2
	a.AttentionMaskPadding = true
	b := unet.TinyConfig()
	b.ChannelMult = []int{1, 2, 2}
	b.NumResBlocks = 2
	b.AttentionResolution = []int{1, 4}
	b.NumHeadChannels = 8
	b.ResblockUpdown = false
	b.UseScaleShiftNorm = false
	b.XFFinalLN = false
	b.XFPadding = false
	b.XFLayers = 1
	b.XFHeads = 4
	return []unet.Config{a, b}
}

// record runs one training step of each config on a Recorder and returns
// every distinct kernel call it made.
func record(t testing.TB, B int) []Case {
	t.Helper()
	rec := NewRecorder()
	for i, c := range modelConfigs() {
		m, err := unet.NewModel(c, rec)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(uint64(i + 1))
		m.Train = true
		in, noise, w := unet.RandomBatch(c, B, uint64(i), 0.25)
		opt := unet.DefaultOptim()
		opt.AdamW.WeightDecay = 0.1
		if _, _, err := m.TrainStep(in, noise, w, opt); err != nil {
			t.Fatal(err)
		}
		rec.EMAUpdate(m.Params.M, m.Params.Data, 0.9)
	}
	return rec.Cases()
}

// TestEmulatedKernelsMatchCPU checks every kernel of libkediff_cuda, run by
// its host emulation (the same CUDA C++ source, the same C ABI), against
// package kernels at the shapes two small U-Nets use in a training step, in
// fp32 and with bf16 activations.
func TestEmulatedKernelsMatchCPU(t *testing.T) {
	cases := record(t, 2)
	ops := map[string]bool{}
	for _, c := range cases {
		ops[c.Op] = true
	}
	// every Backend op the model uses was recorded
	for _, want := range []string{"Conv2DForward", "Conv2DBackward", "GroupNormForward", "GroupNormBackward", "LayerNormForward", "LayerNormBackward",
		"LinearForward", "LinearBackward", "SiLUForward", "SiLUBackward", "GELUForward", "GELUBackward", "DropoutForward", "DropoutBackward",
		"AttentionForward", "AttentionBackward", "Permute0213", "Permute0213Backward", "EmbeddingForward", "EmbeddingBackward",
		"TimestepEmbedding", "UpsampleNearest2xForward", "UpsampleNearest2xBackward", "AvgPool2xForward", "AvgPool2xBackward",
		"AddForward", "Accumulate", "ScaleShiftForward", "ScaleShiftBackward", "ConcatChannelsForward", "ConcatChannelsBackward",
		"WeightedMSEForward", "WeightedMSEBackward", "ClipGradNorm", "AdamWUpdate", "EMAUpdate"} {
		if !ops[want] {
			t.Errorf("no %s call recorded", want)
		}
	}
	// ops the U-Net does not call, at shapes of their own
	rec := NewRecorder()
	x, y := make([]float32, 6*10), make([]float32, 6*10)
	rec.SoftmaxForward(y, x, 6, 10)
	rec.SoftmaxBackward(make([]float32, 60), x, y, 6, 10)
	rec.Gemm(false, true, 5, 7, 3, 1, make([]float32, 15), 3, make([]float32, 21), 3, 1, make([]float32, 35), 7)
	rec.Gemm(true, false, 5, 7, 3, 0.5, make([]float32, 15), 5, make([]float32, 21), 7, 0, make([]float32, 35), 7)
	cases = append(cases, rec.Cases()...)
	t.Logf("%d kernel cases", len(cases))
	// row kernels in both versions: one serial lane per row, and a block of
	// lanes (host threads) that stride over the row and reduce together
	for _, v := range RowVariants {
		for _, bf := range []bool{false, true} {
			d := emu(t, bf)
			prev, err := d.SetRowVariant(v)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			res := Check(d, cases, bf, 1, &sb)
			d.SetRowVariant(prev)
			for _, r := range res {
				if !r.OK {
					t.Errorf("row kernels v%d, bf16 %v: %s: rel err %.3g > %.0e (%s)", v, bf, r.Case, r.Err, r.Tol, r.Detail)
				}
			}
			t.Logf("row kernels v%d, bf16 %v: %s", v, bf, Summary(res))
		}
	}
	if _, err := emu(t, false).SetRowVariant(3); err == nil {
		t.Error("row-kernel version 3 accepted")
	}
}

// TestCheckCatchesWrongKernels: the checker itself fails a kernel that
// writes nothing, or the wrong values.
func TestCheckCatchesWrongKernels(t *testing.T) {
	d := emu(t, false)
	n := 40
	base := Case{Op: "SiLUForward", Key: "n40", Args: []Arg{a(n, argOut, kernels.ForActivations), a(n, argIn, kernels.ForActivations)}}
	unwritten := base
	unwritten.Run = func(be kernels.Backend, b [][]float32) float64 {
		if _, ok := be.(*kernels.CPU); ok {
			be.SiLUForward(b[0], b[1], n)
		}
		return 0
	}
	wrong := base
	wrong.Run = func(be kernels.Backend, b [][]float32) float64 {
		be.SiLUForward(b[0], b[1], n)
		if _, ok := be.(*kernels.CPU); !ok {
			be.GELUForward(b[0], b[1], n)
		}
		return 0
	}
	for _, c := range []Case{unwritten, wrong} {
		if r := Check(d, []Case{c}, false, 1, nil); r[0].OK {
			t.Errorf("a broken kernel passed: %+v", r[0])
		}
	}
}

// TestDeviceErrors: bad arguments and a missing library fail clearly.
func TestDeviceErrors(t *testing.T) {
	d := emu(t, false)
	host := make([]float32, 8)
	buf := d.Alloc(8, kernels.ForActivations)
	defer d.Free(buf)
	catch := func(fn func()) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err, _ = p.(error)
			}
		}()
		fn()
		return nil
	}
	var de *Error
	if err := catch(func() { d.SiLUForward(buf, host, 8) }); !errors.As(err, &de) || !strings.Contains(err.Error(), "not a buffer of this device") {
		t.Errorf("host slice as a device argument: %v", err)
	}
	if err := catch(func() { d.SiLUForward(buf, buf, 9) }); err == nil || !strings.Contains(err.Error(), "overrun") {
		t.Errorf("overrun: %v", err)
	}
	if err := catch(func() { d.EmbeddingForward(buf, buf, []int32{3, 99}, 4, 2) }); err == nil || !strings.Contains(err.Error(), "token 99") {
		t.Errorf("token outside the vocabulary: %v", err)
	}
	if _, err := Open(Options{Library: filepath.Join(t.TempDir(), "nope.so")}); err == nil || !strings.Contains(err.Error(), "build-cuda") {
		t.Errorf("missing library: %v", err)
	}
	if d.DType(buf) != "fp32" || emu(t, true).DType(emu(t, true).Alloc(4, kernels.ForActivations)) != "bf16" {
		t.Error("element types: want fp32 activations in fp32 mode, bf16 in bf16 mode")
	}
	round := make([]float32, 8)
	vals := []float32{1, -2, 3.5, 0, 1e-3, 7, 8, 9}
	d.CopyToDevice(buf, vals)
	d.CopyToHost(round, buf)
	for i := range vals {
		if round[i] != vals[i] {
			t.Fatalf("round trip %v -> %v", vals, round)
		}
	}
}
