package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/safetensors"
)

// distFixture is what the multi-process training tests share: the kediff
// binary, preprocessed shards of the synthetic sample, a config, and one
// process's run of it (the reference every job must match).
type distFixture struct {
	bin, data, config, one string
}

var (
	distOnce sync.Once
	distFix  distFixture
	distErr  error
)

// TestMain removes distSetup's folder at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	if distRoot != "" {
		os.RemoveAll(distRoot)
	}
	os.Exit(code)
}

var distRoot string

// distSetup builds everything once per test binary, in a folder TestMain
// removes (t.TempDir is per test).
func distSetup(t *testing.T) distFixture {
	t.Helper()
	distOnce.Do(func() {
		root, err := os.MkdirTemp("", "kediff-dist-")
		if err != nil {
			distErr = err
			return
		}
		distRoot = root
		f := distFixture{bin: filepath.Join(root, "kediff"), data: filepath.Join(root, "shards"), config: filepath.Join(root, "train.json"), one: filepath.Join(root, "one")}
		steps := []struct {
			name string
			cmd  *exec.Cmd
		}{
			{"go build", exec.Command("go", "build", "-o", f.bin, ".")},
			{"synth", exec.Command(f.bin, "synth", "--output", filepath.Join(root, "input"), "--samples", "24", "--per-shard", "8")},
			{"preprocess", exec.Command(f.bin, "preprocess", "--input", filepath.Join(root, "input"), "--output", f.data, "--config", "../../pipelines/sample.yaml")},
		}
		for _, s := range steps {
			if out, err := s.cmd.CombinedOutput(); err != nil {
				distErr = fmt.Errorf("%s: %v\n%s", s.name, err, out)
				return
			}
		}
		// tiny.json, made quick, with dropout (its masks must follow the
		// sample across ranks) and a checkpoint every 2 steps.
		raw, err := os.ReadFile("../../train/configs/tiny.json")
		if err != nil {
			distErr = err
			return
		}
		var cfg map[string]any
		if distErr = json.Unmarshal(raw, &cfg); distErr != nil {
			return
		}
		cfg["steps"], cfg["batch"], cfg["checkpoint_every"], cfg["warmup"], cfg["ema"] = 6, 6, 2, 2, 0.9
		cfg["bucket_mb"] = 0.05
		cfg["model_config"].(map[string]any)["dropout"] = 0.1
		raw, _ = json.MarshalIndent(cfg, "", "  ")
		if distErr = os.WriteFile(f.config, raw, 0o644); distErr != nil {
			return
		}
		if out, err := exec.Command(f.bin, f.trainArgs(f.one)...).CombinedOutput(); err != nil {
			distErr = fmt.Errorf("one process: %v\n%s", err, out)
			return
		}
		distFix = f
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return distFix
}

func (f distFixture) trainArgs(out string, extra ...string) []string {
	return append([]string{"train", "base", "--data", f.data, "--config", f.config, "--out", out, "--quiet"}, extra...)
}

// sameRun fails t unless the checkpoint in dir matches one process's:
// weights, AdamW moments and EMA within 1e-6 of the largest value, and the
// losses within 1e-6 relative, step by step.
func (f distFixture) sameRun(t *testing.T, name, dir string) {
	t.Helper()
	for _, file := range []string{"model.safetensors", "optimizer.safetensors", "ema.safetensors"} {
		a, _, err := safetensors.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _, err := safetensors.ReadFile(filepath.Join(f.one, file))
		if err != nil {
			t.Fatal(err)
		}
		var diff, scale float64
		for k, tb := range b {
			xb, err := tb.Float32s()
			if err != nil {
				continue // the optimizer's step
			}
			xa, err := a[k].Float32s()
			if err != nil || len(xa) != len(xb) {
				t.Fatalf("%s: %s: %s missing or reshaped", name, file, k)
			}
			for i := range xb {
				diff = math.Max(diff, math.Abs(float64(xa[i])-float64(xb[i])))
				scale = math.Max(scale, math.Abs(float64(xb[i])))
			}
		}
		if diff/scale > 1e-6 {
			t.Errorf("%s: %s differs from one process's by %.2g relative", name, file, diff/scale)
		}
	}
	got, want := losses(t, dir), losses(t, f.one)
	if len(got) != len(want) {
		t.Fatalf("%s: %d loss lines, one process %d", name, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6*want[i] {
			t.Errorf("%s: step %d loss %v, one process %v", name, i+1, got[i], want[i])
		}
	}
}

func losses(t *testing.T, dir string) []float64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m struct{ Loss float64 }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Loss)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// torchrunEnv is what torchrun gives rank r of world on one machine.
func torchrunEnv(r, world, port int) []string {
	return []string{fmt.Sprint("RANK=", r), fmt.Sprint("WORLD_SIZE=", world), fmt.Sprint("LOCAL_RANK=", r),
		fmt.Sprint("LOCAL_WORLD_SIZE=", world), "MASTER_ADDR=127.0.0.1", fmt.Sprint("MASTER_PORT=", port)}
}

// startRanks starts world kediff processes with torchrun's variables.
func startRanks(t *testing.T, f distFixture, world int, out string, extra ...string) []*exec.Cmd {
	t.Helper()
	port := freePort(t)
	cmds := make([]*exec.Cmd, world)
	for r := range world {
		c := exec.Command(f.bin, f.trainArgs(out, extra...)...)
		c.Env = append(os.Environ(), torchrunEnv(r, world, port)...)
		c.Stdout, c.Stderr = new(bytes.Buffer), new(bytes.Buffer)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r] = c
	}
	return cmds
}

func output(c *exec.Cmd) string {
	return c.Stdout.(*bytes.Buffer).String() + c.Stderr.(*bytes.Buffer).String()
}

// Two and three kediff processes with torchrun's variables (no MPI, no
// launcher) train the model one process trains.
func TestTrainTorchrunStyleProcesses(t *testing.T) {
	f := distSetup(t)
	for _, world := range []int{2, 3} {
		out := t.TempDir()
		for r, c := range startRanks(t, f, world, out) {
			if err := c.Wait(); err != nil {
				t.Fatalf("%d ranks: rank %d: %v\n%s", world, r, err, output(c))
			}
		}
		f.sameRun(t, fmt.Sprintf("%d torchrun-style processes", world), out)
	}
}

// mpirun -np 2 and -np 3 (Open MPI, the MPI communicator) train the model
// one process trains.
func TestTrainUnderMPIRun(t *testing.T) {
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mpirun not found: go tool task setup installs Open MPI (openmpi-bin)")
		}
		t.Skip("mpirun not found (go tool task setup installs openmpi-bin)")
	}
	f := distSetup(t)
	for _, np := range []int{2, 3} {
		out := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var extra []string
		if np == 2 {
			extra = []string{"--dist", "mpi"} // -np 3 shows that auto picks MPI under mpirun
		}
		args := append([]string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(np), f.bin}, f.trainArgs(out, extra...)...)
		b, err := exec.CommandContext(ctx, mpirun, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", np, err, b)
		}
		if want := fmt.Sprintf("%d ranks (openmpi, MPI (Open MPI))", np); !strings.Contains(string(b), want) {
			t.Errorf("mpirun -np %d: the log does not say %q:\n%s", np, want, b)
		}
		f.sameRun(t, fmt.Sprintf("mpirun -np %d", np), out)
	}
}

