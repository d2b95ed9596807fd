// Command dist is the data-parallel benchmark (task bench-dist, issue 16).
// In one run it prints three markdown tables, each with its anchor:
//
//  1. All-reduce time against message size for dist.DialTCP (two OS
//     processes with torchrun's variables) and dist.DialMPI (mpirun -np 2),
//     both of them this binary re-executed as a rank: float32 sums from 4 KiB
//     to 128 MiB in x4 steps plus exactly the bench model's gradients
//     (train/configs/bench.json, 28.87M parameters), and the same gradients as
//     bf16 (AllReduceSumBF16). Each size: warm-up calls, then timed calls, each
//     after a Barrier; a call's time is the slower rank's, and the table has
//     the median, the algorithm bandwidth (bytes / time) and the bus bandwidth
//     (algbw x 2(n-1)/n, as nccl-tests defines it). The anchor is one
//     process copying the gradients once in memory (copy GB/s).
//  2. Scaling of `kediff train base` on bench.json at its global batch 8 on
//     this machine's cores: (a) one process with GOMAXPROCS=2 (the anchor),
//     (b) two processes with torchrun's variables and one thread each
//     (--dist tcp), (c) the same under mpirun -np 2 (--dist mpi). Per-step
//     times come from rank 0's metrics.jsonl (batch / samples_per_s), the
//     first steps dropped as warm-up; efficiency = t(a) / t(b).
//  3. A cost model, not a measurement, for 8 and 64 GPUs: a ring all-reduce of
//     the bench model's gradients, t = 2(N-1)/N bytes/busBW + 2(N-1) latency,
//     against a per-GPU compute step, with no overlap and with DDP's overlap
//     of the all-reduce and the backward pass.
//
// The ranks of part 1 are this program with -rank-of tcp|mpi: they read
// their place from the launcher's environment (dist.Discover), as kediff
// train does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

type options struct {
	kediff, config, parts, comms, dir string
	keep                              bool

	// part 1
	minKiB, maxMiB float64
	reps, warmup   int

	// part 2
	steps, skip, rounds int
	timeout             time.Duration

	// part 3
	gpus                    string
	gpuBatch                int
	gpuTFLOPS, gpuStepMs    float64
	nvlinkGBps, nvlinkLatUs float64
	ibGBps, ibLatUs         float64
}

