package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/dist"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/metrics"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
	"github.com/kediff/kediff/train"
)

func init() {
	register("train", "train the base U-Net or a denoising expert on preprocessed shards (train base | train expert N)", runTrain)
}

func runTrain(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "base" && args[0] != "expert") {
		return errors.New("usage: kediff train base --data URL --config train.json --out DIR [--resume]\n" +
			"       kediff train expert N --experts n --base DIR --data URL --config train.json --out DIR [--resume]\n" +
			"many processes, one model (the config's batch is the global batch):\n" +
			"       mpirun -np 4 kediff train base ...   |   srun -n 4 kediff train base ...\n" +
			"       RANK=r WORLD_SIZE=4 LOCAL_RANK=r MASTER_ADDR=host MASTER_PORT=29500 kediff train base ...   (torchrun's variables)")
	}
	mode := args[0]
	args = args[1:]
	expert := -1
	if mode == "expert" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return errors.New("kediff train expert N: give the expert index N (0-based) before the flags")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return fmt.Errorf("expert index %q is not a non-negative integer", args[0])
		}
		expert = n
		args = args[1:]
	}
	fs := flag.NewFlagSet("train "+mode, flag.ContinueOnError)
	data := fs.String("data", "", "training shards: a folder URL with manifest.json (kediff preprocess output), a .parquet URL or a comma-separated list")
	config := fs.String("config", "", "train config JSON (e.g. train/configs/tiny.json)")
	out := fs.String("out", "", "checkpoint directory (model.safetensors, config.json, optimizer.safetensors, state.json, metrics.jsonl, loss.png, dashboard.html)")
	resume := fs.Bool("resume", false, "continue the checkpoint in --out")
	steps := fs.Int("steps", 0, "override the config's steps")
	distKind := fs.String("dist", "auto", "how the ranks of a multi-process job (mpirun, srun, torchrun) talk: auto, mpi, tcp (MASTER_ADDR:MASTER_PORT), nccl or none; auto: NCCL on GPUs, MPI under mpirun, else TCP")
	distTimeout := fs.Duration("dist-timeout", 5*time.Minute, "a collective waiting longer fails the job (a rank died or stopped); must exceed a checkpoint write")
	quiet := fs.Bool("quiet", false, "no progress bar")
	dev := addDeviceFlags(fs)
	sampleEvery := fs.Int("sample-every", -1, "draw a sample grid of the config's sample_prompts every N steps into OUT/samples (0: never; default: the config's sample_every)")
	mflags := metrics.AddFlags(fs)
	var experts *int
	var base *string
	if mode == "expert" {
		experts = fs.Int("experts", 0, "number of experts n (timestep blocks); default: the config's")
		base = fs.String("base", "", "base checkpoint directory (kediff train base --out)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *data == "" || *config == "" || *out == "" {
		return errors.New("--data, --config and --out are required")
	}
	cfg, err := train.ReadTrainConfig(*config)
	if err != nil {
		return err
	}
	cfg.Expert = expert
	if experts != nil && *experts > 0 {
		cfg.Experts = *experts
	}
	if *steps > 0 {
		cfg.Steps = *steps
	}
	info, err := dist.Discover(nil)
	if err != nil {
		return err
	}
	if info.World > 1 && *dev.device == "cuda" {
		*dev.device = info.Device() // one GPU per local rank
	}
	if cfg.Backend, err = dev.open(); err != nil {
		return err
	}
	copts := dist.ConnectOptions{Kind: *distKind, Device: dev.gpu(), Timeout: *distTimeout}
	if d, ok := cfg.Backend.(*cuda.Device); ok {
		copts.DevicePointer, copts.Stream = d.DevicePointer, d.Stream()
	}
	comm, err := dist.Connect(ctx, info, copts)
	if err != nil {
		return err
	}
	defer comm.Close()
	cfg.Comm = comm
	if comm.Rank() != 0 {
		*quiet = true // rank 0 reports for the job
	}
	if *sampleEvery >= 0 {
		cfg.SampleEvery = *sampleEvery
	}
	baseDir := ""
	if base != nil {
		baseDir = *base
	}
	// Reads of shards in an object store retry transient faults (package
	// shards); they are counted here and reported at the end.
	var store shards.RetryCounts
	ctx = shards.WithRetryCounts(ctx, &store)
	t, err := train.NewTrainer(ctx, cfg, *data, *out, baseDir, *resume)
	if err != nil {
		return err
	}
	defer t.Close()
	t.OnGrid = func(step int, path string) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, "\nkediff train: step %d: sample grid %s\n", step, path)
		}
	}
	if !*quiet {
		start, first := time.Now(), t.State.Step
		// On a terminal the bar rewrites one line every step; in a log file
		// (batch jobs) it prints a plain line about every 5% of the run.
		tty := stages.IsTerminal(os.Stderr)
		every := max(1, cfg.Steps/20)
		t.OnStep = func(m train.Metrics) {
			if !tty && m.Step%every != 0 && m.Step != cfg.Steps {
				return
			}
			const w = 30
			done := m.Step * w / cfg.Steps
			eta := time.Duration(0)
			if m.Step > first {
				eta = time.Since(start) / time.Duration(m.Step-first) * time.Duration(cfg.Steps-m.Step)
			}
			prefix, end := "\r", " "
			if !tty {
				prefix, end = "", "\n"
			}
			fmt.Fprintf(os.Stderr, "%s[%s%s] %d/%d loss %.4f grad %.3f lr %.2e %.1f samples/s eta %s%s", prefix,
				strings.Repeat("#", done), strings.Repeat(".", w-done), m.Step, cfg.Steps, m.Loss, m.GradNorm, m.LR, m.SamplesPerS, eta.Round(time.Second), end)
			if tty && m.Step == cfg.Steps {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	var mjob *metrics.Job // rank 0 reports for the job
	if comm.Rank() == 0 {
		labels := map[string]string{"run": filepath.Base(filepath.Clean(*out)), "expert": "base"}
		if expert >= 0 {
			labels["expert"] = strconv.Itoa(expert)
		}
		if mjob, err = mflags.Start("kediff_train", labels, nil); err != nil {
			return err
		}
	} else if mflags.Addr != "" || mflags.Push != "" {
		fmt.Fprintf(os.Stderr, "kediff train: rank %d: metrics come from rank 0 only; not serving or pushing here\n", comm.Rank())
	}
	if mjob != nil {
		m, progress := metrics.NewTrain(mjob.Registerer, t.Cfg.Batch*max(1, t.Cfg.GradAccum)), t.OnStep
		t.OnStep = func(s train.Metrics) {
			m.Observe(s)
			if progress != nil {
				progress(s)
			}
		}
	}
	what := "base model"
	if expert >= 0 {
		lo, hi := diffusion.Block(expert, cfg.Experts, cfg.Timesteps)
		what = fmt.Sprintf("expert %d of %d (t in [%d, %d), text encoder frozen)", expert, cfg.Experts, lo, hi)
	}
	if comm.Rank() == 0 {
		fmt.Fprintf(os.Stderr, "kediff train: %s, %d parameters, vocabulary %d, from step %d to %d, checkpoints in %s\n",
			what, t.Model.NumParams(), t.Tok.Size(), t.State.Step, cfg.Steps, *out)
		if comm.Size() > 1 {
			fmt.Fprintf(os.Stderr, "kediff train: %d ranks (%s, %s), global batch %d = %d per rank\n",
				comm.Size(), info.Launcher, commName(comm), cfg.Batch, cfg.Batch/comm.Size())
		}
	}
	err = t.Run(ctx)
	mjob.End(err)
	if retries, resumes, reasons := store.Snapshot(); retries+resumes > 0 {
		fmt.Fprintf(os.Stderr, "kediff train: reading the shards took %d retries and %d resumed reads after store faults %v\n", retries, resumes, reasons)
	}
	if err != nil {
		if !*quiet {
			fmt.Fprintln(os.Stderr)
		}
		if comm.Size() > 1 {
			return fmt.Errorf("rank %d of %d: %w", comm.Rank(), comm.Size(), err)
		}
		return err
	}
	return nil
}

// commName says which communicator a job uses.
func commName(c dist.Comm) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", c)
}
