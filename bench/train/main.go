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
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
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
	threads := runtime.GOMAXPROCS(0)
	if ct, set := os.LookupEnv("OPENBLAS_CORETYPE"); set {
		// Both sides run what it says; on an AVX-512 CPU an AVX2 core type
		// (Haswell, Zen) runs sgemm at about 60% of OpenBLAS's own choice.
		log.Printf("note: OPENBLAS_CORETYPE=%s from the environment picks OpenBLAS's kernels for both sides; unset it to let OpenBLAS choose by CPUID", ct)
	}
	fmt.Printf("machine: %s, %d cores, GOMAXPROCS %d; GEMM: %s, OPENBLAS_THREAD_TIMEOUT %s; 3x3 convolutions: %s\n", cpuModel(), runtime.NumCPU(), threads, kernels.GEMMBackend(), os.Getenv("OPENBLAS_THREAD_TIMEOUT"), kernels.ConvBackend())
	if !strings.Contains(kernels.GEMMBackend(), fmt.Sprintf(", %d threads", threads)) {
		log.Printf("warning: Go's GEMM threads differ from GOMAXPROCS %d (set OPENBLAS_NUM_THREADS=%d); PyTorch gets %d", threads, threads, threads)
	}

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

	var torch *torchProc
	if !noTorch {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		inputs := filepath.Join(dir, "inputs.safetensors")
		if err := writeInputs(inputs, mc, in, noise, weight); err != nil {
			return err
		}
		torch, err = startTorch(python, ref, config, inputs, threads)
		if err != nil {
			return err
		}
		defer torch.close()
		fmt.Printf("pytorch: %s, %.2fM parameters, %d threads, OpenBLAS core %s\n", torch.info.Torch, float64(torch.info.Params)/1e6, torch.info.Threads, torch.info.BLASCore)
		if core := kernels.OpenBLASCore(); core != "" && torch.info.BLASCore != core {
			log.Printf("warning: OpenBLAS kernel sets differ: go %s, pytorch %s", core, torch.info.BLASCore)
		}
		if torch.info.Params != m.NumParams() {
			return fmt.Errorf("parameter counts differ: go %d, pytorch %d", m.NumParams(), torch.info.Params)
		}
	}

	goStep := func() (sample, error) {
		w0, c0 := time.Now(), processCPU()
		loss, _, err := m.TrainStep(in, noise, weight, opt)
		return sample{Wall: time.Since(w0).Seconds(), CPU: (processCPU() - c0).Seconds(), Loss: loss}, err
	}

	gemm1 := sgemmRate()
	for range warmup {
		if _, err := goStep(); err != nil {
			return err
		}
	}
	if torch != nil {
		if _, err := torch.steps(warmup); err != nil {
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

	var goS, ptS []sample
	for r := range rounds {
		for range steps {
			s, err := goStep()
			if err != nil {
				return err
			}
			goS = append(goS, s)
		}
		if torch != nil {
			ss, err := torch.steps(steps)
			if err != nil {
				return err
			}
			ptS = append(ptS, ss...)
		}
		fmt.Printf("round %d: go wall %s | pytorch wall %s\n", r+1, walls(goS[len(goS)-steps:]), walls(ptS[max(0, len(ptS)-steps):]))
	}
	gemm2 := sgemmRate()
	gemm := max(gemm1, gemm2)

	fmt.Printf("\nmedians of %d steps per side (best step in brackets; under load PyTorch's OpenMP threads can stall for seconds, so compare the medians and the single-thread run as well)\n", len(goS))
	gw, gc := median(goS, wallOf), median(goS, cpuOf)
	fmt.Printf("sgemm 1024^3 (kernels.Gemm, %s): %.1f GFLOP/s wall (runs: %.1f, %.1f)\n", kernels.GEMMBackend(), gemm, gemm1, gemm2)
	fmt.Printf("go      s/step: wall %.3f [%.3f]  cpu %.3f [%.3f]  -> %.1f GFLOP/s wall (%.0f%% of sgemm), %.1f GFLOP per CPU-second  (loss %.4f -> %.4f)\n",
		gw, best(goS, wallOf), gc, best(goS, cpuOf), flops/gw/1e9, 100*flops/gw/1e9/gemm, flops/gc/1e9, goS[0].Loss, goS[len(goS)-1].Loss)
	if torch != nil {
		pw, pc := median(ptS, wallOf), median(ptS, cpuOf)
		fmt.Printf("pytorch s/step: wall %.3f [%.3f]  cpu %.3f [%.3f]  -> %.1f GFLOP/s wall (%.0f%% of sgemm), %.1f GFLOP per CPU-second  (loss %.4f -> %.4f)\n",
			pw, best(ptS, wallOf), pc, best(ptS, cpuOf), flops/pw/1e9, 100*flops/pw/1e9/gemm, flops/pc/1e9, ptS[0].Loss, ptS[len(ptS)-1].Loss)
		fmt.Printf("ratio   go / pytorch: wall %.2f [best %.2f], cpu %.2f [best %.2f]  (target <= 1.0)\n",
			gw/pw, best(goS, wallOf)/best(ptS, wallOf), gc/pc, best(goS, cpuOf)/best(ptS, cpuOf))
	}
	return nil
}

type sample struct {
	Wall, CPU, Loss float64
}

func wallOf(s sample) float64 { return s.Wall }
func cpuOf(s sample) float64  { return s.CPU }

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return math.NaN()
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func best(ss []sample, f func(sample) float64) float64 {
	b := math.Inf(1)
	for _, s := range ss {
		b = min(b, f(s))
	}
	return b
}

func walls(ss []sample) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.3f", s.Wall)
	}
	return b.String()
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

