package unet

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/safetensors"
)

// testBatch is a random batch with padding, a CFG-dropped sample (all
// padding), keyword flags and w_a on two samples, plus noise and loss weights.
func testBatch(cfg Config, B int, seed uint64) (*Batch, []float32, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	L, S := cfg.TextCtx, cfg.ImageSize
	n := B * cfg.InChannels * S * S
	b := &Batch{X: make([]float32, n), Timesteps: make([]float32, B), WA: make([]float32, B)}
	noise, w := make([]float32, n), make([]float32, B*S*S)
	for i := range b.X {
		b.X[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = 1
		if rng.IntN(4) == 0 {
			w[i] = 1.1
		}
	}
	for s := range B {
		b.Timesteps[s] = float32(rng.IntN(1000))
		length := rng.IntN(L + 1)
		if s == B-1 {
			length = 0 // CFG-dropped
		}
		if s%2 == 0 {
			b.WA[s] = 0.25
		}
		for j := range L {
			b.Tokens = append(b.Tokens, int32(rng.IntN(cfg.NVocab)))
			b.Mask = append(b.Mask, j < length)
			b.Keyword = append(b.Keyword, j < length && rng.IntN(2) == 0)
		}
	}
	return b, noise, w
}

// randomModel is Init plus noise on every parameter, so GLIDE's zero-initialised
// layers are non-zero and every gradient is non-trivial.
func randomModel(t *testing.T, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := NewModel(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range m.Params.Data {
		m.Params.Data[i] += float32(0.05 * rng.NormFloat64())
	}
	return m
}

func TestCheckpointRoundTrip(t *testing.T) {
	cfg := TinyConfig()
	m := randomModel(t, cfg, 7)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Params.Data, m2.Params.Data) {
		t.Fatal("parameters differ after Save/Load")
	}
	b, _, _ := testBatch(cfg, 2, 3)
	e1, _ := m.Forward(b)
	e2, _ := m2.Forward(b)
	if !slices.Equal(e1, e2) {
		t.Fatal("outputs differ after Save/Load")
	}
}

func TestCheckpointMismatch(t *testing.T) {
	m := randomModel(t, TinyConfig(), 1)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, WeightsFile)
	sd := m.StateDict()

	t.Run("wrong_shape", func(t *testing.T) {
		d := t.TempDir()
		cfg := TinyConfig()
		cfg.ModelChannels = 32
		if err := WriteConfig(filepath.Join(d, ConfigFile), cfg); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(weights)
		os.WriteFile(filepath.Join(d, WeightsFile), data, 0o644)
		_, err := Load(d, nil)
		if err == nil || !strings.Contains(err.Error(), "wrong shape") || !strings.Contains(err.Error(), "time_embed.0.weight: checkpoint [64 16], model [128 32]") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing_and_unexpected", func(t *testing.T) {
		d := t.TempDir()
		WriteConfig(filepath.Join(d, ConfigFile), TinyConfig())
		bad := map[string]safetensors.Tensor{}
		for k, v := range sd {
			bad[k] = v
		}
		delete(bad, "out.2.bias")
		bad["out.3.bias"] = sd["out.2.bias"]
		if err := safetensors.WriteFile(filepath.Join(d, WeightsFile), bad, nil); err != nil {
			t.Fatal(err)
		}
		_, err := Load(d, nil)
		if err == nil || !strings.Contains(err.Error(), "1 missing: out.2.bias") || !strings.Contains(err.Error(), "1 unexpected: out.3.bias") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no_weights", func(t *testing.T) {
		d := t.TempDir()
		WriteConfig(filepath.Join(d, ConfigFile), TinyConfig())
		if _, err := Load(d, nil); err == nil || !strings.Contains(err.Error(), WeightsFile) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad_config", func(t *testing.T) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, ConfigFile), []byte(`{"model_channel": 3}`), 0o644)
		if _, err := Load(d, nil); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestInitZeroOutput checks GLIDE's zero_module init: a fresh model predicts 0.
func TestInitZeroOutput(t *testing.T) {
	cfg := TinyConfig()
	m, _ := NewModel(cfg, nil)
	m.Init(1)
	b, _, _ := testBatch(cfg, 2, 1)
	eps, err := m.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range eps {
		if v != 0 {
			t.Fatalf("fresh model output %v, want 0 (zero-initialised out.2)", v)
		}
	}
}

// altConfig exercises the branches the fixture does not: conv resampling,
// additive (not scale-shift) conditioning, three levels, two ResBlocks per
// level, attention at ds 1 and 4, no final LayerNorm, no padding embedding.
func altConfig() Config {
	c := TinyConfig()
	c.ChannelMult = []int{1, 2, 2}
	c.NumResBlocks = 2
	c.AttentionResolution = []int{1, 4}
	c.NumHeadChannels = 8
	c.ResblockUpdown = false
	c.UseScaleShiftNorm = false
	c.XFFinalLN = false
	c.XFPadding = false
	c.XFLayers = 1
	c.XFHeads = 4
	return c
}

// TestPyTorchLoadsGoCheckpoint writes Go checkpoints and runs
// tools/train/reference.py check: PyTorch builds the model from config.json,
// loads model.safetensors with strict=True, and compares eps, the loss and
// every gradient with Go's.
func TestPyTorchLoadsGoCheckpoint(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import torch and numpy (%v); CI needs Debian's python3-torch", py, err)
		}
		t.Skipf("%s cannot import torch and numpy (%v): install Debian's python3-torch to run this test", py, err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"tiny", TinyConfig()}, {"alt", altConfig()}} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tc.cfg, 11)
			b, noise, w := testBatch(tc.cfg, 3, 5)
			// a few AdamW steps so the weights are not F16-exact
			for range 2 {
				if _, _, err := m.TrainStep(b, noise, w, DefaultOptim()); err != nil {
					t.Fatal(err)
				}
			}
			m.Params.ZeroGrad()
			loss, err := m.Loss(b, noise, w, true)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			B, L, S := 3, tc.cfg.TextCtx, tc.cfg.ImageSize
			in := map[string]safetensors.Tensor{
				"z_t":         safetensors.F32([]int{B, tc.cfg.InChannels, S, S}, b.X),
				"timesteps":   safetensors.F32([]int{B}, b.Timesteps),
				"w_a":         safetensors.F32([]int{B}, b.WA),
				"noise":       safetensors.F32([]int{B, tc.cfg.OutChannels, S, S}, noise),
				"loss_weight": safetensors.F32([]int{B, S, S}, w),
				"eps":         safetensors.F32([]int{B, tc.cfg.OutChannels, S, S}, m.out.out.v),
				"loss":        safetensors.F32([]int{1}, []float32{float32(loss)}),
				"tokens":      {DType: "I32", Shape: []int{B, L}, Data: int32Bytes(b.Tokens)},
				"mask":        {DType: "U8", Shape: []int{B, L}, Data: boolBytes(b.Mask)},
				"keyword":     {DType: "U8", Shape: []int{B, L}, Data: boolBytes(b.Keyword)},
			}
			for _, v := range m.Params.Layout.Views() {
				in["grad."+v.Name] = safetensors.F32(v.Shape, m.Params.GradOf(v.Name))
			}
			if err := safetensors.WriteFile(filepath.Join(dir, "inputs.safetensors"), in, nil); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "../tools/train/reference.py", "check", dir)
			out, err := cmd.CombinedOutput()
			t.Logf("reference.py check:\n%s", out)
			if err != nil {
				t.Fatalf("PyTorch check failed: %v", err)
			}
		})
	}
}

func int32Bytes(v []int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := uint32(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}

func boolBytes(v []bool) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return b
}
