package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/metrics/metricstest"
)

// scrapedRun is a kediff process whose /metrics was scraped while it ran.
type scrapedRun struct {
	scrapes []metricstest.Families // every successful scrape, in order
	stderr  string
}

var metricsURL = regexp.MustCompile(`url=(http://\S+/metrics)`)

// runScraped runs cmd, finds the metrics URL it logs on stderr and scrapes
// it every 20ms until the process ends; it fails t if the process fails.
func runScraped(t *testing.T, cmd *exec.Cmd) scrapedRun {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	found := make(chan string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := metricsURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-read // Wait closes the pipe: read it to the end first
		exited <- cmd.Wait()
	}()
	var run scrapedRun
	var url string
	select {
	case url = <-found:
	case err := <-exited:
		t.Fatalf("%v ended before serving metrics (%v):\n%s", cmd.Args, err, logs.String())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%v logged no metrics URL in 2 minutes:\n%s", cmd.Args, logs.String())
	}
	for {
		if f, err := metricstest.Scrape(url); err == nil {
			run.scrapes = append(run.scrapes, f)
		}
		select {
		case err := <-exited:
			mu.Lock()
			run.stderr = logs.String()
			mu.Unlock()
			if err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, run.stderr)
			}
			if len(run.scrapes) == 0 {
				t.Fatalf("%v: no scrape of %s succeeded while it ran", cmd.Args, url)
			}
			for i := 1; i < len(run.scrapes); i++ {
				metricstest.CheckGrowth(t, run.scrapes[i-1], run.scrapes[i])
			}
			return run
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// during counts the scrapes in which metric name (summed) was strictly
// between 0 and final: the run seen in progress.
func (r scrapedRun) during(name string, final float64) int {
	n := 0
	for _, f := range r.scrapes {
		if v, ok := f.Value(name); ok && v > 0 && v < final {
			n++
		}
	}
	return n
}

// TestMetricsOfRealRuns runs kediff preprocess on the synthetic sample
// with every model stage, then kediff train on its shards, each with
// --metrics-addr and --metrics-push, as a user does: /metrics scraped while
// they run, and the pushed final values against the stats files and
// metrics.jsonl. Then two torchrun-style ranks: only rank 0 reports.
func TestMetricsOfRealRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildKediff(t)
	gateway, real := metricstest.Pushgateway(t)
	t.Logf("Pushgateway at %s (real: %v)", gateway, real)
	host, _ := os.Hostname()
	root := t.TempDir()
	input, data := filepath.Join(root, "input"), filepath.Join(root, "shards")
	if out, err := exec.Command(bin, "synth", "--output", input, "--samples", "48", "--per-shard", "16").CombinedOutput(); err != nil {
		t.Fatalf("synth: %v\n%s", err, out)
	}

	t.Run("preprocess", func(t *testing.T) {
		start := time.Now()
		run := runScraped(t, exec.Command(bin, "preprocess", "--input", input, "--output", data,
			"--config", "../../pipelines/sample.yaml", "--quiet", "--metrics-addr", "127.0.0.1:0", "--metrics-push", gateway))
		pushed, err := metricstest.Scrape(gateway + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		group := []string{"job", "kediff_preprocess", "instance", host}
		metricstest.CheckPreprocess(t, pushed, data, filepath.Join(input, "*.tar"), group...)
		// The pipeline runs for a second or so after seconds of loading
		// models; the in-process test in package metrics stops it halfway.
		running := 0
		for _, f := range run.scrapes {
			if done, ok := f.Value("kediff_preprocess_shards_total", "result", "written"); ok && done < 3 && len(f.Series("kediff_preprocess_samples_total")) > 0 {
				running++
			}
		}
		rows := pushed.Must(t, "kediff_preprocess_rows_written_total", group...)
		t.Logf("%.1fs, %d scrapes, %d of them while the pipeline ran, %d with the rows half written",
			time.Since(start).Seconds(), len(run.scrapes), running, run.during("kediff_preprocess_rows_written_total", rows))
		if running == 0 {
			t.Error("no scrape saw the pipeline running")
		}
		for _, stage := range []string{"read", "text", "image", "captioner", "detect", "pos", "vae", "write"} {
			pushed.Must(t, "kediff_preprocess_stage_busy_seconds_total", append(group, "stage", stage)...)
		}
		metricstest.CheckGrowth(t, run.scrapes[len(run.scrapes)-1], pushed)
		if !strings.Contains(run.stderr, "metrics: pushed") {
			t.Errorf("no push logged:\n%s", run.stderr)
		}
	})

	config := filepath.Join(root, "train.json")
	raw, err := os.ReadFile("../../train/configs/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	const steps = 30
	cfg["steps"], cfg["batch"], cfg["checkpoint_every"], cfg["warmup"] = steps, 4, steps, 2
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(config, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	trainArgs := func(out string) []string {
		return []string{"train", "base", "--data", data, "--config", config, "--out", out, "--quiet",
			"--metrics-addr", "127.0.0.1:0", "--metrics-push", gateway}
	}
	checkTrain := func(t *testing.T, f metricstest.Families, out string, labels ...string) {
		t.Helper()
		last := lastLine(t, out)
		for name, want := range map[string]float64{
			"kediff_train_steps_total":   steps,
			"kediff_train_step":          steps,
			"kediff_train_samples_total": 4 * steps,
			"kediff_train_loss":          last.Loss,
			"kediff_train_grad_norm":     last.GradNorm,
			"kediff_train_learning_rate": last.LR,
		} {
			if got := f.Must(t, name, labels...); got != want {
				t.Errorf("%s%v = %v, want %v (metrics.jsonl's last line, step %d)", name, labels, got, want, last.Step)
			}
		}
	}

	t.Run("train", func(t *testing.T) {
		out := filepath.Join(root, "tiny-run")
		run := runScraped(t, exec.Command(bin, trainArgs(out)...))
		pushed, err := metricstest.Scrape(gateway + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		checkTrain(t, pushed, out, "job", "kediff_train", "instance", host, "run", "tiny-run", "expert", "base")
		mid := run.during("kediff_train_steps_total", steps)
		t.Logf("%d scrapes, %d of them during the steps", len(run.scrapes), mid)
		if mid == 0 {
			t.Errorf("no scrape saw the training in progress (0 < steps < %d)", steps)
		}
		metricstest.CheckGrowth(t, run.scrapes[len(run.scrapes)-1], pushed)
	})

	t.Run("two_ranks", func(t *testing.T) {
		out := filepath.Join(root, "two-ranks")
		port := freePort(t)
		var rank1Err strings.Builder
		rank1 := exec.Command(bin, trainArgs(out)...)
		rank1.Env = append(os.Environ(), torchrunEnv(1, 2, port)...)
		rank1.Stderr = &rank1Err
		if err := rank1.Start(); err != nil {
			t.Fatal(err)
		}
		rank0 := exec.Command(bin, trainArgs(out)...)
		rank0.Env = append(os.Environ(), torchrunEnv(0, 2, port)...)
		run := runScraped(t, rank0)
		if err := rank1.Wait(); err != nil {
			t.Fatalf("rank 1: %v\n%s", err, rank1Err.String())
		}
		if !strings.Contains(rank1Err.String(), "rank 1: metrics come from rank 0 only") {
			t.Errorf("rank 1 did not say that it leaves the metrics to rank 0:\n%s", rank1Err.String())
		}
		if metricsURL.MatchString(rank1Err.String()) {
			t.Errorf("rank 1 served metrics:\n%s", rank1Err.String())
		}
		pushed, err := metricstest.Scrape(gateway + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		checkTrain(t, pushed, out, "job", "kediff_train", "run", "two-ranks")
		if n := len(pushed.Series("kediff_train_steps_total", "run", "two-ranks")); n != 1 {
			t.Errorf("%d groups pushed for the two-rank run, want rank 0's only", n)
		}
		if w := pushed.Must(t, "kediff_train_comm_wait_seconds", "run", "two-ranks"); w <= 0 {
			t.Errorf("comm wait %v s on two ranks", w)
		}
		t.Logf("%d scrapes of rank 0", len(run.scrapes))
	})
}

// lastLine is the last line of OUT/metrics.jsonl.
func lastLine(t *testing.T, out string) (m struct {
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	GradNorm float64 `json:"grad_norm"`
	LR       float64 `json:"lr"`
}) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("%s: %v", filepath.Join(out, "metrics.jsonl"), err)
	}
	return m
}
