package cuda

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kediff/kediff/kernels"
)

// syncer is a backend with queued work to wait for (a Device); the CPU's
// ops return when done.
type syncer interface{ Sync() }

func wait(be kernels.Backend) {
	if s, ok := be.(syncer); ok {
		s.Sync()
	}
}

// timeIt returns the median wall time of reps runs of fn after one warm-up,
// each run waited for.
func timeIt(be kernels.Backend, reps int, fn func()) time.Duration {
	fn()
	wait(be)
	ts := make([]time.Duration, reps)
	for i := range ts {
		t0 := time.Now()
		fn()
		wait(be)
		ts[i] = time.Since(t0)
	}
	slices.Sort(ts)
	return ts[len(ts)/2]
}

// Rates are a device's measured ceilings: memory bandwidth (bytes read plus
// written per second, from a large Accumulate) and the matrix rate (FLOP/s of
// a large square Gemm on activation buffers: bf16 inputs with bf16
// precision).
type Rates struct {
	Bandwidth, Matrix float64
}

// MeasureRates measures dev's Rates with n-element buffers and an m x m x m
// product.
func MeasureRates(dev kernels.Backend, n, m, reps int) Rates {
	a, b := dev.Alloc(n, kernels.ForActivations), dev.Alloc(n, kernels.ForActivations)
	defer dev.Free(a)
	defer dev.Free(b)
	es := elemSize(dev, a)
	t := timeIt(dev, reps, func() { dev.Accumulate(a, b, n) })
	bw := 3 * float64(n) * es / t.Seconds()
	x, y, z := dev.Alloc(m*m, kernels.ForActivations), dev.Alloc(m*m, kernels.ForActivations), dev.Alloc(m*m, kernels.ForActivations)
	defer dev.Free(x)
	defer dev.Free(y)
	defer dev.Free(z)
	rng := rand.New(rand.NewPCG(1, 1))
	host := make([]float32, m*m)
	for i := range host {
		host[i] = float32(rng.NormFloat64())
	}
	dev.CopyToDevice(x, host)
	dev.CopyToDevice(y, host)
	t = timeIt(dev, reps, func() { dev.Gemm(false, false, m, m, m, 1, x, m, y, m, 0, z, m) })
	return Rates{Bandwidth: bw, Matrix: 2 * float64(m) * float64(m) * float64(m) / t.Seconds()}
}

// elemSize is the bytes per element of b on dev.
func elemSize(dev kernels.Backend, b []float32) float64 {
	if d, ok := dev.(interface{ DType([]float32) string }); ok && d.DType(b) == "bf16" {
		return 2
	}
	return 4
}

// BenchResult is one case's time and what it moved and computed.
type BenchResult struct {
	Case  Case
	Time  time.Duration
	Bytes float64 // the fewest bytes the op must move: inputs and outputs once, accumulated buffers twice
	Flops float64
}

// Bench times every case on dev (median of reps runs from random inputs)
// and writes a table of each case's time, bytes and FLOPs as fractions of
// r's bandwidth and matrix rate.
func Bench(dev kernels.Backend, cases []Case, reps int, r Rates, w io.Writer) []BenchResult {
	rng := rand.New(rand.NewPCG(7, 8))
	var out []BenchResult
	fmt.Fprintf(w, "%-72s %10s %9s %6s %9s %6s\n", "kernel case", "time", "GB/s", "of bw", "TFLOP/s", "of mma")
	var total time.Duration
	for _, c := range cases {
		bufs := make([][]float32, len(c.Args))
		var bytes float64
		for i, arg := range c.Args {
			if arg.N < 0 {
				continue
			}
			bufs[i] = dev.Alloc(arg.N, arg.Purpose)
			host := make([]float32, arg.N)
			for j := range host {
				host[j] = draw(rng, arg.Gen)
			}
			dev.CopyToDevice(bufs[i], host)
			k := 1.0
			if arg.Kind == argAcc {
				k = 2
			}
			bytes += k * float64(arg.N) * elemSize(dev, bufs[i])
		}
		t := timeIt(dev, reps, func() { c.Run(dev, bufs) })
		for _, b := range bufs {
			dev.Free(b)
		}
		res := BenchResult{Case: c, Time: t, Bytes: bytes, Flops: c.Flops}
		out = append(out, res)
		total += t
		gbs, tf := bytes/t.Seconds()/1e9, c.Flops/t.Seconds()/1e12
		fmt.Fprintf(w, "%-72s %10s %9.1f %5.1f%% %9.3f %5.1f%%\n", c.String(), t.Round(time.Microsecond/10), gbs, 100*bytes/t.Seconds()/r.Bandwidth, tf, 100*c.Flops/t.Seconds()/r.Matrix)
	}
	fmt.Fprintf(w, "%d cases, %s in all (one call each); ceilings: %.1f GB/s, %.2f TFLOP/s\n", len(out), total.Round(time.Microsecond), r.Bandwidth/1e9, r.Matrix/1e12)
	return out
}

// Top is the n slowest results, slowest first, with each one's share of the
// total time.
func Top(res []BenchResult, n int, w io.Writer) {
	sorted := slices.Clone(res)
	slices.SortFunc(sorted, func(a, b BenchResult) int { return int(b.Time - a.Time) })
	var total time.Duration
	for _, r := range res {
		total += r.Time
	}
	fmt.Fprintf(w, "the %d slowest cases:\n", min(n, len(sorted)))
	for _, r := range sorted[:min(n, len(sorted))] {
		fmt.Fprintf(w, "  %5.1f%%  %10s  %s\n", 100*r.Time.Seconds()/math.Max(total.Seconds(), 1e-12), r.Time.Round(time.Microsecond/10), r.Case)
	}
}
