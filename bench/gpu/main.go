// Command gpu is the GPU benchmark (task bench-gpu; tools/gpu-check.sh runs
// it on a lent GPU): kediff's training step and classifier-free-guided
// sampling step on a device, next to tools/train/reference.py's PyTorch port
// of the same model on the same device in the same run.
//
// For each --models entry (a train config and a batch) it times full
// training steps (zero grad, forward, weighted eps-MSE, backward, clipping,
// AdamW) of a randomly initialised model on one random batch, then the same
// steps in PyTorch in every --torch-modes mode (eager, or torch.compile),
// with bf16 autocast when --precision is bf16 and attention through
// F.scaled_dot_product_attention where torch has it. Each side reports
// milliseconds per step (median), images per second, the analytic step
// FLOPs per second (benchrun.ForwardFLOPs, times 3 for the backward) as a
// fraction of the device's measured matrix rate (MFU), and its peak device
// memory. For each --sample-models entry it times the sampling step at batch
// 1: one forward of both guidance halves as a batch of 2 with the prompt
// encoded once, the guided eps and a DDIM update, on both sides.
//
// The matrix rate is measured in the same run (a large square GEMM on
// activation buffers, kernels/cuda.MeasureRates), so MFU means the same on
// both sides. --device cpu or cuda-emu with --torch-device cpu runs the whole
// harness without a GPU (the test does, at the tiny config).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/unet"
)

// options are the command's flags.
type options struct {
	device, precision         string
	models, sampleModels      string
	warmup, steps             int
	sampleWarmup, sampleSteps int
	python, reference, dir    string
	torchDevice, torchModes   string
	noTorch                   bool
	rateElements, rateSide    int
	jsonOut                   string
}

