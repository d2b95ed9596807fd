package unet

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/kediff/kediff/safetensors"
)

// BatchFromTensors builds a model input from tensors as PyTorch saves them:
// x (float, B x in_channels x H x W), timesteps (integer or float, B),
// tokens (integer, B x text_ctx), mask (bool or integer, B x text_ctx) and,
// optionally, keyword (bool, B x text_ctx) and w_a (float, B) for keyword
// scaling (DESIGN.md 1.3).
func BatchFromTensors(in map[string]safetensors.Tensor, c Config) (*Batch, error) {
	need := func(name string) (safetensors.Tensor, error) {
		t, ok := in[name]
		if !ok {
			return t, fmt.Errorf("unet: inputs lack tensor %q (want x, timesteps, tokens, mask)", name)
		}
		return t, nil
	}
	xt, err := need("x")
	if err != nil {
		return nil, err
	}
	if len(xt.Shape) != 4 || xt.Shape[1] != c.InChannels || xt.Shape[2] != c.ImageSize || xt.Shape[3] != c.ImageSize {
		return nil, fmt.Errorf("unet: x has shape %v, the model wants [B %d %d %d]", xt.Shape, c.InChannels, c.ImageSize, c.ImageSize)
	}
	B := xt.Shape[0]
	x, err := xt.Float32s()
	if err != nil {
		return nil, fmt.Errorf("unet: x: %w", err)
	}
	b := &Batch{X: x, Timesteps: make([]float32, B), Tokens: make([]int32, B*c.TextCtx), Mask: make([]bool, B*c.TextCtx)}
	tt, err := need("timesteps")
	if err != nil {
		return nil, err
	}
	if tt.Numel() != B {
		return nil, fmt.Errorf("unet: timesteps has shape %v, want [%d]", tt.Shape, B)
	}
	if ts, err := tt.Ints(); err == nil {
		for i, v := range ts {
			b.Timesteps[i] = float32(v)
		}
	} else if tf, err2 := tt.Float32s(); err2 == nil {
		copy(b.Timesteps, tf)
	} else {
		return nil, fmt.Errorf("unet: timesteps: %w", err)
	}
	seq := func(name string) ([]int64, error) {
		t, ok := in[name]
		if !ok {
			return nil, nil
		}
		if !slices.Equal(t.Shape, []int{B, c.TextCtx}) {
			return nil, fmt.Errorf("unet: %s has shape %v, want [%d %d]", name, t.Shape, B, c.TextCtx)
		}
		v, err := t.Ints()
		if err != nil {
			return nil, fmt.Errorf("unet: %s: %w", name, err)
		}
		return v, nil
	}
	for _, name := range []string{"tokens", "mask"} {
		if _, err := need(name); err != nil {
			return nil, err
		}
	}
	tok, err := seq("tokens")
	if err != nil {
		return nil, err
	}
	for i, v := range tok {
		if v < 0 || v >= int64(c.NVocab) {
			return nil, fmt.Errorf("unet: token %d at %d is outside the vocabulary (n_vocab %d)", v, i, c.NVocab)
		}
		b.Tokens[i] = int32(v)
	}
	mask, err := seq("mask")
	if err != nil {
		return nil, err
	}
	for i, v := range mask {
		b.Mask[i] = v != 0
	}
	kw, err := seq("keyword")
	if err != nil {
		return nil, err
	}
	if kw != nil {
		b.Keyword = make([]bool, len(kw))
		for i, v := range kw {
			b.Keyword[i] = v != 0
		}
	}
	if wt, ok := in["w_a"]; ok {
		if wt.Numel() != B {
			return nil, fmt.Errorf("unet: w_a has shape %v, want [%d]", wt.Shape, B)
		}
		if b.WA, err = wt.Float32s(); err != nil {
			return nil, fmt.Errorf("unet: w_a: %w", err)
		}
	}
	return b, nil
}

// RandomBatch is a batch of random inputs with cfg's shapes and the kinds of
// values the loader gives, for checks and benchmarks: z_t and noise N(0, 1),
// timesteps in [0, 1000), prompts of random length padded out, keyword flags
// on about half the real tokens, w_a on every other sample, and a loss
// weight of 1 or 1.1 per latent cell.
func RandomBatch(cfg Config, B int, seed uint64, wa float32) (in *Batch, noise, weight []float32) {
	rng := rand.New(rand.NewPCG(seed, 3))
	L, S := cfg.TextCtx, cfg.ImageSize
	n := B * cfg.InChannels * S * S
	in = &Batch{X: make([]float32, n), Timesteps: make([]float32, B), WA: make([]float32, B)}
	noise, weight = make([]float32, n), make([]float32, B*S*S)
	for i := range in.X {
		in.X[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for i := range weight {
		weight[i] = 1 + 0.1*float32(rng.IntN(2))
	}
	for b := range B {
		in.Timesteps[b] = float32(rng.IntN(1000))
		length := rng.IntN(L + 1)
		if b%2 == 0 {
			in.WA[b] = wa
		}
		for j := range L {
			in.Tokens = append(in.Tokens, int32(rng.IntN(cfg.NVocab)))
			in.Mask = append(in.Mask, j < length)
			in.Keyword = append(in.Keyword, j < length && rng.IntN(2) == 0)
		}
	}
	return in, noise, weight
}
