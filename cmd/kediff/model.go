package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

func init() {
	register("model", "run one forward pass of a checkpoint on saved inputs (model run)", runModel)
}

func runModel(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: kediff model run --checkpoint DIR --inputs IN.safetensors --output OUT.safetensors")
	}
	fs := flag.NewFlagSet("model run", flag.ContinueOnError)
	ckpt := fs.String("checkpoint", "", "checkpoint directory (config.json + model.safetensors)")
	inputs := fs.String("inputs", "", "safetensors with x (float32 B,C,H,W), timesteps (int64 B), tokens (int64 B,L), mask (bool B,L); optional keyword (bool B,L) and w_a (float32 B)")
	output := fs.String("output", "", "safetensors to write with eps (float32 B,C,H,W)")
	dev := addDeviceFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff model run --checkpoint DIR --inputs IN.safetensors --output OUT.safetensors\n\n"+
			"Runs one forward pass (eval mode, no dropout) on inputs as PyTorch writes them\n(safetensors.torch.save_file) and writes eps.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *ckpt == "" || *inputs == "" || *output == "" {
		return errors.New("--checkpoint, --inputs and --output are required")
	}
	be, err := dev.open()
	if err != nil {
		return err
	}
	m, err := unet.Load(*ckpt, be)
	if err != nil {
		return err
	}
	in, _, err := safetensors.ReadFile(*inputs)
	if err != nil {
		return err
	}
	batch, err := unet.BatchFromTensors(in, m.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", *inputs, err)
	}
	eps, err := m.Forward(batch)
	if err != nil {
		return err
	}
	c := m.Config
	out := map[string]safetensors.Tensor{"eps": safetensors.F32([]int{batch.N(), c.OutChannels, c.ImageSize, c.ImageSize}, m.Host(eps))}
	if err := safetensors.WriteFile(*output, out, nil); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kediff model: eps %v written to %s\n", out["eps"].Shape, *output)
	return nil
}
