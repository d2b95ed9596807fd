// Package benchrun holds what the model benchmarks (bench/train,
// bench/sample) share: timings in wall and process CPU time with their
// medians, the machine's description and sgemm rate, the PyTorch reference
// process they talk to over stdin/stdout, and the analytic FLOP count of a
// U-Net forward pass.
package benchrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

// Timing is one timed run: wall seconds, CPU seconds of its process (every
// thread), a loss or check value the run reports, and (from PyTorch on a
// GPU) the peak device memory so far.
type Timing struct {
	Wall, CPU, Loss float64
	Peak            int64
}

// WallOf and CPUOf select a Timing's seconds.
func WallOf(s Timing) float64 { return s.Wall }
func CPUOf(s Timing) float64  { return s.CPU }

// Median is the median of f over ss (NaN for none).
func Median(ss []Timing, f func(Timing) float64) float64 {
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

// Best is the smallest f over ss.
func Best(ss []Timing, f func(Timing) float64) float64 {
	b := math.Inf(1)
	for _, s := range ss {
		b = min(b, f(s))
	}
	return b
}

// Walls lists the wall times of ss.
func Walls(ss []Timing) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.3f", s.Wall)
	}
	return b.String()
}

// Time runs fn once and times it.
func Time(fn func() (float64, error)) (Timing, error) {
	w0, c0 := time.Now(), ProcessCPU()
	v, err := fn()
	return Timing{Wall: time.Since(w0).Seconds(), CPU: (ProcessCPU() - c0).Seconds(), Loss: v}, err
}

