package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

func init() {
	register("kernels", "check every device kernel against the CPU reference at a model's shapes (kernels check)", runKernels)
}

func runKernels(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: kediff kernels check --device cuda[:N] [--precision fp32|bf16|both] [--config train.json] [--batch 4]")
	}
	fs := flag.NewFlagSet("kernels check", flag.ContinueOnError)
	device := fs.String("device", "cuda", "the device to check: cuda, cuda:N or cuda-emu")
	precision := fs.String("precision", "both", "fp32, bf16 or both")
	config := fs.String("config", "train/configs/bench.json", "train config whose model_config gives the shapes (its batch is replaced by --batch)")
	batch := fs.Int("batch", 4, "batch size of the recorded training step")
	seed := fs.Uint64("seed", 1, "seed of the random inputs")
	quiet := fs.Bool("quiet", false, "print failures and the verdict only")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff kernels check [flags]\n\n"+
			"Runs one training step of the config's model on the CPU while recording every\n"+
			"kernel call (op and shape), then runs each call on the device and on the CPU from\n"+
			"the same fresh random inputs, device outputs poisoned with NaN first, and compares\n"+
			"every output (tolerance 1e-4 in fp32, 2e-2 with bf16 activations).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	o, isCUDA, err := cuda.ParseDevice(*device)
	if err != nil {
		return err
	}
	if !isCUDA {
		return fmt.Errorf("--device %q: the CPU is the reference; check cuda, cuda:N or cuda-emu", *device)
	}
	var precisions []bool
	switch *precision {
	case "fp32":
		precisions = []bool{false}
	case "bf16":
		precisions = []bool{true}
	case "both":
		precisions = []bool{false, true}
	default:
		return fmt.Errorf("--precision %q: want fp32, bf16 or both", *precision)
	}
	tc, err := train.ReadTrainConfig(*config)
	if err != nil {
		return err
	}
	cases, err := recordStep(*tc.ModelConfig, *batch, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kediff kernels: %d kernel cases recorded from one training step of %s at batch %d\n", len(cases), *config, *batch)
	failed := false
	for _, bf := range precisions {
		o.BF16 = bf
		d, err := cuda.Open(o)
		if err != nil {
			return err
		}
		fmt.Printf("device %s: %s\n", *device, d)
		var w *strings.Builder
		if *quiet {
			w = &strings.Builder{}
		}
		var res []cuda.Result
		if w != nil {
			res = cuda.Check(d, cases, bf, *seed, w)
		} else {
			res = cuda.Check(d, cases, bf, *seed, os.Stdout)
		}
		for _, r := range res {
			if !r.OK && w != nil {
				fmt.Printf("FAIL %s: rel err %.2e (tol %.0e) %s\n", r.Case, r.Err, r.Tol, r.Detail)
			}
			failed = failed || !r.OK
		}
		p := "fp32"
		if bf {
			p = "bf16"
		}
		fmt.Printf("%s: %s\n", p, cuda.Summary(res))
	}
	if failed {
		return errors.New("some device kernels differ from the CPU reference")
	}
	return nil
}

// recordStep runs one training step (forward, loss, backward, clipping,
// AdamW, EMA) of a model of cfg on a recorder and returns its kernel cases.
func recordStep(cfg unet.Config, B int, seed uint64) ([]cuda.Case, error) {
	rec := cuda.NewRecorder()
	m, err := unet.NewModel(cfg, rec)
	if err != nil {
		return nil, err
	}
	m.Init(seed)
	m.Train = true
	rng := rand.New(rand.NewPCG(seed, 3))
	L, S := cfg.TextCtx, cfg.ImageSize
	n := B * cfg.InChannels * S * S
	in := &unet.Batch{X: make([]float32, n), Timesteps: make([]float32, B), WA: make([]float32, B)}
	noise, w := make([]float32, n), make([]float32, B*S*S)
	for i := range in.X {
		in.X[i], noise[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = 1 + 0.1*float32(rng.IntN(2))
	}
	for b := range B {
		in.Timesteps[b] = float32(rng.IntN(1000))
		length := rng.IntN(L + 1)
		if b%2 == 0 {
			in.WA[b] = 0.01
		}
		for j := range L {
			in.Tokens = append(in.Tokens, int32(rng.IntN(cfg.NVocab)))
			in.Mask = append(in.Mask, j < length)
			in.Keyword = append(in.Keyword, j < length && rng.IntN(2) == 0)
		}
	}
	if _, _, err := m.TrainStep(in, noise, w, unet.DefaultOptim()); err != nil {
		return nil, err
	}
	rec.EMAUpdate(m.Params.M, m.Params.Data, 0.999)
	return rec.Cases(), nil
}