// writeInputs stores the batch for the PyTorch side.
func writeInputs(path string, mc unet.Config, in *unet.Batch, noise, weight []float32) error {
	B, C, S, L := in.N(), mc.InChannels, mc.ImageSize, mc.TextCtx
	tok := make([]byte, 8*len(in.Tokens))
	for i, v := range in.Tokens {
		binary.LittleEndian.PutUint64(tok[8*i:], uint64(v))
	}
	bools := func(v []bool) []byte {
		b := make([]byte, len(v))
		for i, x := range v {
			if x {
				b[i] = 1
			}
		}
		return b
	}
	ts := map[string]safetensors.Tensor{
		"z_t":         safetensors.F32([]int{B, C, S, S}, in.X),
		"noise":       safetensors.F32([]int{B, C, S, S}, noise),
		"timesteps":   safetensors.F32([]int{B}, in.Timesteps),
		"w_a":         safetensors.F32([]int{B}, in.WA),
		"loss_weight": safetensors.F32([]int{B, S, S}, weight),
		"tokens":      {DType: "I64", Shape: []int{B, L}, Data: tok},
		"mask":        {DType: "BOOL", Shape: []int{B, L}, Data: bools(in.Mask)},
		"keyword":     {DType: "BOOL", Shape: []int{B, L}, Data: bools(in.Keyword)},
	}
	return safetensors.WriteFile(path, ts, nil)
}

// torchProc is reference.py's bench subcommand, kept running between rounds.
type torchProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	info struct {
		Ready   bool   `json:"ready"`
		Params  int    `json:"params"`
		Threads int    `json:"threads"`
		Torch   string `json:"torch"`
		// BLASCore is openblas_get_corename() in the PyTorch process.
		BLASCore string `json:"blas_core"`
	}
}

