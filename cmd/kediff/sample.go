package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/internal/promptfile"
	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
	"github.com/kediff/kediff/vae"
)

func init() {
	register("sample", "sample images from a base model and/or denoising experts (DDIM/DDPM, classifier-free guidance)", runSample)
}

func runSample(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	base := fs.String("base", "", "base checkpoint folder (kediff train base --out): every timestep no expert holds")
	var experts, prompts stringList
	fs.Var(&experts, "experts", "expert checkpoint folders: comma-separated, brace patterns (out/train/expert-{0..9}), or a folder holding them (repeatable)")
	fs.Var(&prompts, "prompt", "a prompt (repeatable)")
	promptsFile := fs.String("prompts", "", "file of prompts, one a line, or a CSV file with --csv-column")
	column := fs.String("csv-column", "", "read --prompts as CSV (header row) and take prompts from this column (ViLG-300: Prompt or 文本)")
	limit := fs.Int("limit", 0, "use only the first N prompts (0: all)")
	output := fs.String("output", "out/samples", "output folder: NNNNN.png, grid.png, samples.jsonl")
	decoder := fs.String("vae-decoder", "", "Stable-Diffusion-style vae_decoder ONNX file or folder (the fixture: vae/testdata/model)")
	scaling := fs.Float64("scaling-factor", 0, "latent scaling factor (0: the decoder's config.json, else 0.18215)")
	scheduler := fs.String("scheduler", "ddim", "ddim or ddpm")
	steps := fs.Int("steps", 0, "num_inference_steps (0: 50 for ddim, the training timesteps T for ddpm)")
	guidance := fs.Float64("guidance", sample.DefaultGuidance, "classifier-free guidance scale s (1: no guidance)")
	eta := fs.Float64("eta", 0, "DDIM eta (0: deterministic)")
	spacing := fs.String("timestep-spacing", diffusion.Leading, "timestep_spacing: leading, trailing or linspace")
	offset := fs.Int("steps-offset", 0, "steps_offset added to leading timesteps")
	alphaOne := fs.Bool("set-alpha-to-one", true, "set_alpha_to_one: the last step lands on abar = 1 (false: abar_0)")
	seed := fs.Uint64("seed", 0, "seed: image i of the run uses seed + i")
	batch := fs.Int("batch", 8, "images per denoising batch")
	perPrompt := fs.Int("images-per-prompt", 1, "images per prompt")
	initNoise := fs.String("init-noise", "", "safetensors file whose tensor x_T [images, C, H, W] replaces the seeded initial noise")
	saveLatents := fs.Bool("save-latents", false, "also write latents-NNNNN.safetensors per batch (x_T, tokens/mask of both halves, x_0)")
	gridCols := fs.Int("grid-cols", 0, "images per grid row (0: images per prompt, or about the square root)")
	quiet := fs.Bool("quiet", false, "no progress bars")
	dev := addDeviceFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff sample [--base DIR] [--experts DIRS] (--prompt TEXT... | --prompts FILE [--csv-column NAME]) --vae-decoder PATH [flags]\n\n"+
			"Samples images: each denoising step runs on the expert whose timestep block holds it\n(the base where none does), with classifier-free guidance, then decodes the latents.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (prompts go after --prompt)", fs.Arg(0))
	}
	if *decoder == "" {
		return errors.New("--vae-decoder is required: the Stable-Diffusion-style decoder that turns latents into images (for the bundled sample: vae/testdata/model)")
	}
	warn := func(msg string) { fmt.Fprintf(os.Stderr, "kediff sample: warning: %s\n", msg) }

	// prompts
	list := append([]string(nil), prompts...)
	if *promptsFile != "" {
		f, err := os.Open(*promptsFile)
		if err != nil {
			return fmt.Errorf("--prompts: %w", err)
		}
		blank := 0
		err = promptfile.Each(ctx, f, *promptsFile, *column, "", func(_, p string) error {
			if strings.TrimSpace(p) == "" {
				blank++
				return nil
			}
			list = append(list, p)
			return nil
		})
		f.Close()
		if err != nil {
			return err
		}
		if blank > 0 {
			warn(fmt.Sprintf("%s: %d blank prompts skipped", *promptsFile, blank))
		}
	} else if *column != "" {
		return errors.New("--csv-column needs --prompts FILE")
	}
	if *limit > 0 && len(list) > *limit {
		list = list[:*limit]
	}
	if len(list) == 0 {
		return errors.New("no prompts: give --prompt TEXT (repeatable) or --prompts FILE")
	}

	// checkpoints
	var dirs []string
	for _, e := range experts {
		for _, part := range strings.Split(e, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			ex, err := shards.ExpandBraces(part)
			if err != nil {
				return fmt.Errorf("--experts %s: %w", part, err)
			}
			dirs = append(dirs, ex...)
		}
	}
	expertDirs, bases, err := sample.FindCheckpoints(dirs)
	if err != nil {
		return err
	}
	baseDir := *base
	if baseDir == "" && len(bases) == 1 {
		baseDir = bases[0]
		fmt.Fprintf(os.Stderr, "kediff sample: using %s, found beside the experts, as the base (--base chooses another)\n", baseDir)
	}
	var baseCk *sample.Checkpoint
	if baseDir != "" {
		if baseCk, err = sample.OpenCheckpoint(baseDir); err != nil {
			return err
		}
	}
	var cks []*sample.Checkpoint
	for _, d := range expertDirs {
		if baseCk != nil && sameDir(d, baseDir) {
			continue
		}
		c, err := sample.OpenCheckpoint(d)
		if err != nil {
			return err
		}
		cks = append(cks, c)
	}
	mix, err := sample.NewMixture(baseCk, cks)
	if err != nil {
		return err
	}

	// the decoder, checked before any step
	dec, err := vae.OpenDecoder(*decoder, vae.Options{Session: onnx.SessionOptions{}, ScalingFactor: float32(*scaling)})
	if err != nil {
		return fmt.Errorf("--vae-decoder: %w", err)
	}
	defer dec.Close()
	if err := mix.CheckDecoder(dec); err != nil {
		return fmt.Errorf("--vae-decoder %s: %w", *decoder, err)
	}

	be, err := dev.open()
	if err != nil {
		return err
	}
	opt := sample.Options{Backend: be, Scheduler: *scheduler, Steps: *steps, Eta: *eta, Guidance: *guidance, Seed: *seed,
		Batch: *batch, ImagesPerPrompt: *perPrompt, KeepNoise: *saveLatents, Warn: warn,
		Timesteps: &diffusion.Config{TimestepSpacing: *spacing, StepsOffset: *offset, SetAlphaToOne: *alphaOne}}
	if *initNoise != "" {
		if opt.InitNoise, err = readInitNoise(*initNoise, len(list)**perPrompt, mix); err != nil {
			return err
		}
	}
	for _, line := range mix.Describe() {
		fmt.Fprintf(os.Stderr, "kediff sample: %s\n", line)
	}
	if !*quiet {
		bars := newSampleBars(stages.IsTerminal(os.Stderr))
		opt.Progress = bars.update
	}
	start := time.Now()
	res, err := sample.Run(ctx, mix, list, opt)
	if err != nil {
		return err
	}
	imgs, err := sample.DecodeImages(dec, res)
	if err != nil {
		return err
	}
	if err := sample.Write(*output, res, imgs, sample.WriteOptions{SaveLatents: *saveLatents, GridCols: *gridCols, InitNoise: *initNoise}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kediff sample: %d images (%d prompts, %d steps of %s, guidance %g) in %s: %s/%s, %s, %s\n",
		len(imgs), len(list), len(res.Timesteps), res.Options.Scheduler, res.Options.Guidance, time.Since(start).Round(time.Millisecond),
		*output, "NNNNN.png", sample.GridFile, sample.IndexFile)
	return nil
}

