package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kediff/kediff/internal/trainshards"
	"github.com/kediff/kediff/train"
)

// scalingRun is one way of running part 2's training.
type scalingRun struct {
	name, what string
	procs      int
	comm       string // "", "tcp" or "mpi"
	skip       string // why it cannot run here
	steps      []float64
	comms      []float64
	walls      []float64 // whole job, seconds (start-up and the final checkpoint included)
	launch     string    // rank 0's line naming the communicator
}

// partScaling runs part 2 and prints its table.
func partScaling(ctx context.Context, o options, comms []string, cfg train.TrainConfig, dir string) error {
	if _, err := os.Stat(o.kediff); err != nil {
		return fmt.Errorf("-kediff %s: %w (build it: go build -o bin/kediff ./cmd/kediff)", o.kediff, err)
	}
	if o.steps <= o.skip {
		return fmt.Errorf("-steps %d leaves no step after dropping -skip %d", o.steps, o.skip)
	}
	if cfg.Batch%2 != 0 {
		return fmt.Errorf("%s: batch %d does not split over 2 processes", o.config, cfg.Batch)
	}
	mc := cfg.ModelConfig
	rows := cfg.Batch * cfg.GradAccum * o.steps
	t0 := time.Now()
	data, err := writeShards(ctx, filepath.Join(dir, "shards"), 2, (rows+1)/2, mc.InChannels, mc.ImageSize)
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "train.json")
	if err := writeTrainConfig(conf, cfg, o.steps); err != nil {
		return err
	}
	fmt.Printf("## Part 2: scaling of kediff train base on %s (global batch %d, %d steps a run, the first %d dropped)\n\n", o.config, cfg.Batch, o.steps, o.skip)
	fmt.Printf("data: %d random-latent rows (%dx%dx%d) in 2 shards, written in %.1f s\n", 2*((rows+1)/2), mc.InChannels, mc.ImageSize, mc.ImageSize, time.Since(t0).Seconds())

	runs := []*scalingRun{{name: "a", what: "1 process x 2 threads (anchor)", procs: 1}}
	for _, c := range comms {
		r := &scalingRun{name: "b", what: "2 processes x 1 thread, torchrun variables, --dist tcp", procs: 2, comm: c}
		if c == "mpi" {
			r.name, r.what = "c", "2 processes x 1 thread, mpirun -np 2, --dist mpi"
			r.skip = mpiMissing()
		}
		runs = append(runs, r)
	}
	kediff, err := filepath.Abs(o.kediff)
	if err != nil {
		return err
	}
	for round := range o.rounds {
		var line []string
		for _, r := range runs {
			if r.skip != "" {
				continue
			}
			out := filepath.Join(dir, fmt.Sprintf("run-%s-%d", r.name, round+1))
			if err := r.run(ctx, o, kediff, data, conf, out, float64(cfg.Batch*cfg.GradAccum)); err != nil {
				return err
			}
			n := len(r.steps)
			line = append(line, fmt.Sprintf("(%s) %s s/step", r.name, secs(r.steps[n-(o.steps-o.skip):])))
		}
		fmt.Printf("round %d: %s\n", round+1, strings.Join(line, " | "))
	}
	for _, r := range runs {
		if r.launch != "" {
			fmt.Printf("(%s) %s\n", r.name, r.launch)
		}
	}

	anchor := median(runs[0].steps)
	fmt.Printf("\n| run | s/step median [best] | samples/s | comm_s median | share of the step waiting on communication | efficiency t(a)/t(run) | job wall s (start-up, final checkpoint) |\n")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range runs {
		if r.skip != "" {
			fmt.Printf("| (%s) %s | skipped: %s | | | | | |\n", r.name, r.what, r.skip)
			continue
		}
		t := median(r.steps)
		best := r.steps[0]
		for _, s := range r.steps {
			best = min(best, s)
		}
		comm, share, eff := "—", "—", "1.00 (anchor)"
		if r.procs > 1 {
			c := median(r.comms)
			comm = fmt.Sprintf("%.3f", c)
			share = fmt.Sprintf("%.0f%%", 100*c/t)
			eff = fmt.Sprintf("**%.2f**", anchor/t)
		}
		fmt.Printf("| (%s) %s | %.3f [%.3f] | %.2f | %s | %s | %s | %.1f |\n", r.name, r.what, t, best, float64(cfg.Batch*cfg.GradAccum)/t, comm, share, eff, median(r.walls))
	}
	fmt.Printf("\nPer-step time = global batch / samples_per_s of rank 0's metrics.jsonl; comm_s = the time the step waited on the other rank " +
		"(the gradient all-reduce not hidden behind the backward pass, and the loss's). Medians over every kept step of every round; the rounds run (a), (b), (c) in turn, each job started afresh. " +
		"Threads: GOMAXPROCS, OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (oneDNN) all set to the process's thread count. " +
		"Efficiency 1.0 = two one-thread processes are as fast as one two-thread process on the same cores.\n\n")
	return nil
}

