package train

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/kediff/kediff/dist"
	"github.com/kediff/kediff/internal/cudaemu"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

// tcpWorld connects world ranks over loopback with the torchrun-style
// rendezvous, as goroutines.
func tcpWorld(t *testing.T, world int) []dist.Comm {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	comms := make([]dist.Comm, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Go(func() {
			info := dist.Info{Rank: r, World: world, MasterAddr: "127.0.0.1", MasterPort: port, Launcher: "torchrun"}
			opts := dist.TCPOptions{JobID: t.Name()}
			if r == 0 {
				opts.Listener = ln
			}
			comms[r], errs[r] = dist.DialTCP(context.Background(), info, opts)
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() {
		for _, c := range comms {
			c.Close()
		}
	})
	return comms
}

// trainRanks runs cfg on every comm (rank 0 writes out) and returns the
// errors by rank.
func trainRanks(ctx context.Context, cfg TrainConfig, comms []dist.Comm, data, out string, resume bool) []error {
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Go(func() {
			rc := cfg
			rc.Comm = c
			tr, err := NewTrainer(ctx, rc, data, out, "", resume)
			if err != nil {
				errs[r] = err
				return
			}
			defer tr.Close()
			errs[r] = tr.Run(ctx)
		})
	}
	wg.Wait()
	return errs
}

// relDiff is max|a-b| / max|b| over two state dicts' float32 tensors.
func relDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	ta, _, err := safetensors.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := safetensors.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var diff, scale float64
	for name, x := range tb {
		y, ok := ta[name]
		if !ok {
			t.Fatalf("%s lacks %s", a, name)
		}
		xs, err1 := x.Float32s()
		ys, err2 := y.Float32s()
		if err1 != nil || err2 != nil || len(xs) != len(ys) {
			continue // the optimizer's step counter
		}
		for i := range xs {
			diff = math.Max(diff, math.Abs(float64(xs[i])-float64(ys[i])))
			scale = math.Max(scale, math.Abs(float64(xs[i])))
		}
	}
	return diff / scale
}

// N ranks, each on its slice of the global batch, train the model one
// process trains on the whole batch: weights, optimizer moments and EMA
// within 1e-6 (relative to the largest value) and the same losses, for 2
// and 3 ranks, with dropout, gradient accumulation, an EMA and buckets
// small enough that most of the all-reduce overlaps the backward pass. A
// run stopped at a checkpoint and resumed on another number of ranks
// continues the same trajectory.
func TestDataParallelEqualsOneProcess(t *testing.T) {
	for _, streams := range []int{0, 6} {
		t.Run(fmt.Sprintf("data_streams %d", streams), func(t *testing.T) { testDataParallel(t, streams) })
	}
}