func sameDir(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// readInitNoise reads x_T for every image of the run.
func readInitNoise(path string, images int, mix *sample.Mixture) ([]float32, error) {
	ts, _, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--init-noise: %w", err)
	}
	t, ok := ts["x_T"]
	if !ok && len(ts) == 1 {
		for _, v := range ts {
			t, ok = v, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("--init-noise %s has no tensor x_T", path)
	}
	c := mix.Config
	want := []int{images, c.InChannels, c.ImageSize, c.ImageSize}
	if !slices.Equal(t.Shape, want) {
		return nil, fmt.Errorf("--init-noise %s: x_T has shape %v, want %v (images x latent channels x latent side x latent side)", path, t.Shape, want)
	}
	return t.Float32s()
}

// sampleBars draws one progress bar per prompt batch: on a terminal the
// lines are redrawn in place; in a log a batch prints a line about every
// tenth of its steps.
type sampleBars struct {
	tty   bool
	lines []string
	drawn int
	last  time.Time
}

func newSampleBars(tty bool) *sampleBars { return &sampleBars{tty: tty} }

func (s *sampleBars) update(p sample.Progress) {
	if len(s.lines) != p.Batches {
		s.lines = make([]string, p.Batches)
	}
	const w = 30
	done := p.Step * w / p.Steps
	line := fmt.Sprintf("batch %d/%d [%s%s] %d/%d steps t=%d %s (%s)", p.Batch+1, p.Batches,
		strings.Repeat("#", done), strings.Repeat(".", w-done), p.Step, p.Steps, p.T, p.Checkpoint.Role(), p.Elapsed.Round(time.Second))
	s.lines[p.Batch] = line
	if !s.tty {
		if every := max(1, p.Steps/10); p.Step%every == 0 || p.Step == p.Steps {
			fmt.Fprintln(os.Stderr, line)
		}
		return
	}
	if time.Since(s.last) < 100*time.Millisecond && p.Step != p.Steps {
		return
	}
	s.last = time.Now()
	show := s.lines
	if len(show) > 12 { // too many for a screen: the current batch only
		show = []string{line}
	}
	if s.drawn > 0 {
		fmt.Fprintf(os.Stderr, "\x1b[%dA", s.drawn)
	}
	for _, l := range show {
		if l == "" {
			l = "waiting"
		}
		fmt.Fprintf(os.Stderr, "\x1b[2K%s\n", l)
	}
	s.drawn = len(show)
}
