package repro

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/kediff/kediff/pipelines"
	"github.com/kediff/kediff/synth"
)

// heldOut is the evaluation set: prompts of held-out scenes (alternately
// Chinese and English) and renders of held-out scenes, the fidelity
// reference. Neither is seen in training or used to choose anything.
type heldOut struct {
	Prompts []string
	Refs    []image.Image
}

func (r *run) heldOut() heldOut {
	c := r.cfg
	var h heldOut
	for k := range max(c.HeldOut, c.References) {
		img, sc := synth.Render(rand.New(rand.NewPCG(c.HeldOutSeed, uint64(k))), r.synthOptions())
		if k < c.References {
			h.Refs = append(h.Refs, img)
		}
		if k < c.HeldOut {
			lang := "zh"
			if k%2 == 1 {
				lang = "en"
			}
			h.Prompts = append(h.Prompts, sc.Caption(lang))
		}
	}
	return h
}

func (r *run) synthOptions() synth.Options {
	c := r.cfg
	return synth.Options{Width: c.ImageSize, Height: c.ImageSize, Lang: "mixed", Photo: true, ObjectMix: c.ObjectMix, Quality: 95}
}

// trainInput writes the training scenes as WebDataset tars (once).
func (r *run) trainInput(ctx context.Context) (string, error) {
	dir := r.path("data", "input")
	done := filepath.Join(dir, ".done")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	opt := r.synthOptions()
	opt.Samples, opt.PerShard, opt.Seed = r.cfg.TrainSamples, 500, r.cfg.TrainSeed
	sum, err := synth.Generate(ctx, dir, opt)
	if err != nil {
		return "", err
	}
	r.logf("data: %d training scenes in %d shards (%s)", sum.Samples, len(sum.Shards), dir)
	return dir, os.WriteFile(done, nil, 0o644)
}

// A knowledge set is one preprocessing of the training scenes: which of the
// paper's knowledge sources its shards carry.
type knowledge struct {
	Name string
	Doc  string
	// Text: POS special tokens and keyword attention for a fraction of the
	// samples; Object: detector loss masks and appended labels; Captions:
	// generated captions replacing the prompt for a fraction.
	Text, Object, Captions bool
}

var knowledgeSets = []knowledge{
	{"baseline", "no knowledge: captions as written, uniform loss, no keyword attention", false, false, false},
	{"textual", "+ textual: POS special tokens and keyword attention (w_a) on a fraction of the samples", true, false, false},
	{"object", "+ object: detector loss masks (w_l) and unmentioned detected labels appended to the caption", false, true, false},
	{"visual", "+ visual: object knowledge plus generated captions replacing the prompt for a fraction", false, true, true},
	{"all", "+ all: textual and visual knowledge together", true, true, true},
}

// preprocess writes the shards of one knowledge set (skipped when a
// previous run completed them: the pipeline's own resume).
func (r *run) preprocess(ctx context.Context, input string, k knowledge) (string, error) {
	cfg, err := pipelines.LoadConfig(r.repo(r.cfg.Preprocess))
	if err != nil {
		return "", err
	}
	f := r.cfg.Fraction
	cfg.Image.Size = r.cfg.ImageSize
	cfg.POS.Fraction = 0
	if k.Text {
		cfg.POS.Fraction = f
	}
	cfg.Detect.Enabled, cfg.Detect.Fraction = k.Object, f
	cfg.Captioner.Enabled, cfg.Captioner.Fraction = k.Captions, f
	cfg.VAE.Enabled = true
	out := r.path("data", k.Name)
	sum, err := pipelines.Preprocess(ctx, pipelines.PreprocessOptions{Input: input, Output: out, Config: cfg, Logger: r.quietLogger()})
	if err != nil {
		return "", fmt.Errorf("repro: preprocess %s: %w", k.Name, err)
	}
	if sum.Processed > 0 {
		r.logf("preprocess %s: %d rows, %d rejects in %.0f s", k.Name, sum.Written, sum.Rejected, sum.Duration.Seconds())
	}
	return out, nil
}