func main() {
	var o options
	flag.StringVar(&o.device, "device", "cuda", "kediff's device: cuda, cuda:N, cuda-emu or cpu")
	flag.StringVar(&o.precision, "precision", "bf16", "fp32 or bf16 (bf16 activations on kediff's side, bf16 autocast on PyTorch's)")
	flag.StringVar(&o.models, "models", "train/configs/bench.json:64,train/configs/sd2.json:32", "training-step models: comma-separated CONFIG:BATCH (a train config with model_config)")
	flag.StringVar(&o.sampleModels, "sample-models", "train/configs/sd2.json", "sampling-step models (batch 1 with guidance): comma-separated train configs; \"\" for none")
	flag.IntVar(&o.warmup, "warmup", 3, "untimed training steps per side first (torch.compile compiles in them)")
	flag.IntVar(&o.steps, "steps", 10, "timed training steps per side (the median is reported)")
	flag.IntVar(&o.sampleWarmup, "sample-warmup", 5, "untimed sampling steps per side first")
	flag.IntVar(&o.sampleSteps, "sample-steps", 30, "timed sampling steps per side")
	flag.StringVar(&o.python, "python", "python3", "python with torch (on the GPU machine, the one that sees the GPU)")
	flag.StringVar(&o.reference, "reference", "tools/train/reference.py", "the PyTorch reference script")
	flag.StringVar(&o.dir, "dir", "out/bench-gpu", "working folder (the batch for PyTorch)")
	flag.StringVar(&o.torchDevice, "torch-device", "cuda", "PyTorch's device: cuda or cpu")
	flag.StringVar(&o.torchModes, "torch-modes", "eager,compile", "PyTorch modes: comma-separated eager, compile or compile:MODE (torch.compile's mode=)")
	flag.BoolVar(&o.noTorch, "no-torch", false, "time kediff's side only")
	flag.IntVar(&o.rateElements, "rate-elements", 1<<26, "elements of the bandwidth probe")
	flag.IntVar(&o.rateSide, "rate-matrix", 8192, "side of the matrix-rate probe (a square GEMM)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results to this JSON file")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// result is one side's figures for one model.
type result struct {
	Model     string  `json:"model"`
	Kind      string  `json:"kind"` // "train" or "sample"
	Side      string  `json:"side"` // "kediff" or "pytorch MODE"
	Batch     int     `json:"batch"`
	Params    int     `json:"params"`
	MsPerStep float64 `json:"ms_per_step"`
	BestMs    float64 `json:"best_ms"`
	ImagesPS  float64 `json:"images_per_s,omitempty"`
	TFLOPS    float64 `json:"tflops"`
	MFU       float64 `json:"mfu"`
	PeakBytes int64   `json:"peak_bytes"`
	Loss      float64 `json:"loss"`
	Error     string  `json:"error,omitempty"`
}

// report is the whole run, as --json writes it.
type report struct {
	Date      string   `json:"date"`
	Device    string   `json:"device"`
	Precision string   `json:"precision"`
	Bandwidth float64  `json:"bandwidth_bytes_per_s"`
	Matrix    float64  `json:"matrix_flops_per_s"`
	Results   []result `json:"results"`
}

func run(o options) error {
	spec, isCUDA, err := cuda.ParseDevice(o.device)
	if err != nil {
		return err
	}
	if !isCUDA && o.device != "cpu" {
		return fmt.Errorf("--device %q: want cuda, cuda:N, cuda-emu or cpu", o.device)
	}
	var dev kernels.Backend = &kernels.CPU{}
	name := "CPU (" + benchrun.CPUModel() + ")"
	switch {
	case o.precision != "fp32" && o.precision != "bf16":
		return fmt.Errorf("--precision %q: want fp32 or bf16", o.precision)
	case isCUDA:
		spec.BF16 = o.precision == "bf16"
		d, err := cuda.Open(spec)
		if err != nil {
			return err
		}
		dev, name = d, d.String()
	case o.precision == "bf16":
		return fmt.Errorf("--precision bf16 needs --device cuda (the CPU kernels run fp32)")
	}
	rates := cuda.MeasureRates(dev, o.rateElements, o.rateSide, 5)
	rep := report{Date: time.Now().UTC().Format(time.RFC3339), Device: name, Precision: o.precision, Bandwidth: rates.Bandwidth, Matrix: rates.Matrix}
	fmt.Printf("kediff: %s, %s; measured ceilings: %.0f GB/s (Accumulate of %d), %.1f TFLOP/s (%d^3 GEMM)\n",
		name, o.precision, rates.Bandwidth/1e9, o.rateElements, rates.Matrix/1e12, o.rateSide)
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	modes := strings.Split(o.torchModes, ",")
	if o.noTorch {
		modes = nil
	}
	for _, entry := range splitList(o.models) {
		path, b, ok := strings.Cut(entry, ":")
		B, err := strconv.Atoi(b)
		if !ok || err != nil || B < 1 {
			return fmt.Errorf("--models entry %q: want CONFIG:BATCH", entry)
		}
		res, err := trainModel(o, dev, rates, path, B, modes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rep.Results = append(rep.Results, res...)
	}
	for _, path := range splitList(o.sampleModels) {
		res, err := sampleModel(o, dev, rates, path, modes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rep.Results = append(rep.Results, res...)
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// readModel reads a train config's model_config.
func readModel(path string) (unet.Config, error) {
	var c struct {
		Model *unet.Config `json:"model_config"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return unet.Config{}, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return unet.Config{}, err
	}
	if c.Model == nil {
		return unet.Config{}, fmt.Errorf("no model_config (bench/gpu takes a train config such as train/configs/sd2.json)")
	}
	return *c.Model, c.Model.Validate()
}

// memory is the device's peak bytes since reset (0 on the CPU).
func memory(dev kernels.Backend, reset bool) int64 {
	if d, ok := dev.(*cuda.Device); ok {
		_, peak := d.Memory(reset)
		return peak
	}
	return 0
}

func wait(dev kernels.Backend) {
	if d, ok := dev.(*cuda.Device); ok {
		d.Sync()
	}
}

// trainModel times kediff's training step and then PyTorch's in each mode.
func trainModel(o options, dev kernels.Backend, rates cuda.Rates, path string, B int, modes []string) ([]result, error) {
	mc, err := readModel(path)
	if err != nil {
		return nil, err
	}
	flops := 3 * benchrun.ForwardFLOPs(mc, B, true)
	in, noise, weight := unet.RandomBatch(mc, B, 7, 0.01)
	memory(dev, true)
	m, err := unet.NewModel(mc, dev)
	if err != nil {
		return nil, err
	}
	m.Init(1)
	fmt.Printf("\n== training step: %s, %.2fM parameters, batch %d of %dx%dx%d; %.2f TFLOP per step (analytic)\n",
		path, float64(m.NumParams())/1e6, B, mc.InChannels, mc.ImageSize, mc.ImageSize, flops/1e12)
	opt := unet.DefaultOptim()
	var ts []benchrun.Timing
	for i := range o.warmup + o.steps {
		t, err := benchrun.Time(func() (float64, error) {
			loss, _, err := m.TrainStep(in, noise, weight, opt) // reads the loss: the step has finished
			return loss, err
		})
		if err != nil {
			m.Close()
			return nil, err
		}
		if i >= o.warmup {
			ts = append(ts, t)
		}
	}
	peak := memory(dev, false)
	params := m.NumParams()
	m.Close()
	out := []result{figures(path, "train", "kediff "+o.device+" "+o.precision, B, params, ts, flops, rates, peak)}
	if len(modes) > 0 {
		inputs := filepath.Join(o.dir, "inputs.safetensors")
		if err := benchrun.WriteInputs(inputs, mc, in, noise, weight); err != nil {
			return nil, err
		}
		for _, mode := range modes {
			args := []string{o.reference, "bench", path, inputs, fmt.Sprint(runtime.GOMAXPROCS(0)), "--device", o.torchDevice, "--precision", o.precision, "--mode", mode}
			r := torchSide(o, args, mode, path, "train", B, params, flops, rates)
			out = append(out, r)
		}
	}
	table(out, true)
	return out, nil
}

// torchSide runs one PyTorch mode: warm-up, then the timed steps; a failure
// (torch.compile on an old torch, say) is a result row with its error, so
// the other rows still come.
func torchSide(o options, args []string, mode, path, kind string, B, params int, flops float64, rates cuda.Rates) result {
	side := "pytorch " + o.torchDevice + " " + mode
	fail := func(err error) result {
		log.Printf("%s %s: %v", side, path, err)
		return result{Model: path, Kind: kind, Side: side, Batch: B, Params: params, Error: err.Error()}
	}
	warmup, steps := o.warmup, o.steps
	if kind == "sample" {
		warmup, steps = o.sampleWarmup, o.sampleSteps
	}
	t0 := time.Now()
	p, err := benchrun.StartTorch(o.python, args, runtime.GOMAXPROCS(0))
	if err != nil {
		return fail(err)
	}
	defer p.Close()
	if p.Info.Params != params {
		return fail(fmt.Errorf("parameter counts differ: kediff %d, pytorch %d", params, p.Info.Params))
	}
	if _, err := p.Run(fmt.Sprint(warmup), warmup); err != nil {
		return fail(err)
	}
	fmt.Printf("%s: ready and warmed up in %s (%s, sdpa %v)\n", side, time.Since(t0).Round(time.Second), p.Info.Device, p.Info.SDPA)
	ts, err := p.Run(fmt.Sprint(steps), steps)
	if err != nil {
		return fail(err)
	}
	return figures(path, kind, side, B, params, ts, flops, rates, ts[len(ts)-1].Peak)
}

func figures(path, kind, side string, B, params int, ts []benchrun.Timing, flops float64, rates cuda.Rates, peak int64) result {
	med := benchrun.Median(ts, benchrun.WallOf)
	r := result{Model: path, Kind: kind, Side: side, Batch: B, Params: params, MsPerStep: 1e3 * med,
		BestMs: 1e3 * benchrun.Best(ts, benchrun.WallOf), TFLOPS: flops / med / 1e12, MFU: flops / med / rates.Matrix, PeakBytes: peak}
	if kind == "train" {
		r.ImagesPS = float64(B) / med
	}
	if len(ts) > 0 {
		r.Loss = ts[len(ts)-1].Loss
	}
	return r
}

// table prints the rows and kediff's ratio to each PyTorch mode.
func table(rs []result, train bool) {
	fmt.Printf("%-34s %10s %10s %10s %9s %7s %9s\n", "side", "ms/step", "best ms", "images/s", "TFLOP/s", "MFU", "peak GiB")
	for _, r := range rs {
		if r.Error != "" {
			fmt.Printf("%-34s failed: %s\n", r.Side, r.Error)
			continue
		}
		ips := "-"
		if train {
			ips = fmt.Sprintf("%.1f", r.ImagesPS)
		}
		fmt.Printf("%-34s %10.2f %10.2f %10s %9.1f %6.1f%% %9.2f\n", r.Side, r.MsPerStep, r.BestMs, ips, r.TFLOPS, 100*r.MFU, float64(r.PeakBytes)/(1<<30))
	}
	for _, r := range rs[1:] {
		if r.Error == "" && rs[0].Error == "" {
			fmt.Printf("kediff / %s: %.2f of its time per step (target <= 1)\n", r.Side, rs[0].MsPerStep/r.MsPerStep)
		}
	}
}

// sampleModel times the CFG sampling step at batch 1 on both sides.
func sampleModel(o options, dev kernels.Backend, rates cuda.Rates, path string, modes []string) ([]result, error) {
	mc, err := readModel(path)
	if err != nil {
		return nil, err
	}
	flops := benchrun.ForwardFLOPs(mc, 2, false)
	memory(dev, true)
	m, err := unet.NewInferenceModel(mc, dev)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	m.Init(1)
	fmt.Printf("\n== sampling step (classifier-free guidance, batch 1 = 2 rows, DDIM): %s, %.2fM parameters; %.3f TFLOP per step (analytic)\n",
		path, float64(m.NumParams())/1e6, flops/1e12)
	L, n := mc.TextCtx, mc.InChannels*mc.ImageSize*mc.ImageSize
	rng := rand.New(rand.NewPCG(2, 2))
	tokens, mask := make([]int32, 2*L), make([]bool, 2*L)
	for j := range L {
		tokens[j], tokens[L+j] = int32(rng.IntN(mc.NVocab)), int32(rng.IntN(mc.NVocab))
		mask[L+j] = j < L/2 // row 0 is the unconditional prompt: all padding
	}
	xf, err := m.EncodeText(tokens, mask)
	if err != nil {
		return nil, err
	}
	sched, err := diffusion.NewDDIM(diffusion.Default(), diffusion.DefaultConfig(), 0)
	if err != nil {
		return nil, err
	}
	if err := sched.SetTimesteps(50); err != nil {
		return nil, err
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	in := &unet.Batch{X: make([]float32, 2*n), Timesteps: make([]float32, 2), Tokens: tokens, Mask: mask}
	eps := make([]float32, n)
	step := func(k int) (float64, error) {
		timesteps := sched.Timesteps()
		t := timesteps[k%len(timesteps)]
		copy(in.X, x)
		copy(in.X[n:], x)
		in.Timesteps[0], in.Timesteps[1] = float32(t), float32(t)
		d, err := m.ForwardEncoded(in, xf)
		if err != nil {
			return 0, err
		}
		out := m.Host(d)
		for i := range eps {
			u := out[i]
			eps[i] = u + 2.1*(out[n+i]-u)
		}
		u, err := sched.Update(t)
		if err != nil {
			return 0, err
		}
		diffusion.Apply(u, x, nil, eps, x, nil)
		var s float64
		for _, v := range x {
			s += math.Abs(float64(v))
		}
		return s / float64(n), nil
	}
	var ts []benchrun.Timing
	for k := range o.sampleWarmup + o.sampleSteps {
		t, err := benchrun.Time(func() (float64, error) { return step(k) })
		if err != nil {
			return nil, err
		}
		if k >= o.sampleWarmup {
			ts = append(ts, t)
		}
	}
	wait(dev)
	out := []result{figures(path, "sample", "kediff "+o.device+" "+o.precision, 1, m.NumParams(), ts, flops, rates, memory(dev, false))}
	for _, mode := range modes {
		args := []string{o.reference, "bench-step", path, fmt.Sprint(runtime.GOMAXPROCS(0)), "--device", o.torchDevice, "--precision", o.precision, "--mode", mode}
		out = append(out, torchSide(o, args, mode, path, "sample", 1, m.NumParams(), flops, rates))
	}
	table(out, false)
	return out, nil
}
