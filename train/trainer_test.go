package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"image/png"

	"math"
	"slices"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/internal/cudaemu"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

func tinyTrainConfig() TrainConfig {
	c := DefaultTrainConfig()
	mc := unet.TinyConfig()
	c.ModelConfig = &mc
	c.Model = ""
	c.Steps, c.Batch, c.Warmup, c.LR = 6, 2, 2, 1e-3
	c.CheckpointEvery = 3
	c.ShuffleBuffer = 4
	return c
}

func readLosses(t *testing.T, dir string) []Metrics {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []Metrics
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// sameAsUninterrupted checks that a run interrupted and resumed in out
// logged the losses and grad norms of the uninterrupted run in full, and
// ended on its weights, optimizer state and EMA, byte for byte.
func sameAsUninterrupted(t *testing.T, full, out string) {
	t.Helper()
	want, got := readLosses(t, full), readLosses(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d metrics lines after resume, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Step != want[i].Step || got[i].Loss != want[i].Loss || got[i].GradNorm != want[i].GradNorm {
			t.Errorf("step %d: loss %v grad %v, uninterrupted %v %v", want[i].Step, got[i].Loss, got[i].GradNorm, want[i].Loss, want[i].GradNorm)
		}
	}
	for _, f := range []string{unet.WeightsFile, OptimizerFile, EMAFile} {
		a, _ := os.ReadFile(filepath.Join(full, f))
		b, _ := os.ReadFile(filepath.Join(out, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the uninterrupted run's after the resume", f)
		}
	}
}

func TestTrainStepDecreasesLoss(t *testing.T) {
	m, err := unet.NewModel(unet.TinyConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	tb := collectOne(t)
	d := diffusion.Default()
	ts := []int{100, 500}
	noise := make([]float32, len(tb.Latents))
	for i := range noise {
		noise[i] = float32((i*7919)%13)/6 - 1
	}
	xt := make([]float32, len(noise))
	d.QSample(xt, tb.Latents, noise, ts)
	in := &unet.Batch{X: xt, Timesteps: []float32{100, 500}, Tokens: tb.Tokens, Mask: tb.Mask, WA: tb.WA, Keyword: tb.Keyword}
	opt := unet.DefaultOptim()
	opt.AdamW.LR = 1e-3
	first, _, err := m.TrainStep(in, noise, tb.Weight, opt)
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	for range 15 {
		if last, _, err = m.TrainStep(in, noise, tb.Weight, opt); err != nil {
			t.Fatal(err)
		}
	}
	if !(last < first*0.9) {
		t.Fatalf("loss %v -> %v, did not decrease", first, last)
	}
}

func collectOne(t *testing.T) *TrainBatch {
	data := writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 8, nanRow: -1})
	cfg := loaderCfg(data)
	cfg.Batch, cfg.TextCtx, cfg.CFGDrop = 2, 8, 0
	_, bs := collectKeys(t, cfg, LoaderState{}, 1)
	return bs[0]
}

func TestTrainResumeBitIdentical(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 2, rows: 5, size: 8, nanRow: -1})
	cfg := tinyTrainConfig()
	cfg.GradAccum, cfg.EMA = 2, 0.9
	ctx := context.Background()
	full := t.TempDir()
	tr, err := NewTrainer(ctx, cfg, data, full, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := readLosses(t, full)
	if len(want) != 6 {
		t.Fatalf("%d metrics lines", len(want))
	}
	for _, f := range []string{unet.ConfigFile, unet.WeightsFile, OptimizerFile, EMAFile, StateFile, VocabFile, TrainConfigFile, LossPlotFile} {
		if _, err := os.Stat(filepath.Join(full, f)); err != nil {
			t.Error(err)
		}
	}

	// killed after step 4 (checkpoint at 3), then resumed
	part := t.TempDir()
	kctx, kill := context.WithCancel(ctx)
	tr, err = NewTrainer(ctx, cfg, data, part, "", false)
	if err != nil {
		t.Fatal(err)
	}
	tr.OnStep = func(m Metrics) {
		if m.Step == 4 {
			kill()
		}
	}
	if err := tr.Run(kctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: %v", err)
	}
	tr, err = NewTrainer(ctx, cfg, data, part, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if tr.State.Step != 3 {
		t.Fatalf("resumed at step %d, want 3", tr.State.Step)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sameAsUninterrupted(t, full, part)

	// config/checkpoint mismatch
	bad := cfg
	mc := unet.TinyConfig()
	mc.ModelChannels = 32
	bad.ModelConfig = &mc
	if _, err := NewTrainer(ctx, bad, data, part, "", true); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("mismatch: %v", err)
	}

	// expert N of n from the base checkpoint: t only in block N, text encoder frozen
	ecfg := cfg
	ecfg.Expert, ecfg.Experts, ecfg.Steps, ecfg.EMA = 3, 10, 3, 0
	if _, err := NewTrainer(ctx, ecfg, data, t.TempDir(), filepath.Join(t.TempDir(), "nope"), false); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing base: %v", err)
	}
	if _, err := NewTrainer(ctx, ecfg, data, t.TempDir(), "", false); err == nil {
		t.Error("expert without base accepted")
	}
	ex, err := NewTrainer(ctx, ecfg, data, t.TempDir(), full, false)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), ex.Model.Params.Get("token_embedding.weight")...)
	var ts []int
	ex.OnT = func(b []int) { ts = append(ts, b...) }
	if err := ex.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3*2*2 {
		t.Fatalf("%d timesteps recorded", len(ts))
	}
	for _, v := range ts {
		if v < 300 || v >= 400 {
			t.Errorf("expert 3 of 10 drew t = %d", v)
		}
	}
	after := ex.Model.Params.Get("token_embedding.weight")
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("expert training changed the frozen text encoder")
		}
	}
	if ex.Model.Params.Get("out.2.weight")[0] == 0 && ex.Model.Params.Get("out.2.bias")[0] == 0 {
		t.Error("expert did not train the U-Net")
	}
	mcb := unet.TinyConfig()
	mcb.XFLayers = 1
	ecfg.ModelConfig = &mcb
	if _, err := NewTrainer(ctx, ecfg, data, t.TempDir(), full, false); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("expert config mismatch: %v", err)
	}
}