// A rank killed mid-run takes the job down fast with an error naming it,
// and resuming the last checkpoint (on another number of ranks: one)
// finishes the uninterrupted run's trajectory.
func TestTrainKilledRankThenResume(t *testing.T) {
	f := distSetup(t)
	out := t.TempDir()
	// Many more steps than the reference, so the kill lands mid-run; the
	// resumed run then stops at the reference's last step.
	cmds := startRanks(t, f, 2, out, "--steps", "400")
	state := filepath.Join(out, "state.json")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st struct{ Step int }
		if raw, err := os.ReadFile(state); err == nil && json.Unmarshal(raw, &st) == nil && st.Step >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint after 2 minutes\n%s\n%s", output(cmds[0]), output(cmds[1]))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmds[1].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmds[0].Wait() }()
	select {
	case err := <-done:
		took := time.Since(killed)
		msg := output(cmds[0])
		if err == nil || !strings.Contains(msg, "rank 1") {
			t.Fatalf("rank 0 after rank 1 was killed: %v\n%s", err, msg)
		}
		t.Logf("rank 0 stopped %v after rank 1 was killed: %s", took.Round(time.Millisecond), strings.TrimSpace(msg))
	case <-time.After(60 * time.Second):
		cmds[0].Process.Kill()
		t.Fatal("rank 0 still running 60 s after rank 1 was killed")
	}
	cmds[1].Wait()
	var st struct{ Step int }
	raw, _ := os.ReadFile(state)
	json.Unmarshal(raw, &st)
	if st.Step > 6 {
		t.Skipf("the job reached step %d (a checkpoint past the reference's 6 steps) before the kill: the machine is too fast for this test's reference length", st.Step)
	}
	b, err := exec.Command(f.bin, f.trainArgs(out, "--resume")...).CombinedOutput()
	if err != nil {
		t.Fatalf("resume from step %d: %v\n%s", st.Step, err, b)
	}
	f.sameRun(t, fmt.Sprintf("killed at step %d or later, resumed from %d on one process", st.Step, st.Step), out)
}