// The 1e-6 holds on these data; a trajectory can be more sensitive on its
// own: on 7 shards of 6 rows with 6 streams, one process run with 1 thread
// instead of 2 (only the float summation order changes) drifted 1e-6 in
// gradient norm by step 3 and 6e-6 by step 4 (measured 2026-12-07), as did
// 2 ranks. The bound is a check of the implementation on well-conditioned
// data, not a promise for every run.
func testDataParallel(t *testing.T, streams int) {
	data := writeTestShards(t, shardOpts{shards: 6, rows: 8, size: 8, nanRow: -1})
	cfg := tinyTrainConfig()
	cfg.DataStreams = streams
	mc := unet.TinyConfig()
	mc.Dropout = 0.1
	cfg.ModelConfig = &mc
	cfg.Batch, cfg.GradAccum, cfg.EMA, cfg.Steps, cfg.CheckpointEvery = 6, 2, 0.9, 4, 2
	cfg.BucketMB = 0.01 // ~2,600 values: about 15 buckets in the tiny model
	ctx := context.Background()
	one := t.TempDir()
	if errs := trainRanks(ctx, cfg, []dist.Comm{dist.Single()}, data, one, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	want := readLosses(t, one)
	check := func(name, dir string) {
		t.Helper()
		for _, f := range []string{unet.WeightsFile, OptimizerFile, EMAFile} {
			if d := relDiff(t, filepath.Join(dir, f), filepath.Join(one, f)); d > 1e-6 {
				t.Errorf("%s: %s differs from one process's by %.2g relative", name, f, d)
			} else {
				t.Logf("%s: %s within %.2g of one process's", name, f, d)
			}
		}
		got := readLosses(t, dir)
		if len(got) != len(want) {
			t.Fatalf("%s: %d metrics lines, one process %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i].TMin != want[i].TMin || got[i].TMax != want[i].TMax {
				t.Errorf("%s: step %d draws t in [%d, %d], one process [%d, %d]", name, want[i].Step, got[i].TMin, got[i].TMax, want[i].TMin, want[i].TMax)
			}
			if d := math.Abs(got[i].Loss-want[i].Loss) / want[i].Loss; d > 1e-6 || got[i].Step != want[i].Step {
				t.Errorf("%s: step %d loss %v, one process %v", name, want[i].Step, got[i].Loss, want[i].Loss)
			}
		}
	}
	for _, world := range []int{2, 3} {
		dir := t.TempDir()
		for r, err := range trainRanks(ctx, cfg, tcpWorld(t, world), data, dir, false) {
			if err != nil {
				t.Fatalf("%d ranks: rank %d: %v", world, r, err)
			}
		}
		check(fmt.Sprintf("%d ranks", world), dir)
	}

	// 3 ranks to the checkpoint at step 2, then 2 ranks to the end.
	dir := t.TempDir()
	half := cfg
	half.Steps = 2
	for r, err := range trainRanks(ctx, half, tcpWorld(t, 3), data, dir, false) {
		if err != nil {
			t.Fatalf("3 ranks, first half: rank %d: %v", r, err)
		}
	}
	for r, err := range trainRanks(ctx, cfg, tcpWorld(t, 2), data, dir, true) {
		if err != nil {
			t.Fatalf("2 ranks, resumed: rank %d: %v", r, err)
		}
	}
	check("3 ranks then 2 resumed", dir)

	// A global batch that does not split evenly is refused, saying why.
	odd := cfg
	odd.Batch = 5
	odd.Comm = tcpWorld(t, 2)[0]
	if _, err := NewTrainer(ctx, odd, data, t.TempDir(), "", false); err == nil {
		t.Error("a batch of 5 over 2 ranks was accepted")
	}
}

// recordComm is a Comm of two ranks whose all-reduce only records the
// ranges it was given, in the order given.
type recordComm struct {
	dist.Comm
	base   []float32
	ranges [][2]int
}

func (c *recordComm) Size() int { return 2 }
func (c *recordComm) AllReduceMean(buf []float32) error {
	lo := int(uintptr(unsafe.Pointer(&buf[0]))-uintptr(unsafe.Pointer(&c.base[0]))) / 4
	c.ranges = append(c.ranges, [2]int{lo, lo + len(buf)})
	return nil
}

// The buckets tile the gradient buffer from its end to its start, each
// about bucket_mb large, and most go out before the backward pass ends.
func TestGradReducerBuckets(t *testing.T) {
	m, err := unet.NewModel(unet.TinyConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	tb := collectOne(t)
	rec := &recordComm{base: m.Params.Grad}
	r := newGradReducer(rec, m.Params.Grad, 0.01)
	r.start()
	early := 0
	m.GradsReady = func(from int) {
		r.ready(from)
		if from > 0 {
			early = r.next
		}
	}
	noise := make([]float32, len(tb.Latents))
	ts := make([]float32, len(tb.Keys))
	if _, err := m.Loss(&unet.Batch{X: tb.Latents, Timesteps: ts, Tokens: tb.Tokens, Mask: tb.Mask, WA: tb.WA, Keyword: tb.Keyword}, noise, tb.Weight, true); err != nil {
		t.Fatal(err)
	}
	if err := r.finish(); err != nil {
		t.Fatal(err)
	}
	n := len(m.Params.Grad)
	want := n
	for i, rg := range rec.ranges {
		if rg[1] != want || rg[0] >= rg[1] {
			t.Fatalf("bucket %d is %v; want one ending at %d", i, rg, want)
		}
		if rg[0] > 0 && rg[1]-rg[0] < r.bucket {
			t.Errorf("bucket %d holds %d values, under the bucket size %d", i, rg[1]-rg[0], r.bucket)
		}
		want = rg[0]
	}
	if want != 0 {
		t.Fatalf("the buckets stop at %d, not at the buffer's start", want)
	}
	// A bucket closes at a layer's end: the tiny model's 248k values in
	// buckets of 2.6k make one bucket per ResBlock or so.
	if len(rec.ranges) < 10 {
		t.Errorf("%d buckets for %d values of bucket size %d", len(rec.ranges), n, r.bucket)
	}
	if float64(early) > 0.5*float64(n) {
		t.Errorf("only %d of %d values were handed out before the backward pass reached the first layer", n-early, n)
	}
}

// On a device backend whose buffers a host Comm cannot read (the host
// emulation of the GPU library), gradients and start weights go through
// host copies and the job still trains one process's model.
func TestDataParallelStagesDeviceBuffers(t *testing.T) {
	cudaemu.Lib(t)
	data := writeTestShards(t, shardOpts{shards: 2, rows: 6, size: 8, nanRow: -1})
	cfg := tinyTrainConfig()
	cfg.Batch, cfg.Steps, cfg.CheckpointEvery = 4, 2, 2
	device := func() kernels.Backend {
		d, err := cuda.Open(cuda.Options{Emulate: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ctx := context.Background()
	one := t.TempDir()
	c1 := cfg
	c1.Backend = device()
	if errs := trainRanks(ctx, c1, []dist.Comm{dist.Single()}, data, one, false); errs[0] != nil {
		t.Fatal(errs[0])
	}
	two := t.TempDir()
	comms := tcpWorld(t, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		// Rank 0 on the emulated device, rank 1 on the CPU kernels: the
		// GPU library holds one device per process (real ranks are
		// processes), so two ranks cannot share it as goroutines here.
		rc := cfg
		if r == 0 {
			rc.Backend = device()
		}
		wg.Go(func() { errs[r] = trainRanks(ctx, rc, comms[r:r+1], data, two, false)[0] })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	if d := relDiff(t, filepath.Join(two, unet.WeightsFile), filepath.Join(one, unet.WeightsFile)); d > 1e-6 {
		t.Errorf("2 ranks on the emulated device: weights differ from one process's by %.2g", d)
	}
}