func main() {
	var o options
	flag.StringVar(&o.kediff, "kediff", "bin/kediff", "the kediff binary (go build -o bin/kediff ./cmd/kediff) for part 2")
	flag.StringVar(&o.config, "config", "train/configs/bench.json", "the train config whose model and global batch are benchmarked")
	flag.StringVar(&o.parts, "parts", "allreduce,scaling,model", "which parts to run: allreduce, scaling, model")
	flag.StringVar(&o.comms, "comms", "tcp,mpi", "communicators for parts 1 and 2: tcp, mpi")
	flag.StringVar(&o.dir, "dir", "", "working folder for shards, configs and checkpoints (default: a temporary one, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the working folder")
	flag.Float64Var(&o.minKiB, "min-kib", 4, "part 1: smallest all-reduce, KiB")
	flag.Float64Var(&o.maxMiB, "max-mib", 128, "part 1: largest all-reduce of the x4 ladder, MiB (the gradient size is timed as well)")
	flag.IntVar(&o.reps, "reps", 20, "part 1: timed all-reduces per size (5x as many below 1 MiB)")
	flag.IntVar(&o.warmup, "warmup", 3, "part 1: untimed all-reduces per size first")
	flag.IntVar(&o.steps, "steps", 8, "part 2: training steps per run")
	flag.IntVar(&o.skip, "skip", 2, "part 2: first steps of each run dropped as warm-up")
	flag.IntVar(&o.rounds, "rounds", 2, "part 2: rounds of (a), (b), (c), alternating; medians pool the rounds")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "limit for each launched job")
	flag.StringVar(&o.gpus, "gpus", "8,64", "part 3: GPU counts to model")
	flag.IntVar(&o.gpuBatch, "gpu-batch", 64, "part 3: samples per GPU per step (bench-gpu's batch for bench.json)")
	flag.Float64Var(&o.gpuStepMs, "gpu-step-ms", 0, "part 3: one GPU's compute time for a training step of bench.json at -gpu-batch, ms. "+
		"BENCHMARKS.md's GPU section (task bench-gpu, issue 14) has no H100 number yet (\"Not yet measured: this task was not lent a GPU\"); "+
		"0 estimates it from the analytic count (3 x benchrun.ForwardFLOPs, 1.01 TFLOP at batch 64 per BENCHMARKS.md) at -gpu-tflops. Put bench-gpu's measured kediff ms/step here once it exists")
	flag.Float64Var(&o.gpuTFLOPS, "gpu-tflops", 200, "part 3: the rate assumed for -gpu-step-ms 0, TFLOP/s (an assumption: about 20% of an H100 SXM's 989 dense bf16 TFLOP/s, a guess for a 29M-parameter U-Net at 32x32, not a measurement)")
	// Vendor nominal numbers, not measurements: replace them with an NCCL
	// all_reduce_perf (nccl-tests) bus bandwidth on a lent multi-GPU machine.
	flag.Float64Var(&o.nvlinkGBps, "nvlink-gbps", 450, "part 3: NVLink-class bus bandwidth, GB/s (vendor nominal: NVLink 4 on H100 SXM, 900 GB/s both directions = 450 per direction; not a measurement)")
	flag.Float64Var(&o.nvlinkLatUs, "nvlink-lat-us", 3.4, "part 3: NVLink-class latency per ring step, µs (NCCL's own tuning model, src/graph/tuning.cc hwLat NVLink Ring/Simple; not a measurement)")
	flag.Float64Var(&o.ibGBps, "ib-gbps", 50, "part 3: InfiniBand-class bus bandwidth, GB/s (vendor nominal: one NDR 400 Gb/s port per direction; not a measurement; nodes with one NIC per GPU spread NCCL's rings over them and can reach several times this)")
	flag.Float64Var(&o.ibLatUs, "ib-lat-us", 14, "part 3: InfiniBand-class latency per ring step, µs (NCCL's tuning model, hwLat Net Ring/Simple; not a measurement)")
	rankOf := flag.String("rank-of", "", "internal: run as one rank of part 1's job over this communicator (tcp or mpi)")
	var ro rankOptions
	flag.StringVar(&ro.sizes, "rank-sizes", "", "internal: the cases, comma-separated (BYTES or bf16:ELEMENTS)")
	flag.StringVar(&ro.result, "rank-result", "", "internal: where each rank writes its times (+ .RANK)")
	flag.Parse()
	if *rankOf != "" {
		ro.kind, ro.reps, ro.warmup = *rankOf, o.reps, o.warmup
		if err := runRank(ro); err != nil {
			log.Fatalf("bench/dist rank: %v", err)
		}
		return
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	parts := map[string]bool{}
	for _, p := range strings.Split(o.parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "allreduce", "scaling", "model":
			parts[p] = true
		default:
			return fmt.Errorf("-parts: unknown part %q (want allreduce, scaling, model)", p)
		}
	}
	var comms []string
	for _, c := range strings.Split(o.comms, ",") {
		switch c = strings.TrimSpace(c); c {
		case "tcp", "mpi":
			comms = append(comms, c)
		default:
			return fmt.Errorf("-comms: unknown communicator %q (want tcp, mpi)", c)
		}
	}
	cfg, err := train.ReadTrainConfig(o.config)
	if err != nil {
		return err
	}
	benchrun.Machine()
	// The parameter count through the model itself (values only: no
	// gradients or moments).
	m, err := unet.NewInferenceModel(*cfg.ModelConfig, nil)
	if err != nil {
		return err
	}
	params := m.NumParams()
	m = nil
	fmt.Printf("model: %s, %.2fM parameters: gradients %.1f MB float32, %.1f MB bf16; global batch %d\n\n",
		o.config, float64(params)/1e6, 4*float64(params)/1e6, 2*float64(params)/1e6, cfg.Batch)

	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-dist-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx := context.Background()

	var measured []allReduceResult
	if parts["allreduce"] {
		if measured, err = partAllReduce(ctx, o, comms, params, dir); err != nil {
			return err
		}
	}
	if parts["scaling"] {
		if err := partScaling(ctx, o, comms, cfg, dir); err != nil {
			return err
		}
	}
	if parts["model"] {
		if err := partModel(o, cfg, params, measured); err != nil {
			return err
		}
	}
	return nil
}
