package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

func init() {
	register("kernels", "check every device kernel against the CPU reference at a model's shapes (kernels check)", runKernels)
}

func runKernels(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "bench" {
		return runKernelsBench(args[1:])
	}
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: kediff kernels check --device cuda[:N] [--precision fp32|bf16|both] [--config train.json] [--batch 4]\n" +
			"       kediff kernels bench --device cuda[:N]|cuda-emu|cpu [--precision fp32|bf16] [--config train.json] [--batch 4] [--reps 5]")
	}
	fs := flag.NewFlagSet("kernels check", flag.ContinueOnError)
	device := fs.String("device", "cuda", "the device to check: cuda, cuda:N or cuda-emu")
	precision := fs.String("precision", "both", "fp32, bf16 or both")
	config := fs.String("config", "train/configs/bench.json", "train config whose model_config gives the shapes (its batch is replaced by --batch)")
	batch := fs.Int("batch", 4, "batch size of the recorded training step")
	seed := fs.Uint64("seed", 1, "seed of the random inputs")
	quiet := fs.Bool("quiet", false, "print failures and the verdict only")
	step := fs.Bool("step", true, "also compare a whole training step (loss and every parameter gradient) on the device and on the CPU from the same weights and batch")
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
	cfg := *tc.ModelConfig
	cases, err := recordStep(cfg, *batch, *seed)
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
		var w io.Writer = os.Stdout
		if *quiet {
			w = io.Discard
		}
		p := "fp32"
		if bf {
			p = "bf16"
		}
		// On a GPU every version of the row kernels is checked (the
		// emulation runs them all as the same serial loop), the default last.
		variants := []int{0}
		if !o.Emulate {
			variants = cuda.RowVariants
		}
		for _, v := range variants {
			label := p
			if v != 0 {
				if _, err := d.SetRowVariant(v); err != nil {
					return err
				}
				label = fmt.Sprintf("%s, row kernels v%d", p, v)
			}
			res := cuda.Check(d, cases, bf, *seed, w)
			for _, r := range res {
				if !r.OK && *quiet {
					fmt.Printf("FAIL %s (%s): rel err %.2e (tol %.0e) %s\n", r.Case, label, r.Err, r.Tol, r.Detail)
				}
				failed = failed || !r.OK
			}
			fmt.Printf("%s: %s\n", label, cuda.Summary(res))
		}
		if *step {
			// fp32: the device step must be the CPU's. bf16: its distance from
			// the CPU's fp32 step is bf16's own error (per gradient about 3e-2
			// on the tiny model, depending on shapes and batch; bf16 GEMM
			// inputs alone give 2e-2), so it is only bounded loosely, against
			// gross errors, and a GPU is judged against the emulation, which
			// runs the same bf16 algorithm on the host, when that library is
			// there.
			tol := cuda.TolFP32
			if bf {
				tol = stepTolBF16
			}
			ok, line, err := compareStep(d, nil, "the CPU", cfg, *batch, *seed, tol)
			if err != nil {
				return err
			}
			fmt.Printf("%s: %s\n", p, line)
			if bf && !o.Emulate {
				if emu, err := cuda.Open(cuda.Options{Emulate: true, BF16: true}); err == nil {
					if ok, line, err = compareStep(d, emu, "the bf16 emulation", cfg, *batch, *seed, stepTolSameBF16); err != nil {
						return err
					}
					fmt.Printf("%s: %s\n", p, line)
				} else {
					fmt.Printf("%s: no emulation library to compare the bf16 step with (%v)\n", p, err)
				}
			}
			failed = failed || !ok
		}
	}
	if failed {
		return errors.New("some device kernels differ from the CPU reference")
	}
	return nil
}

