// Command sample is the sampling benchmark (task bench-sample).
//
// It builds the model of train/configs/bench.json (the trainer benchmark's
// U-Net: 4x32x32 latents, model channels 64, channel_mult 1,2,3,4, a 4-layer
// 256-wide text encoder over 64 tokens) with random weights, saves it as a
// checkpoint, and times whole sampling loops: 50 DDIM steps with
// classifier-free guidance (both halves in one batched forward, each prompt
// encoded once) at batch 1 and batch 8, through package sample, next to the
// same loop of tools/train/reference.py's PyTorch port loading the same
// checkpoint (its "bench-sample" subcommand, torch.no_grad, the same
// threads), on the same x_T and tokens, in the same run. Rounds alternate
// Go, then PyTorch; the medians are reported as seconds per image with
// their ratio, and the final latents of both sides are compared (they must
// agree: the same computation was timed).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

func main() {
	config := flag.String("config", "train/configs/bench.json", "train config whose model_config is benchmarked")
	batches := flag.String("batches", "1,8", "batch sizes (images per denoising batch)")
	steps := flag.Int("steps", 50, "DDIM steps per loop")
	guidance := flag.Float64("guidance", sample.DefaultGuidance, "guidance scale (1: no unconditional half)")
	rounds := flag.Int("rounds", 2, "rounds of a Go loop then a PyTorch loop, per batch size")
	python := flag.String("python", "/usr/bin/python3", "python with torch (Debian python3-torch)")
	ref := flag.String("reference", "tools/train/reference.py", "the PyTorch reference script")
	dir := flag.String("dir", "out/bench-sample", "working folder (checkpoint, inputs for PyTorch)")
	noTorch := flag.Bool("no-torch", false, "time the Go side only")
	flag.Parse()
	var bs []int
	for _, f := range strings.Split(*batches, ",") {
		b, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || b < 1 {
			log.Fatalf("-batches %q: %q is not a positive batch size", *batches, f)
		}
		bs = append(bs, b)
	}
	if err := run(*config, bs, *steps, *guidance, *rounds, *python, *ref, *dir, *noTorch); err != nil {
		log.Fatal(err)
	}
}

var words = []string{"a", "big", "small", "red", "blue", "green", "yellow", "circle", "square", "star", "left", "of", "above", "and", "红", "色", "的", "圆", "形"}

