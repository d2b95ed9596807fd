// Command train is the training-step benchmark (task bench-train).
//
// It writes the benchmark's train config (train/configs/bench.json: model
// channels 64, 2 ResBlocks per level, channel_mult 1,2,3,4, attention at
// downsample 2 and 4, 32 channels per head, a 4-layer 4-head 256-wide text
// encoder over 64 tokens, batch 8 of 4x32x32 latents), builds the Go model
// with random init and a random batch (z_t, timesteps, tokens with padding,
// keyword flags, w_a, a loss-weight mask, noise), and times full training
// steps (zero grad, forward, weighted eps-MSE loss, backward, clipping, AdamW)
// next to the same steps of tools/train/reference.py's PyTorch port of the
// same model on the same batch (its "bench" subcommand, one process kept
// alive, torch.set_num_threads(GOMAXPROCS)), in the same run.
//
// After warm-up steps on both sides, rounds alternate: Go steps, then PyTorch
// steps. Each step is timed in wall time and in CPU time of its process
// (getrusage user + system for Go, time.process_time for Python; both count
// every thread), and the medians are reported with their ratio.
//
// FLOPs are counted analytically from the layer shapes (stepFLOPs): every
// convolution, linear layer and attention product in the forward pass at
// 2 FLOPs per multiply-add, times 3 for forward + backward (input and weight
// gradients); normalisation, activations, the loss and AdamW are not counted.
// Both processes use the same OpenBLAS kernel set (OPENBLAS_CORETYPE is passed
// on; each side prints the core it runs). The machine's sgemm rate is measured in the same run through kernels.Gemm
// (OpenBLAS when loaded) at M = N = K = 1024.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

// benchModel is the configuration.
func benchModel() unet.Config {
	return unet.Config{
		ImageSize: 32, InChannels: 4, OutChannels: 4,
		ModelChannels: 64, NumResBlocks: 2, ChannelMult: []int{1, 2, 3, 4},
		AttentionResolution: []int{2, 4}, NumHeadChannels: 32, NormGroups: 32,
		UseScaleShiftNorm: true, ResblockUpdown: true, Dropout: 0,
		TextCtx: 64, NVocab: 2048, XFWidth: 256, XFLayers: 4, XFHeads: 4,
		XFFinalLN: true, XFPadding: true, AttentionMaskPadding: false,
	}
}

func main() {
	batch := flag.Int("batch", 8, "samples per step")
	warmup := flag.Int("warmup", 2, "warm-up steps on each side (not timed)")
	rounds := flag.Int("rounds", 3, "rounds of Go steps then PyTorch steps")
	steps := flag.Int("steps", 3, "timed steps per side per round")
	config := flag.String("config", "train/configs/bench.json", "train config to write (and for the PyTorch side to read)")
	python := flag.String("python", "/usr/bin/python3", "python with torch (Debian python3-torch)")
	ref := flag.String("reference", "tools/train/reference.py", "the PyTorch reference script")
	dir := flag.String("dir", "out/bench-train", "working folder (the batch for PyTorch)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of one Go step (after warm-up) to this file")
	noTorch := flag.Bool("no-torch", false, "time the Go side only")
	flag.Parse()
	if err := run(*batch, *warmup, *rounds, *steps, *config, *python, *ref, *dir, *profile, *noTorch); err != nil {
		log.Fatal(err)
	}
}