// run starts one job of r, reads rank 0's metrics and removes the
// checkpoint.
func (r *scalingRun) run(ctx context.Context, o options, kediff, data, conf, out string, batch float64) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	args := []string{"train", "base", "--data", data, "--config", conf, "--out", out, "--quiet"}
	threads := fmt.Sprint(2 / r.procs)
	env := []string{"GOMAXPROCS=" + threads, "OPENBLAS_NUM_THREADS=" + threads, "OMP_NUM_THREADS=" + threads}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()
	var log string
	var err error
	switch {
	case r.procs == 1:
		log, err = runTorchrun(ctx, kediff, args, env, 1) // world 1: no launcher variables
	case r.comm == "tcp":
		log, err = runTorchrun(ctx, kediff, append(args, "--dist", "tcp"), env, r.procs)
	default:
		log, err = runMPI(ctx, kediff, append(args, "--dist", "mpi"), env, r.procs)
	}
	if err != nil {
		return fmt.Errorf("part 2 (%s): %w", r.name, err)
	}
	r.walls = append(r.walls, time.Since(start).Seconds())
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "ranks (") {
			r.launch = strings.TrimSpace(l)
		}
	}
	ms, err := readMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil {
		return fmt.Errorf("part 2 (%s): %w", r.name, err)
	}
	if len(ms) != o.steps {
		return fmt.Errorf("part 2 (%s): %s has %d steps, want %d", r.name, filepath.Join(out, train.MetricsFile), len(ms), o.steps)
	}
	for _, m := range ms[o.skip:] {
		r.steps = append(r.steps, batch/m.SamplesPerS)
		r.comms = append(r.comms, m.CommS)
	}
	// The checkpoint (weights and AdamW moments, ~350 MB) is not needed.
	return os.RemoveAll(out)
}

func readMetrics(path string) ([]train.Metrics, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []train.Metrics
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m train.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if !(m.SamplesPerS > 0) {
			return nil, fmt.Errorf("%s: step %d has samples_per_s %v", path, m.Step, m.SamplesPerS)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// writeTrainConfig writes cfg with steps steps, no sample grids, a
// checkpoint only at the end, and a vocabulary built from the data (as
// kediff train does without "vocab").
func writeTrainConfig(path string, cfg train.TrainConfig, steps int) error {
	cfg.Comment = "bench-dist (go run ./bench/dist): " + cfg.Comment
	cfg.Steps = steps
	cfg.CheckpointEvery = 1 << 30
	cfg.SampleEvery = 0
	cfg.SamplePrompts, cfg.SampleDecoder = "", ""
	cfg.Vocab = ""
	cfg.Model = ""
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
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

// writeShards writes n shards of rows rows with random float16 latents of
// chans x size x size (and prompts, keyword flags, loss masks as the
// preprocessing writes them) into a fresh dir, with the manifest, and
// returns its file:// URL.
func writeShards(ctx context.Context, dir string, n, rows, chans, size int) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return trainshards.Write(ctx, dir, trainshards.Options{Shards: n, Rows: rows, Chans: chans, Size: size, NaNRow: -1})
}

// secs lists step times.
func secs(v []float64) string {
	var b strings.Builder
	for i, s := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.3f", s)
	}
	return b.String()
}
