// Package testckpt writes small checkpoint folders for tests of the packages
// and commands that read them (sample, cmd/kediff): random or constant
// models saved as kediff train saves them.
package testckpt

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
)

// Vocab is a small vocabulary (special tokens, a few English words and
// Chinese characters) that fits TinyConfig's 64 ids.
func Vocab(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.New(append(tokenizer.SpecialTokens(), "a", "red", "blue", "circle", "square", "left", "of", "红", "色", "的", "圆", "蓝", "方", "块"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Random is a freshly initialised model with N(0, amp^2) noise on every
// parameter (GLIDE's zero-initialised layers included).
func Random(t testing.TB, cfg unet.Config, seed uint64, amp float64) *unet.Model {
	t.Helper()
	m, err := unet.NewModel(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range m.Params.Data {
		m.Params.Data[i] += float32(amp * rng.NormFloat64())
	}
	return m
}

// ShareTextEncoder copies from's text encoder into every model of to, as
// expert fine-tuning from one base leaves it.
func ShareTextEncoder(from *unet.Model, to ...*unet.Model) {
	for _, v := range from.Params.Layout.Views() {
		if unet.IsTextEncoder(v.Name) {
			for _, m := range to {
				copy(m.Params.Get(v.Name), from.Params.Get(v.Name))
			}
		}
	}
}

// Constant predicts eps = (c, c+0.1, c+0.2, ...) per channel for any input:
// every weight is zero but the output convolution's bias, so all such models
// share one (all-zero) text encoder.
func Constant(t testing.TB, cfg unet.Config, c float32) *unet.Model {
	t.Helper()
	m, err := unet.NewModel(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Params.Get("out.2.bias")
	for i := range b {
		b[i] = c + 0.1*float32(i)
	}
	return m
}

// Write saves m into dir as kediff train does: config.json,
// model.safetensors, vocab.txt, train_config.json (DESIGN.md's default
// schedule) and state.json (expert of experts; -1: a base model).
func Write(t testing.TB, dir string, m *unet.Model, tok *tokenizer.Tokenizer, expert, experts int) string {
	t.Helper()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := tok.WriteVocabFile(filepath.Join(dir, "vocab.txt")); err != nil {
		t.Fatal(err)
	}
	tc, _ := json.Marshal(struct {
		diffusion.ScheduleConfig
		Steps int `json:"steps"`
	}{diffusion.DefaultScheduleConfig(), 10})
	st, _ := json.Marshal(map[string]any{"step": 10, "expert": expert, "experts": experts})
	for name, b := range map[string][]byte{"train_config.json": tc, "state.json": st} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
