package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kediff/kediff/bench/internal/benchrun"
	"github.com/kediff/kediff/train"
)

// backwardShare is the part of a training step the backward pass takes, the
// window DDP's bucketed all-reduce can hide behind: the backward pass
// computes two products (input and weight gradients) for each forward one,
// so it is about 2/3 of the step.
const backwardShare = 2.0 / 3

// ringAllReduce is the time of a ring all-reduce of bytes over n ranks:
// 2(n-1) steps (reduce-scatter, then all-gather), each moving bytes/n over
// a link of bus bandwidth busBW (bytes/s) and paying latency (s).
func ringAllReduce(bytes float64, n int, busBW, latency float64) float64 {
	if n < 2 {
		return 0
	}
	return 2*float64(n-1)/float64(n)*bytes/busBW + 2*float64(n-1)*latency
}

// starAllReduce is the time of dist.DialTCP's all-reduce over n ranks: rank
// 0 receives n-1 buffers and sends n-1 back over its one link (full duplex,
// busBW each way), one message at a time. At n = 2 it equals ringAllReduce.
func starAllReduce(bytes float64, n int, busBW, latency float64) float64 {
	if n < 2 {
		return 0
	}
	return float64(n-1)*bytes/busBW + 2*float64(n-1)*latency
}

// stepCost is one row of the model: a step of compute seconds with comm
// seconds of all-reduce, without and with DDP's overlap.
type stepCost struct {
	noOverlap float64 // share of the step that is all-reduce, run after the backward pass
	exposed   float64 // seconds of all-reduce left after hiding it behind the backward pass
	overlap   float64 // share of the step that exposed time is
	eff       float64 // compute / (compute + exposed): the scaling efficiency with overlap
}

func costOf(compute, comm float64) stepCost {
	exposed := max(0, comm-backwardShare*compute)
	return stepCost{noOverlap: comm / (compute + comm), exposed: exposed,
		overlap: exposed / (compute + exposed), eff: compute / (compute + exposed)}
}

// link is a row's interconnect.
type link struct {
	name      string
	busBW     float64 // bytes/s
	latency   float64 // s per ring step
	star      bool    // DialTCP's star, not a ring
	bf16Moves bool    // carries bf16 as 2 bytes (NCCL); DialTCP and DialMPI widen to float32
}

func (l link) allReduce(bytes float64, n int) float64 {
	if l.star {
		return starAllReduce(bytes, n, l.busBW, l.latency)
	}
	return ringAllReduce(bytes, n, l.busBW, l.latency)
}

// partModel prints part 3.
func partModel(o options, cfg train.TrainConfig, params int, measured []allReduceResult) error {
	var gpus []int
	for _, f := range strings.Split(o.gpus, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return fmt.Errorf("-gpus: %q is not a GPU count of 2 or more", f)
		}
		gpus = append(gpus, n)
	}
	flops := 3 * benchrun.ForwardFLOPs(*cfg.ModelConfig, o.gpuBatch, true)
	compute := o.gpuStepMs / 1e3
	source := fmt.Sprintf("-gpu-step-ms %g (given)", o.gpuStepMs)
	if compute <= 0 {
		compute = flops / (o.gpuTFLOPS * 1e12)
		source = fmt.Sprintf("estimated: %.2f TFLOP a step (analytic) at an assumed %g TFLOP/s; BENCHMARKS.md has no H100 measurement of bench.json yet (bench-gpu), pass -gpu-step-ms when it does", flops/1e12, o.gpuTFLOPS)
	}

	var links []link
	for _, comm := range []string{"mpi", "tcp"} {
		var grad, small *allReduceResult
		for i := range measured {
			r := &measured[i]
			if r.comm != comm || r.c.bf16 {
				continue
			}
			if r.c.elems == params {
				grad = r
			}
			if small == nil || r.c.elems < small.c.elems {
				small = r
			}
		}
		if grad == nil || small == nil {
			continue
		}
		// The 2-rank job's smallest message is latency-bound: 2(n-1) = 2 steps.
		lat := small.median / 2
		name := fmt.Sprintf("%s, this machine's loopback, ring", strings.ToUpper(comm))
		links = append(links, link{name: name, busBW: grad.busbw, latency: lat})
		if comm == "tcp" {
			links = append(links, link{name: "TCP loopback, star (dist.DialTCP as it is)", busBW: grad.busbw, latency: lat, star: true})
		}
	}
	links = append(links,
		link{name: "NVLink-class (nominal)", busBW: o.nvlinkGBps * 1e9, latency: o.nvlinkLatUs * 1e-6, bf16Moves: true},
		link{name: "InfiniBand-class (nominal)", busBW: o.ibGBps * 1e9, latency: o.ibLatUs * 1e-6, bf16Moves: true})

	fmt.Printf("## Part 3: a cost model for 8 and 64 GPUs (a model, not a measurement: no cluster here)\n\n")
	fmt.Printf("Gradients: %.2fM parameters = %.1f MB fp32, %.1f MB bf16, all-reduced once a step. Compute: %d samples per GPU (bench-gpu's batch for bench.json; "+
		"the global batch grows with the GPUs, as bench.json's 8 cannot be split over 64), %.2f ms a step (%s). "+
		"All-reduce: ring, t = 2(N-1)/N x bytes / busBW + 2(N-1) x latency; the star row is (N-1) x bytes / busBW + 2(N-1) x latency. "+
		"No overlap: the all-reduce runs after the backward pass, share = t / (compute + t). DDP overlap: buckets are all-reduced while the "+
		"backward pass runs, which is taken as 2/3 of the compute (two gradient products per forward one), so exposed = max(0, t - 2/3 compute) "+
		"and efficiency = compute / (compute + exposed). The loopback rows use part 1's 2-rank busbw at the gradient size and half its smallest "+
		"message's time as the latency; the NVLink and InfiniBand rows use the flags' nominal numbers (vendor link rates, NCCL's tuning-model "+
		"latencies), to be replaced by an NCCL all_reduce_perf measurement on a lent multi-GPU machine. bf16 rows only for NCCL-class links: "+
		"DialTCP and DialMPI move bf16 as float32.\n\n", float64(params)/1e6, 4*float64(params)/1e6, 2*float64(params)/1e6, o.gpuBatch, compute*1e3, source)
	fmt.Println("| GPUs | link | busBW GB/s | latency µs | gradients | all-reduce ms | compute ms | no overlap: share of step | DDP overlap: exposed ms | share of step | efficiency |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, n := range gpus {
		for _, l := range links {
			for _, bf16 := range []bool{false, true} {
				if bf16 && !l.bf16Moves {
					continue
				}
				bytes, dt := 4*float64(params), "fp32"
				if bf16 {
					bytes, dt = 2*float64(params), "bf16"
				}
				t := l.allReduce(bytes, n)
				c := costOf(compute, t)
				fmt.Printf("| %d | %s | %.3g | %.3g | %s | %.2f | %.2f | %.0f%% | %.2f | %.0f%% | %.2f |\n",
					n, l.name, l.busBW/1e9, l.latency*1e6, dt, t*1e3, compute*1e3, 100*c.noOverlap, c.exposed*1e3, 100*c.overlap, c.eff)
			}
		}
	}
	fmt.Println()
	return nil
}