// runKernelsBench times every kernel case of a config's training step on a
// device, next to the bytes and FLOPs it must move as fractions of the
// device's measured bandwidth and matrix rate.
func runKernelsBench(args []string) error {
	fs := flag.NewFlagSet("kernels bench", flag.ContinueOnError)
	dev := addDeviceFlags(fs)
	config := fs.String("config", "train/configs/bench.json", "train config whose model_config gives the shapes")
	batch := fs.Int("batch", 4, "batch size of the recorded training step")
	reps := fs.Int("reps", 5, "timed runs per case (the median is reported)")
	top := fs.Int("top", 15, "list the N slowest cases at the end")
	rateN := fs.Int("rate-elements", 1<<26, "elements of the bandwidth probe (an Accumulate)")
	rateM := fs.Int("rate-matrix", 8192, "side of the matrix-rate probe (a square Gemm on activation buffers)")
	rows := fs.Int("rows", 1, "on a device, also time every row-kernel version (cuda.RowVariants) and list the cases it changes; 0: the default version only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	be, err := dev.open()
	if err != nil {
		return err
	}
	tc, err := train.ReadTrainConfig(*config)
	if err != nil {
		return err
	}
	cases, err := recordStep(*tc.ModelConfig, *batch, 1)
	if err != nil {
		return err
	}
	r := cuda.MeasureRates(be, *rateN, *rateM, 3)
	fmt.Printf("device %s: measured %.1f GB/s (Accumulate of %d elements), %.2f TFLOP/s (Gemm %d^3 on activation buffers)\n",
		*dev.device, r.Bandwidth/1e9, *rateN, r.Matrix/1e12, *rateM)
	d, isDevice := be.(*cuda.Device)
	if *rows == 0 || !isDevice || d.Emulated() {
		cuda.Top(cuda.Bench(be, cases, *reps, r, os.Stdout), *top, os.Stdout)
		return nil
	}
	// every row-kernel version, the default (the last) in full, then the
	// cases whose time the version changes
	var runs [][]cuda.BenchResult
	for _, v := range cuda.RowVariants {
		if _, err := d.SetRowVariant(v); err != nil {
			return err
		}
		w := io.Discard
		if v == cuda.RowVariants[len(cuda.RowVariants)-1] {
			w = os.Stdout
			fmt.Printf("row kernels v%d:\n", v)
		}
		runs = append(runs, cuda.Bench(be, cases, *reps, r, w))
	}
	last := runs[len(runs)-1]
	cuda.Top(last, *top, os.Stdout)
	fmt.Printf("cases the row-kernel version changes by more than 10%%:\n")
	for i, c := range last {
		var times []string
		changed := false
		for k, run := range runs {
			times = append(times, fmt.Sprintf("v%d %10s", cuda.RowVariants[k], run[i].Time.Round(time.Microsecond/10)))
			q := run[i].Time.Seconds() / max(c.Time.Seconds(), 1e-12)
			changed = changed || q > 1.1 || q < 1/1.1
		}
		if changed {
			fmt.Printf("  %-72s %s\n", c.Case, strings.Join(times, "  "))
		}
	}
	return nil
}

// Tolerances of the training-step comparison with bf16 activations: against
// the CPU's fp32 step (a bound on gross errors only: bf16 itself moves
// gradients by a few percent), and against the same bf16 algorithm (the
// emulation).
const (
	stepTolBF16     = 1e-1
	stepTolSameBF16 = 1e-3
)

// compareStep runs the loss and backward pass of one batch on ref (nil: the
// CPU), called refName, and on dev from the same weights (random, with
// GLIDE's zero layers made non-zero so that every gradient is non-trivial)
// and compares the loss and every parameter gradient (norm-wise relative
// error within tol).
func compareStep(dev, ref kernels.Backend, refName string, cfg unet.Config, B int, seed uint64, tol float64) (bool, string, error) {
	cfg.Dropout = 0 // the same masks on both sides need no dropout at all
	init, err := unet.NewModel(cfg, nil)
	if err != nil {
		return false, "", err
	}
	init.Init(seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for i := range init.Params.Data {
		init.Params.Data[i] += float32(0.02 * rng.NormFloat64())
	}
	in, noise, w := unet.RandomBatch(cfg, B, seed, 0.01)
	step := func(be kernels.Backend) (float64, []float32, error) {
		m := init
		if be != nil {
			if m, err = unet.NewModel(cfg, be); err != nil {
				return 0, nil, err
			}
			defer m.Close()
			if err := m.LoadStateDict(init.StateDict()); err != nil {
				return 0, nil, err
			}
		}
		m.ZeroGrad()
		loss, err := m.Loss(in, noise, w, true)
		if err != nil {
			return 0, nil, err
		}
		g := make([]float32, len(m.Params.Grad))
		m.Backend().CopyToHost(g, m.Params.Grad)
		return loss, g, nil
	}
	want, refGrads, err := step(ref)
	if err != nil {
		return false, "", err
	}
	got, grads, err := step(dev)
	if err != nil {
		return false, "", err
	}
	ok := math.Abs(got-want)/math.Abs(want) <= tol
	worst, worstName, bad := 0.0, "", 0
	for _, v := range init.Params.Layout.Views() {
		g, r := grads[v.Offset:v.Offset+v.Size], refGrads[v.Offset:v.Offset+v.Size]
		var num, den float64
		for i := range r {
			d := float64(g[i]) - float64(r[i])
			num += d * d
			den += float64(r[i]) * float64(r[i])
		}
		e := math.Sqrt(num / math.Max(den, 1e-300))
		if math.IsNaN(e) || e > tol {
			bad++
			ok = false
		}
		if e > worst || math.IsNaN(e) {
			worst, worstName = e, v.Name
		}
	}
	verdict := "agrees with"
	if !ok {
		verdict = "DIFFERS from"
	}
	return ok, fmt.Sprintf("training step %s %s: loss %.7f vs %.7f (rel %.2e); %d gradients, %d beyond %.0e, worst %s %.2e",
		verdict, refName, got, want, math.Abs(got-want)/math.Abs(want), len(init.Params.Layout.Views()), bad, tol, worstName, worst), nil
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
	in, noise, w := unet.RandomBatch(cfg, B, seed, 0.01)
	if _, _, err := m.TrainStep(in, noise, w, unet.DefaultOptim()); err != nil {
		return nil, err
	}
	rec.EMAUpdate(m.Params.M, m.Params.Data, 0.999)
	return rec.Cases(), nil
}
