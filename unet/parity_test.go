package unet

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
)

// fixturePath is written by tools/train/reference.py (PyTorch, Debian
// python3-torch): /usr/bin/python3 tools/train/reference.py fixture
const fixturePath = "testdata/tiny_ref.safetensors"

// Tolerances on the norm-wise relative error ||go - ref|| / ||ref|| (float32).
const (
	tolOutput = 1e-4
	tolGrad   = 1e-3
	tolLoss   = 1e-4
)

type fixture struct {
	cfg     Config
	t       map[string]safetensors.Tensor
	weights map[string]safetensors.Tensor
	batch   *Batch
	z0      []float32
	noise   []float32
	lossW   []float32
	steps   []int
}

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	ts, meta, err := safetensors.ReadFile(fixturePath)
	if err != nil {
		t.Fatalf("%v (regenerate with: /usr/bin/python3 tools/train/reference.py fixture)", err)
	}
	f := &fixture{t: ts, weights: map[string]safetensors.Tensor{}}
	if err := json.Unmarshal([]byte(meta["config"]), &f.cfg); err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	for name, v := range ts {
		if w, ok := strings.CutPrefix(name, "weight."); ok {
			f.weights[w] = v
		}
	}
	f.z0, f.noise, f.lossW = f.floats(t, "in.z0"), f.floats(t, "in.noise"), f.floats(t, "in.loss_weight")
	tok, mask, kw := f.ints(t, "in.tokens"), f.ints(t, "in.mask"), f.ints(t, "in.keyword")
	b := &Batch{X: f.floats(t, "in.z_t"), Timesteps: f.floats(t, "in.timesteps"), WA: f.floats(t, "in.w_a")}
	for i := range tok {
		b.Tokens = append(b.Tokens, int32(tok[i]))
		b.Mask = append(b.Mask, mask[i] != 0)
		b.Keyword = append(b.Keyword, kw[i] != 0)
	}
	for _, ts := range b.Timesteps {
		f.steps = append(f.steps, int(ts))
	}
	f.batch = b
	return f
}

func (f *fixture) floats(t *testing.T, name string) []float32 {
	t.Helper()
	v, ok := f.t[name]
	if !ok {
		t.Fatalf("fixture has no tensor %q", name)
	}
	x, err := v.Float32s()
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return x
}

func (f *fixture) ints(t *testing.T, name string) []int64 {
	t.Helper()
	x, err := f.t[name].Ints()
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return x
}

func (f *fixture) model(t *testing.T, cfg Config) *Model {
	t.Helper()
	m, err := NewModel(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadStateDict(f.weights); err != nil {
		t.Fatal(err)
	}
	return m
}

// relErr is ||a - b|| / ||b|| (||a - b|| when b is zero).
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func TestParityPyTorch(t *testing.T) {
	f := loadFixture(t)
	m := f.model(t, f.cfg)

	// forward process: z_t = sqrt(abar) z0 + sqrt(1-abar) eps
	zt := make([]float32, len(f.z0))
	diffusion.Default().QSample(zt, f.z0, f.noise, f.steps)
	if e := relErr(zt, f.batch.X); e > 1e-6 {
		t.Errorf("q_sample: rel err %.3e", e)
	}

	m.Params.ZeroGrad()
	loss, err := m.Loss(f.batch, f.noise, f.lossW, true)
	if err != nil {
		t.Fatal(err)
	}
	eps := m.out.out.v
	if e := relErr(eps, f.floats(t, "out.eps")); e > tolOutput {
		t.Errorf("eps: rel err %.3e > %g", e, tolOutput)
	} else {
		t.Logf("eps: rel err %.3e", e)
	}
	refLoss := f.floats(t, "out.loss")[0]
	if e := math.Abs(loss-float64(refLoss)) / math.Abs(float64(refLoss)); e > tolLoss {
		t.Errorf("loss %.7f, want %.7f: rel err %.3e", loss, refLoss, e)
	} else {
		t.Logf("loss %.7f vs %.7f: rel err %.3e", loss, refLoss, e)
	}

	type res struct {
		name string
		err  float64
	}
	var errs []res
	for _, v := range m.Params.Layout.Views() {
		ref := f.floats(t, "grad."+v.Name)
		errs = append(errs, res{v.Name, relErr(m.Params.GradOf(v.Name), ref)})
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].err > errs[j].err })
	for _, r := range errs {
		if r.err > tolGrad || math.IsNaN(r.err) {
			t.Errorf("grad %s: rel err %.3e > %g", r.name, r.err, tolGrad)
		}
	}
	for _, r := range errs[:3] {
		t.Logf("worst grad %s: rel err %.3e", r.name, r.err)
	}
	t.Logf("%d gradients checked", len(errs))

	// ten AdamW steps on the same batch (the loss before each step)
	opt := OptimConfig{AdamW: kernels.AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, GradClip: 1}
	want := f.floats(t, "out.adamw_losses")
	worst := 0.0
	for i, w := range want {
		l, _, err := m.TrainStep(f.batch, f.noise, f.lossW, opt)
		if err != nil {
			t.Fatal(err)
		}
		e := math.Abs(l-float64(w)) / math.Abs(float64(w))
		worst = max(worst, e)
		if e > tolLoss {
			t.Errorf("AdamW step %d: loss %.7f, want %.7f (rel err %.3e)", i, l, w, e)
		}
	}
	t.Logf("ten AdamW losses %.5f .. %.5f, worst rel err %.3e", want[0], want[len(want)-1], worst)
}

// TestParityMaskedPadding checks attention_mask_padding (DESIGN.md 1.2) against
// the PyTorch forward with -inf logits on padded text keys.
func TestParityMaskedPadding(t *testing.T) {
	f := loadFixture(t)
	cfg := f.cfg
	cfg.AttentionMaskPadding = true
	m := f.model(t, cfg)
	eps, err := m.Forward(f.batch)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(eps, f.floats(t, "out.eps_masked")); e > tolOutput {
		t.Errorf("eps with masked padding: rel err %.3e > %g", e, tolOutput)
	} else {
		t.Logf("eps with masked padding: rel err %.3e", e)
	}
	if e := relErr(eps, f.floats(t, "out.eps")); e < 1e-3 {
		t.Errorf("masking padded keys changed eps by only %.3e: mask not applied?", e)
	}
}