// ProcessCPU is this process's user + system time, every thread counted.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUModel is /proc/cpuinfo's model name.
func CPUModel() string {
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

// Machine prints the machine line both benchmarks start with and warns when
// the GEMM threads differ from GOMAXPROCS.
func Machine() (threads int) {
	threads = runtime.GOMAXPROCS(0)
	if ct, set := os.LookupEnv("OPENBLAS_CORETYPE"); set {
		// Both sides run what it says; on an AVX-512 CPU an AVX2 core type
		// (Haswell, Zen) runs sgemm at about 60% of OpenBLAS's own choice.
		log.Printf("note: OPENBLAS_CORETYPE=%s from the environment picks OpenBLAS's kernels for both sides; unset it to let OpenBLAS choose by CPUID", ct)
	}
	fmt.Printf("machine: %s, %d cores, GOMAXPROCS %d; GEMM: %s, OPENBLAS_THREAD_TIMEOUT %s; 3x3 convolutions: %s\n", CPUModel(), runtime.NumCPU(), threads, kernels.GEMMBackend(), os.Getenv("OPENBLAS_THREAD_TIMEOUT"), kernels.ConvBackend())
	if !strings.Contains(kernels.GEMMBackend(), fmt.Sprintf(", %d threads", threads)) {
		log.Printf("warning: Go's GEMM threads differ from GOMAXPROCS %d (set OPENBLAS_NUM_THREADS=%d); PyTorch gets %d", threads, threads, threads)
	}
	return threads
}

// SgemmRate is the best of 5 timed 1024^3 float32 GEMMs through
// kernels.Gemm, in GFLOP/s of wall time.
func SgemmRate() float64 {
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

// Torch is a tools/train/reference.py benchmark subcommand kept running
// between rounds: it prints a ready line (TorchInfo), then answers each
// request line with result lines.
type Torch struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	Info TorchInfo
}

// TorchInfo is the ready line.
type TorchInfo struct {
	Ready   bool   `json:"ready"`
	Params  int    `json:"params"`
	Threads int    `json:"threads"`
	Torch   string `json:"torch"`
	// BLASCore is openblas_get_corename() in the PyTorch process.
	BLASCore string `json:"blas_core"`
	// Device, Precision, Mode and SDPA describe a bench run's setup
	// (reference.py's Bench.info).
	Device    string `json:"device"`
	Precision string `json:"precision"`
	Mode      string `json:"mode"`
	SDPA      bool   `json:"sdpa"`
}

// StartTorch runs python with args, its OpenBLAS and OpenMP on threads
// threads and OpenBLAS's kernel set, and waits for its ready line.
func StartTorch(python string, args []string, threads int) (*Torch, error) {
	cmd := exec.Command(python, args...)
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
	p := &Torch{cmd: cmd, in: stdin, out: bufio.NewScanner(stdout)}
	p.out.Buffer(make([]byte, 1<<16), 1<<24)
	if !p.out.Scan() {
		p.Close()
		return nil, fmt.Errorf("%v: no ready line (%v)", args, p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), &p.Info); err != nil || !p.Info.Ready {
		p.Close()
		return nil, fmt.Errorf("%v: unexpected line %q", args, p.out.Text())
	}
	fmt.Printf("pytorch: %s, %.2fM parameters, %d threads, OpenBLAS core %s\n", p.Info.Torch, float64(p.Info.Params)/1e6, p.Info.Threads, p.Info.BLASCore)
	if core := kernels.OpenBLASCore(); core != "" && p.Info.BLASCore != core {
		log.Printf("warning: OpenBLAS kernel sets differ: go %s, pytorch %s", core, p.Info.BLASCore)
	}
	return p, nil
}

// Run sends one request line and decodes n result lines as Timings.
func (p *Torch) Run(request string, n int) ([]Timing, error) {
	if _, err := fmt.Fprintln(p.in, request); err != nil {
		return nil, err
	}
	out := make([]Timing, n)
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

// Close ends the process.
func (p *Torch) Close() {
	p.in.Close()
	p.cmd.Wait()
}

// ForwardFLOPs counts one forward pass of batch B analytically from the
// layer shapes, following the module tree of unet (and reference.py): 2
// FLOPs per multiply-add of every convolution, linear layer and attention
// product (QK^T and AV); text counts the text encoder too.
func ForwardFLOPs(c unet.Config, B int, text bool) float64 {
	var f float64
	conv := func(cin, cout, k, hw int) { f += 2 * float64(B*cin*cout*k*k*hw*hw) }
	linear := func(n, in, out int) { f += 2 * float64(n*in*out) }
	E, L, W := c.TimeEmbedDim(), c.TextCtx, c.XFWidth
	// time embedding, text transformer, transformer_proj
	linear(B, c.ModelChannels, E)
	linear(B, E, E)
	if text {
		for range c.XFLayers {
			linear(B*L, W, 3*W)
			f += 2 * 2 * float64(B*L*L*W) // QK^T and AV over all heads
			linear(B*L, W, W)
			linear(B*L, W, 4*W)
			linear(B*L, 4*W, W)
		}
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
	return f
}

// WriteInputs stores a training batch for reference.py's bench subcommand.
func WriteInputs(path string, mc unet.Config, in *unet.Batch, noise, weight []float32) error {
	B, C, S, L := in.N(), mc.InChannels, mc.ImageSize, mc.TextCtx
	tok := make([]int64, len(in.Tokens))
	for i, v := range in.Tokens {
		tok[i] = int64(v)
	}
	ts := map[string]safetensors.Tensor{
		"z_t":         safetensors.F32([]int{B, C, S, S}, in.X),
		"noise":       safetensors.F32([]int{B, C, S, S}, noise),
		"timesteps":   safetensors.F32([]int{B}, in.Timesteps),
		"w_a":         safetensors.F32([]int{B}, in.WA),
		"loss_weight": safetensors.F32([]int{B, S, S}, weight),
		"tokens":      safetensors.I64([]int{B, L}, tok),
		"mask":        safetensors.Bool([]int{B, L}, in.Mask),
		"keyword":     safetensors.Bool([]int{B, L}, in.Keyword),
	}
	return safetensors.WriteFile(path, ts, nil)
}