func startTorch(python, ref, config, inputs string, threads int) (*torchProc, error) {
	cmd := exec.Command(python, ref, "bench", config, inputs, fmt.Sprint(threads))
	// OpenBLAS (under torch) and OpenMP get the same thread count as Go, and
	// OpenBLAS the same kernel set (OpenBLAS chooses it at load, from
	// OPENBLAS_CORETYPE or CPUID), so both sides' matrix products run the same code.
	cmd.Env = append(os.Environ(), fmt.Sprintf("OMP_NUM_THREADS=%d", threads), fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", threads))
	if core := kernels.OpenBLASCore(); core != "" {
		// kernels also set OPENBLAS_THREAD_TIMEOUT in this process's
		// environment (see kernels.GEMMBackend), which the child inherits.
		cmd.Env = append(cmd.Env, "OPENBLAS_CORETYPE="+core)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (install Debian python3-torch, or pass --python)", python, err)
	}
	p := &torchProc{cmd: cmd, in: stdin, out: bufio.NewScanner(stdout)}
	if !p.out.Scan() {
		p.close()
		return nil, fmt.Errorf("%s bench: no ready line (%v)", ref, p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), &p.info); err != nil || !p.info.Ready {
		p.close()
		return nil, fmt.Errorf("%s bench: unexpected line %q", ref, p.out.Text())
	}
	return p, nil
}

func (p *torchProc) steps(n int) ([]sample, error) {
	if _, err := fmt.Fprintln(p.in, n); err != nil {
		return nil, err
	}
	out := make([]sample, n)
	for i := range out {
		if !p.out.Scan() {
			return nil, fmt.Errorf("pytorch bench ended early (%v)", p.out.Err())
		}
		if err := json.Unmarshal(p.out.Bytes(), &out[i]); err != nil {
			return nil, fmt.Errorf("pytorch bench: %q: %w", p.out.Text(), err)
		}
	}
	return out, nil
}

func (p *torchProc) close() {
	p.in.Close()
	p.cmd.Wait()
}

// sgemmRate is the best of 5 timed 1024^3 float32 GEMMs through kernels.Gemm,
// in GFLOP/s of wall time.
func sgemmRate() float64 {
	const n = 1024
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range a {
		a[i], b[i] = rng.Float32(), rng.Float32()
	}
	kernels.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm-up
	best := math.Inf(1)
	for range 5 {
		t0 := time.Now()
		kernels.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		best = min(best, time.Since(t0).Seconds())
	}
	return 2 * n * n * n / best / 1e9
}

// stepFLOPs counts one training step analytically from the layer shapes,
// following the module tree of train (and reference.py): 2 FLOPs per
// multiply-add of every convolution, linear layer and attention product
// (QK^T and AV) in the forward pass, times 3 for forward plus backward (the
// input gradient and the weight gradient, or for attention the gradients of
// both operands, each cost as much as the forward product).
func stepFLOPs(c unet.Config, B int) float64 {
	var f float64
	conv := func(cin, cout, k, hw int) { f += 2 * float64(B*cin*cout*k*k*hw*hw) }
	linear := func(n, in, out int) { f += 2 * float64(n*in*out) }
	E, L, W := c.TimeEmbedDim(), c.TextCtx, c.XFWidth
	// time embedding, text transformer, transformer_proj
	linear(B, c.ModelChannels, E)
	linear(B, E, E)
	for range c.XFLayers {
		linear(B*L, W, 3*W)
		f += 2 * 2 * float64(B*L*L*W) // QK^T and AV over all heads
		linear(B*L, W, W)
		linear(B*L, W, 4*W)
		linear(B*L, 4*W, W)
	}
	linear(B, W, E)
	res := func(cin, cout, hw int) { // at the output resolution hw
		conv(cin, cout, 3, hw)
		linear(B, E, 2*cout) // scale-shift; (cout without)
		if !c.UseScaleShiftNorm {
			f -= 2 * float64(B*E*cout)
		}
		conv(cout, cout, 3, hw)
		if cin != cout {
			conv(cin, cout, 1, hw)
		}
	}
	attn := func(ch, hw int) {
		T := hw * hw
		f += 2 * float64(B*T*ch*3*ch) // qkv
		f += 2 * float64(B*L*W*2*ch)  // encoder_kv
		f += 2 * 2 * float64(B*T*(L+T)*ch)
		f += 2 * float64(B*T*ch*ch) // proj_out
	}
	mc, S := c.ModelChannels, c.ImageSize
	ch := c.ChannelMult[0] * mc
	conv(c.InChannels, ch, 3, S)
	chans, ds, hw := []int{ch}, 1, S
	for level, mult := range c.ChannelMult {
		for range c.NumResBlocks {
			res(ch, mult*mc, hw)
			ch = mult * mc
			if slices.Contains(c.AttentionResolution, ds) {
				attn(ch, hw)
			}
			chans = append(chans, ch)
		}
		if level != len(c.ChannelMult)-1 {
			hw /= 2
			if c.ResblockUpdown {
				res(ch, ch, hw)
			} else {
				conv(ch, ch, 3, hw)
			}
			chans = append(chans, ch)
			ds *= 2
		}
	}
	res(ch, ch, hw)
	attn(ch, hw)
	res(ch, ch, hw)
	for level := len(c.ChannelMult) - 1; level >= 0; level-- {
		mult := c.ChannelMult[level]
		for i := range c.NumResBlocks + 1 {
			ich := chans[len(chans)-1]
			chans = chans[:len(chans)-1]
			res(ch+ich, mult*mc, hw)
			ch = mult * mc
			if slices.Contains(c.AttentionResolution, ds) {
				attn(ch, hw)
			}
			if level > 0 && i == c.NumResBlocks {
				hw *= 2
				if c.ResblockUpdown {
					res(ch, ch, hw)
				} else {
					conv(ch, ch, 3, hw)
				}
				ds /= 2
			}
		}
	}
	conv(ch, c.OutChannels, 3, S)
	return 3 * f
}

// processCPU is this process's user + system time, every thread counted.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}
