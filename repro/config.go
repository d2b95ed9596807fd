package repro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// Config sizes a run. FullConfig is the 2-hour run on 2 cores, QuickConfig
// the minutes-long smoke run that CI executes.
type Config struct {
	// Train is the training config (a kediff train JSON, relative to the
	// repository root); steps, w_a, w_l and experts are set per variant.
	Train string `json:"train"`
	// Preprocess is the preprocessing config whose model stages the
	// knowledge sets switch on and off (pipelines/sample.yaml: the fixture
	// detector, captioner and autoencoder).
	Preprocess string `json:"preprocess"`
	// Detector is the synth shape detector the alignment checker runs;
	// Features the fidelity network (an ONNX with a [N, D] output).
	Detector string `json:"detector"`
	Features string `json:"features"`
	// Decoder turns latents into images.
	Decoder string `json:"decoder"`

	ImageSize    int        `json:"image_size"`    // synth scenes, pixels (the fixtures' 128)
	TrainSamples int        `json:"train_samples"` // synth training scenes
	ObjectMix    [3]float64 `json:"object_mix"`    // weights of 1-, 2- and 3-object scenes
	HeldOut      int        `json:"held_out"`      // held-out prompts
	References   int        `json:"references"`    // held-out renders for the Fréchet distance
	TrainSeed    uint64     `json:"train_seed"`    // synth seed of the training scenes
	HeldOutSeed  uint64     `json:"held_out_seed"` // synth seed of the held-out scenes
	Steps        int        `json:"steps"`         // base training steps per variant
	ExpertSteps  int        `json:"expert_steps"`  // fine-tuning steps per expert count, split over its experts
	Experts      []int      `json:"experts"`       // expert counts n
	Guidance     []float64  `json:"guidance"`      // classifier-free guidance scales
	Seeds        int        `json:"seeds"`         // sampling seeds per prompt and scale
	SampleSteps  int        `json:"sample_steps"`  // DDIM steps
	Sweep        []float64  `json:"sweep"`         // w_a and w_l values
	WA           float64    `json:"w_a"`           // the paper's w_a
	WL           float64    `json:"w_l"`           // the paper's w_l
	Fraction     float64    `json:"fraction"`      // the paper's knowledge fraction (POS, detector, captioner)
	Bootstrap    int        `json:"bootstrap"`     // resamples for confidence intervals
	GridPrompts  int        `json:"grid_prompts"`  // prompts in each variant's sample grid
	GridGuidance float64    `json:"grid_guidance"` // the scale the grids show
	ReportScale  float64    `json:"report_scale"`  // the scale the per-category tables show
}

// FullConfig is the reproduction that REPRO.md reports: about two hours
// on a 2-core machine.
func FullConfig() Config {
	return Config{
		Train:        "repro/toy.json",
		Preprocess:   "pipelines/sample.yaml",
		Detector:     "detect/testdata/shapes_yolov8.onnx",
		Features:     "eval/fid/testdata/shapes_features.onnx",
		Decoder:      "vae/testdata/model",
		ImageSize:    128,
		TrainSamples: 3000,
		ObjectMix:    [3]float64{1, 2, 1},
		HeldOut:      64,
		References:   512,
		TrainSeed:    11,
		HeldOutSeed:  12,
		Steps:        4000,
		ExpertSteps:  2000,
		Experts:      []int{1, 2, 4, 10},
		Guidance:     []float64{1.5, 2.1, 3, 5, 7},
		Seeds:        2,
		SampleSteps:  25,
		Sweep:        []float64{0.01, 0.1, 0.5, 1},
		WA:           0.01,
		WL:           0.1,
		Fraction:     0.5,
		Bootstrap:    1000,
		GridPrompts:  8,
		GridGuidance: 3,
		ReportScale:  3,
	}
}

// QuickConfig is the smoke version: every stage on a handful of samples
// and steps, a few minutes in all. Its numbers mean nothing.
func QuickConfig() Config {
	c := FullConfig()
	c.TrainSamples = 48
	c.HeldOut = 8
	c.References = 16
	c.Steps = 30
	c.ExpertSteps = 20
	c.Experts = []int{1, 2}
	c.Guidance = []float64{1.5, 3}
	c.Seeds = 1
	c.SampleSteps = 5
	c.Sweep = []float64{0.01, 1}
	c.Bootstrap = 100
	c.GridPrompts = 4
	return c
}

// ReadConfig reads a Config over the full defaults (unknown fields are
// errors).
func ReadConfig(path string) (Config, error) {
	c := FullConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("repro: config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("repro: config %s: %w", path, err)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.TrainSamples < 8 || c.HeldOut < 2 || c.References < 2:
		return fmt.Errorf("repro: train_samples %d, held_out %d, references %d: want at least 8, 2 and 2", c.TrainSamples, c.HeldOut, c.References)
	case c.Steps < 1 || c.ExpertSteps < 1:
		return fmt.Errorf("repro: steps %d, expert_steps %d: want at least 1", c.Steps, c.ExpertSteps)
	case len(c.Guidance) == 0 || c.Seeds < 1 || c.SampleSteps < 1:
		return fmt.Errorf("repro: need guidance scales, seeds >= 1 and sample_steps >= 1")
	}
	if !slices.Contains(c.Guidance, c.ReportScale) || !slices.Contains(c.Guidance, c.GridGuidance) {
		return fmt.Errorf("repro: report_scale %g and grid_guidance %g must be among the guidance scales %v", c.ReportScale, c.GridGuidance, c.Guidance)
	}
	for _, n := range c.Experts {
		if n < 1 || c.ExpertSteps/n < 1 {
			return fmt.Errorf("repro: %d experts cannot share %d expert steps (each needs at least one)", n, c.ExpertSteps)
		}
	}
	return nil
}