func run(B, warmup, rounds, steps int, config, python, ref, dir, profile string, noTorch bool) error {
	mc := benchModel()
	if err := writeConfig(config, mc, B); err != nil {
		return err
	}
	threads := benchrun.Machine()

	m, err := unet.NewModel(mc, nil)
	if err != nil {
		return err
	}
	m.Init(1)
	in, noise, weight := randomBatch(mc, B, 7)
	opt := unet.DefaultOptim()
	flops := stepFLOPs(mc, B)
	fmt.Printf("model: %s, %.2fM parameters, batch %d; step FLOPs (analytic, 3x forward matmul/conv/attention): %.1f GFLOP\n",
		config, float64(m.NumParams())/1e6, B, flops/1e9)

	var torch *benchrun.Torch
	if !noTorch {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		inputs := filepath.Join(dir, "inputs.safetensors")
		if err := benchrun.WriteInputs(inputs, mc, in, noise, weight); err != nil {
			return err
		}
		torch, err = benchrun.StartTorch(python, []string{ref, "bench", config, inputs, fmt.Sprint(threads)}, threads)
		if err != nil {
			return err
		}
		defer torch.Close()
		if torch.Info.Params != m.NumParams() {
			return fmt.Errorf("parameter counts differ: go %d, pytorch %d", m.NumParams(), torch.Info.Params)
		}
	}

	goStep := func() (benchrun.Timing, error) {
		return benchrun.Time(func() (float64, error) {
			loss, _, err := m.TrainStep(in, noise, weight, opt)
			return loss, err
		})
	}

	gemm1 := benchrun.SgemmRate()
	for range warmup {
		if _, err := goStep(); err != nil {
			return err
		}
	}
	if torch != nil {
		if _, err := torch.Run(fmt.Sprint(warmup), warmup); err != nil {
			return err
		}
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		_, err = goStep()
		pprof.StopCPUProfile()
		f.Close()
		if err != nil {
			return err
		}
		fmt.Printf("wrote a CPU profile of one Go step to %s (go tool pprof -top %s)\n", profile, profile)
	}

	var goS, ptS []benchrun.Timing
	for r := range rounds {
		for range steps {
			s, err := goStep()
			if err != nil {
				return err
			}
			goS = append(goS, s)
		}
		if torch != nil {
			ss, err := torch.Run(fmt.Sprint(steps), steps)
			if err != nil {
				return err
			}
			ptS = append(ptS, ss...)
		}
		fmt.Printf("round %d: go wall %s | pytorch wall %s\n", r+1, benchrun.Walls(goS[len(goS)-steps:]), benchrun.Walls(ptS[max(0, len(ptS)-steps):]))
	}
	gemm2 := benchrun.SgemmRate()
	gemm := max(gemm1, gemm2)

	fmt.Printf("\nmedians of %d steps per side (best step in brackets; under load PyTorch's OpenMP threads can stall for seconds, so compare the medians and the single-thread run as well)\n", len(goS))
	gw, gc := benchrun.Median(goS, benchrun.WallOf), benchrun.Median(goS, benchrun.CPUOf)
	fmt.Printf("sgemm 1024^3 (kernels.Gemm, %s): %.1f GFLOP/s wall (runs: %.1f, %.1f)\n", kernels.GEMMBackend(), gemm, gemm1, gemm2)
	fmt.Printf("go      s/step: wall %.3f [%.3f]  cpu %.3f [%.3f]  -> %.1f GFLOP/s wall (%.0f%% of sgemm), %.1f GFLOP per CPU-second  (loss %.4f -> %.4f)\n",
		gw, benchrun.Best(goS, benchrun.WallOf), gc, benchrun.Best(goS, benchrun.CPUOf), flops/gw/1e9, 100*flops/gw/1e9/gemm, flops/gc/1e9, goS[0].Loss, goS[len(goS)-1].Loss)
	if torch != nil {
		pw, pc := benchrun.Median(ptS, benchrun.WallOf), benchrun.Median(ptS, benchrun.CPUOf)
		fmt.Printf("pytorch s/step: wall %.3f [%.3f]  cpu %.3f [%.3f]  -> %.1f GFLOP/s wall (%.0f%% of sgemm), %.1f GFLOP per CPU-second  (loss %.4f -> %.4f)\n",
			pw, benchrun.Best(ptS, benchrun.WallOf), pc, benchrun.Best(ptS, benchrun.CPUOf), flops/pw/1e9, 100*flops/pw/1e9/gemm, flops/pc/1e9, ptS[0].Loss, ptS[len(ptS)-1].Loss)
		fmt.Printf("ratio   go / pytorch: wall %.2f [best %.2f], cpu %.2f [best %.2f]  (target <= 1.0)\n",
			gw/pw, benchrun.Best(goS, benchrun.WallOf)/benchrun.Best(ptS, benchrun.WallOf), gc/pc, benchrun.Best(goS, benchrun.CPUOf)/benchrun.Best(ptS, benchrun.CPUOf))
	}
	return nil
}

// writeConfig writes the benchmark's train config (DefaultTrainConfig's recipe
// with the model and batch) as train/configs/*.json are written.
func writeConfig(path string, mc unet.Config, B int) error {
	c := train.DefaultTrainConfig()
	c.Comment = "bench-train model (go run ./bench/train): 32x32x4 latents, model channels 64, 2 res blocks, channel mult 1,2,3,4, attention at ds 2 and 4, 32-channel heads; text ctx 64, width 256, 4 layers, 4 heads"
	c.Model = ""
	c.ModelConfig = &mc
	c.Batch = B
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := train.ReadTrainConfig(path); err != nil {
		return fmt.Errorf("written config does not read back: %w", err)
	}
	return nil
}

// randomBatch is a batch as the loader delivers it: z_t from random latents and
// noise at random timesteps, prompts of random length padded with [PAD] (one
// CFG-dropped, all padding), keyword flags on some real tokens, w_a on half the
// samples, and a loss weight of 1.1 on a random box of half the samples.
func randomBatch(mc unet.Config, B int, seed uint64) (*unet.Batch, []float32, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	C, S, L := mc.InChannels, mc.ImageSize, mc.TextCtx
	n := B * C * S * S
	z0, noise, zt := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range z0 {
		z0[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	t := make([]int, B)
	ts := make([]float32, B)
	for b := range t {
		t[b] = rng.IntN(1000)
		ts[b] = float32(t[b])
	}
	diffusion.Default().QSample(zt, z0, noise, t)
	in := &unet.Batch{X: zt, Timesteps: ts, Tokens: make([]int32, B*L), Mask: make([]bool, B*L),
		Keyword: make([]bool, B*L), WA: make([]float32, B)}
	for b := range B {
		length := 4 + rng.IntN(L-4)
		if b == B-1 {
			length = 0 // CFG drop
		}
		ids := make([]int32, length)
		kw := make([]bool, length)
		for j := range ids {
			ids[j] = int32(2 + rng.IntN(mc.NVocab-2))
			kw[j] = rng.IntN(4) == 0
		}
		tok, mask, keyword := tokenizer.Pad(ids, kw, L)
		copy(in.Tokens[b*L:], tok)
		copy(in.Mask[b*L:], mask)
		copy(in.Keyword[b*L:], keyword)
		if b%2 == 0 && length > 0 {
			in.WA[b] = 0.01
		}
	}
	weight := make([]float32, B*S*S)
	for i := range weight {
		weight[i] = 1
	}
	for b := 0; b < B; b += 2 {
		y0, x0 := rng.IntN(S/2), rng.IntN(S/2)
		for y := y0; y < y0+S/3; y++ {
			for x := x0; x < x0+S/3; x++ {
				weight[b*S*S+y*S+x] = 1.1
			}
		}
	}
	return in, noise, weight
}

// stepFLOPs counts one training step: the forward pass
// (benchrun.ForwardFLOPs) times 3 for forward plus backward (the input
// gradient and the weight gradient, or for attention the gradients of both
// operands, each cost as much as the forward product).
func stepFLOPs(c unet.Config, B int) float64 { return 3 * benchrun.ForwardFLOPs(c, B, true) }