func run(config string, batches []int, steps int, guidance float64, rounds int, python, ref, dir string, noTorch bool) error {
	tc, err := train.ReadTrainConfig(config)
	if err != nil {
		return err
	}
	mc := *tc.ModelConfig
	threads := benchrun.Machine()
	ckpt, tok, err := writeCheckpoint(filepath.Join(dir, "checkpoint"), mc, tc.ScheduleConfig)
	if err != nil {
		return err
	}
	m, err := unet.NewInferenceModel(mc, nil)
	if err != nil {
		return err
	}
	if _, err := m.LoadWeights(filepath.Join(ckpt, unet.WeightsFile)); err != nil {
		return err
	}
	mix, err := sample.NewMixture(sample.InMemory(ckpt, m, tok, tc.ScheduleConfig, -1, 1), nil)
	if err != nil {
		return err
	}
	rows := 2
	if guidance == 1 {
		rows = 1
	}
	stepFLOPs := benchrun.ForwardFLOPs(mc, rows, false) // per image and step, text encoder excluded
	fmt.Printf("model: %s, %.2fM parameters; %d DDIM steps, guidance %g (%d model rows per image); U-Net forward FLOPs per image and step (analytic): %.2f GFLOP\n",
		config, float64(m.NumParams())/1e6, steps, guidance, rows, stepFLOPs/1e9)

	var torch *benchrun.Torch
	if !noTorch {
		if torch, err = benchrun.StartTorch(python, []string{ref, "bench-sample", ckpt, fmt.Sprint(threads)}, threads); err != nil {
			return err
		}
		defer torch.Close()
		if torch.Info.Params != m.NumParams() {
			return fmt.Errorf("parameter counts differ: go %d, pytorch %d", m.NumParams(), torch.Info.Params)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	type row struct {
		B             int
		goS, ptS      []benchrun.Timing
		agree, refMag float64
	}
	var table []row
	for _, B := range batches {
		prompts := make([]string, B)
		for i := range prompts {
			n := 3 + rng.IntN(8)
			var p []string
			for range n {
				p = append(p, words[rng.IntN(len(words))])
			}
			prompts[i] = strings.Join(p, " ")
		}
		opt := sample.DefaultOptions()
		opt.Steps, opt.Guidance, opt.Batch, opt.Seed = steps, guidance, B, 1
		goLoop := func(o sample.Options) (*sample.Result, benchrun.Timing, error) {
			var res *sample.Result
			t, err := benchrun.Time(func() (float64, error) {
				var err error
				res, err = sample.Run(context.Background(), mix, prompts, o)
				return 0, err
			})
			return res, t, err
		}
		warm := opt
		warm.Steps = 2
		if _, _, err := goLoop(warm); err != nil {
			return err
		}
		res, _, err := goLoop(opt)
		if err != nil {
			return err
		}
		inputs, out := filepath.Join(dir, fmt.Sprintf("inputs-b%d.safetensors", B)), filepath.Join(dir, fmt.Sprintf("x0-b%d.safetensors", B))
		if err := sample.WriteLatents(inputs, res, 0); err != nil {
			return err
		}
		request := func(repeat int) string {
			b, _ := json.Marshal(map[string]any{"inputs": inputs, "guidance": guidance, "repeat": repeat, "out": out})
			return string(b)
		}
		r := row{B: B}
		if torch != nil {
			if _, err := torch.Run(request(1), 1); err != nil { // warm-up, and the latent to compare
				return err
			}
			ts, _, err := safetensors.ReadFile(out)
			if err != nil {
				return err
			}
			want, _ := ts["x_0"].Float32s()
			r.agree = relErr(res.Batches[0].X0, want)
		}
		for k := range rounds {
			_, t, err := goLoop(opt)
			if err != nil {
				return err
			}
			r.goS = append(r.goS, t)
			line := fmt.Sprintf("batch %d, round %d: go %.2f s", B, k+1, t.Wall)
			if torch != nil {
				pt, err := torch.Run(request(1), 1)
				if err != nil {
					return err
				}
				r.ptS = append(r.ptS, pt...)
				line += fmt.Sprintf(" | pytorch %.2f s", pt[0].Wall)
			}
			fmt.Println(line)
		}
		table = append(table, r)
	}

	fmt.Printf("\nmedians of %d loops per side and batch size (%d steps, guidance %g; best loop in brackets)\n", rounds, steps, guidance)
	for _, r := range table {
		per := func(s float64) float64 { return s / float64(r.B) }
		gw, gc := benchrun.Median(r.goS, benchrun.WallOf), benchrun.Median(r.goS, benchrun.CPUOf)
		rate := stepFLOPs * float64(steps*r.B)
		fmt.Printf("batch %d: go      s/image: wall %.3f [%.3f]  cpu %.3f  -> %.1f GFLOP/s, %.1f ms per step\n", r.B, per(gw), per(benchrun.Best(r.goS, benchrun.WallOf)), per(gc), rate/gw/1e9, 1e3*gw/float64(steps))
		if len(r.ptS) > 0 {
			pw, pc := benchrun.Median(r.ptS, benchrun.WallOf), benchrun.Median(r.ptS, benchrun.CPUOf)
			fmt.Printf("batch %d: pytorch s/image: wall %.3f [%.3f]  cpu %.3f  -> %.1f GFLOP/s, %.1f ms per step\n", r.B, per(pw), per(benchrun.Best(r.ptS, benchrun.WallOf)), per(pc), rate/pw/1e9, 1e3*pw/float64(steps))
			fmt.Printf("batch %d: ratio go / pytorch: wall %.2f [best %.2f], cpu %.2f  (target <= 1.0); final latents agree to %.2g relative\n",
				r.B, gw/pw, benchrun.Best(r.goS, benchrun.WallOf)/benchrun.Best(r.ptS, benchrun.WallOf), gc/pc, r.agree)
		}
	}
	return nil
}

// writeCheckpoint saves a random model of mc as kediff train saves one, so
// that the PyTorch side loads exactly the Go weights.
func writeCheckpoint(dir string, mc unet.Config, sched diffusion.ScheduleConfig) (string, *tokenizer.Tokenizer, error) {
	m, err := unet.NewModel(mc, nil)
	if err != nil {
		return "", nil, err
	}
	m.Init(1)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.Params.Data {
		m.Params.Data[i] += float32(0.02 * rng.NormFloat64())
	}
	if err := m.Save(dir); err != nil {
		return "", nil, err
	}
	tok, err := tokenizer.New(append(tokenizer.SpecialTokens(), words...))
	if err != nil {
		return "", nil, err
	}
	if err := tok.WriteVocabFile(filepath.Join(dir, sample.VocabFile)); err != nil {
		return "", nil, err
	}
	tc := train.DefaultTrainConfig()
	tc.ScheduleConfig, tc.ModelConfig, tc.Model = sched, &mc, ""
	b, _ := json.MarshalIndent(tc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, sample.TrainConfigFile), b, 0o644); err != nil {
		return "", nil, err
	}
	return dir, tok, nil
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}