func TestTrainNaNStops(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 8, nanRow: 2})
	cfg := tinyTrainConfig()
	cfg.ShuffleBuffer, cfg.CheckpointEvery = 1, 0
	out := t.TempDir()
	tr, err := NewTrainer(context.Background(), cfg, data, out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "not finite") {
		t.Fatalf("NaN loss: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, StateFile))
	if err != nil {
		t.Fatal("no checkpoint saved:", err)
	}
	var st TrainState
	json.Unmarshal(raw, &st)
	if st.Step != 1 {
		t.Errorf("checkpoint at step %d, want 1", st.Step)
	}
}

func TestReadTrainConfig(t *testing.T) {
	for _, f := range []string{"configs/tiny.json"} {
		c, err := ReadTrainConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.ModelConfig.ImageSize != 16 || c.Expert != -1 {
			t.Errorf("%s: %+v", f, c)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.json"), []byte(`{"model":"tiny","stepz":3}`), 0o644)
	if _, err := ReadTrainConfig(filepath.Join(dir, "c.json")); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestWriteShardsForCLI(t *testing.T) {
	dir := os.Getenv("KEDIFF_WRITE_SHARDS")
	if dir == "" {
		t.Skip()
	}
	url := writeTestShards(t, shardOpts{shards: 2, rows: 8, size: 8, nanRow: -1})
	if err := os.CopyFS(dir, os.DirFS(strings.TrimPrefix(url, "file://"))); err != nil {
		t.Fatal(err)
	}
}

// TestSampleGrids: grids drawn every two steps (base and expert) are real
// PNGs of every prompt, and drawing them changes nothing in training: the
// losses, gradient norms and weights are bit-identical to a run without.
func TestSampleGrids(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 1, rows: 6, size: 8, nanRow: -1})
	ctx := context.Background()
	cfg := tinyTrainConfig()
	cfg.Steps, cfg.CheckpointEvery = 4, 0
	prompts := filepath.Join(t.TempDir(), "prompts.txt")
	os.WriteFile(prompts, []byte("a red apple\n\napple\n"), 0o644)
	train := func(cfg TrainConfig, expert bool, base string) (string, []Metrics) {
		out := t.TempDir()
		tr, err := NewTrainer(ctx, cfg, data, out, base, false)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var grids []string
		tr.OnGrid = func(step int, path string) { grids = append(grids, path) }
		if err := tr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if cfg.SampleEvery > 0 {
			if len(grids) != 2 {
				t.Fatalf("%d grids in 4 steps with sample_every 2", len(grids))
			}
			for _, g := range grids {
				f, err := os.Open(g)
				if err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(f)
				f.Close()
				if err != nil || img.Bounds().Dx() != 2*64+2 || img.Bounds().Dy() != 64 {
					t.Fatalf("grid %s: %v %v, want two 64x64 images", g, err, img.Bounds())
				}
			}
		}
		return out, readLosses(t, out)
	}
	plain, want := train(cfg, false, "")
	grid := cfg
	grid.SampleEvery, grid.SamplePrompts, grid.SampleDecoder, grid.SampleSteps = 2, prompts, "../vae/testdata/model", 3
	withGrids, got := train(grid, false, "")
	for i := range want {
		if got[i].Loss != want[i].Loss || got[i].GradNorm != want[i].GradNorm {
			t.Errorf("step %d: loss %v grad %v with grids, %v %v without", want[i].Step, got[i].Loss, got[i].GradNorm, want[i].Loss, want[i].GradNorm)
		}
	}
	for _, f := range []string{unet.WeightsFile, OptimizerFile} {
		a, _ := os.ReadFile(filepath.Join(plain, f))
		b, _ := os.ReadFile(filepath.Join(withGrids, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs when grids are drawn", f)
		}
	}
	// an expert's grid takes the base's steps outside its block
	ex := grid
	ex.Expert, ex.Experts = 3, 10
	train(ex, true, plain)
	ex.SampleDecoder = ""
	if _, err := NewTrainer(ctx, ex, data, t.TempDir(), plain, false); err == nil || !strings.Contains(err.Error(), "sample_decoder") {
		t.Errorf("grids without a decoder: %v", err)
	}
}

// TestTrainOnEmulatedDevice trains through kernels/cuda's device path (the
// host emulation of libkediff_cuda: device-only buffers, the CUDA kernels'
// code) and checks it against the CPU: the same losses and weights in fp32
// (1e-4), close ones with bf16 activations (2e-2), an expert with its frozen
// text encoder, and checkpoints that resume across the two backends.
func TestTrainOnEmulatedDevice(t *testing.T) {
	cudaemu.Lib(t)
	data := writeTestShards(t, shardOpts{shards: 2, rows: 5, size: 8, nanRow: -1})
	ctx := context.Background()
	run := func(cfg TrainConfig, out, base string, resume bool) []Metrics {
		t.Helper()
		tr, err := NewTrainer(ctx, cfg, data, out, base, resume)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return readLosses(t, out)
	}
	device := func(bf16 bool) kernels.Backend {
		d, err := cuda.Open(cuda.Options{Emulate: true, BF16: bf16})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	weights := func(dir string) []float32 {
		ts, _, err := safetensors.ReadFile(filepath.Join(dir, unet.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range ts {
			names = append(names, n)
		}
		slices.Sort(names)
		var all []float32
		for _, n := range names {
			v, _ := ts[n].Float32s()
			all = append(all, v...)
		}
		return all
	}
	rel := func(a, b []float32) float64 {
		var num, den float64
		for i := range b {
			d := float64(a[i]) - float64(b[i])
			num += d * d
			den += float64(b[i]) * float64(b[i])
		}
		return math.Sqrt(num / den)
	}
	cfg := tinyTrainConfig()
	cfg.GradAccum, cfg.EMA = 2, 0.9
	cpuDir := t.TempDir()
	want := run(cfg, cpuDir, "", false)
	for _, bf := range []bool{false, true} {
		tol := 1e-4
		if bf {
			tol = 2e-2
		}
		dc := cfg
		dc.Backend = device(bf)
		dir := t.TempDir()
		got := run(dc, dir, "", false)
		for i := range want {
			if e := math.Abs(got[i].Loss-want[i].Loss) / want[i].Loss; !(e <= tol) {
				t.Errorf("bf16 %v, step %d: loss %.6f on the device, %.6f on the CPU (rel %.2g > %g)", bf, i+1, got[i].Loss, want[i].Loss, e, tol)
			}
		}
		if e := rel(weights(dir), weights(cpuDir)); !(e <= tol) {
			t.Errorf("bf16 %v: weights after %d steps differ by %.2g (> %g)", bf, len(want), e, tol)
		} else {
			t.Logf("bf16 %v: losses and weights within %g of the CPU run (weights %.2g)", bf, tol, e)
		}
	}

	// an expert from the CPU base, on the device: text encoder untouched
	ex := cfg
	ex.Expert, ex.Experts, ex.Steps, ex.EMA = 3, 10, 3, 0
	exCPU, exDev := t.TempDir(), t.TempDir()
	wantEx := run(ex, exCPU, cpuDir, false)
	ex.Backend = device(false)
	gotEx := run(ex, exDev, cpuDir, false)
	for i := range wantEx {
		if e := math.Abs(gotEx[i].Loss-wantEx[i].Loss) / wantEx[i].Loss; !(e <= 1e-4) {
			t.Errorf("expert step %d: loss %.6f on the device, %.6f on the CPU", i+1, gotEx[i].Loss, wantEx[i].Loss)
		}
	}
	baseTS, _, _ := safetensors.ReadFile(filepath.Join(cpuDir, unet.WeightsFile))
	exTS, _, _ := safetensors.ReadFile(filepath.Join(exDev, unet.WeightsFile))
	for name, v := range baseTS {
		if unet.IsTextEncoder(name) && !bytes.Equal(v.Data, exTS[name].Data) {
			t.Errorf("the device expert changed the frozen %s", name)
		}
	}

	// half on the device (bf16), resumed on the CPU, and the reverse
	for _, first := range []bool{true, false} {
		half := cfg
		half.Steps = 3
		if first {
			half.Backend = device(true)
		}
		dir := t.TempDir()
		run(half, dir, "", false)
		rest := cfg
		if !first {
			rest.Backend = device(true)
		}
		got := run(rest, dir, "", true)
		if len(got) != len(want) {
			t.Fatalf("%d metrics after the resume, want %d", len(got), len(want))
		}
		for i := 3; i < len(want); i++ {
			if e := math.Abs(got[i].Loss-want[i].Loss) / want[i].Loss; !(e <= 2e-2) {
				t.Errorf("resumed (device first %v), step %d: loss %.6f, %.6f on the CPU throughout", first, i+1, got[i].Loss, want[i].Loss)
			}
		}
	}
}
