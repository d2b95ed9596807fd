package metrics_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/internal/trainshards"
	"github.com/kediff/kediff/metrics"
	"github.com/kediff/kediff/metrics/metricstest"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

// A tiny training run serves /metrics: a scrape from inside step 3 shows
// three steps, the scrape at the end and the Pushgateway show the last line
// of metrics.jsonl.
func TestTrainMetrics(t *testing.T) {
	ctx := context.Background()
	data, err := trainshards.Write(ctx, t.TempDir(), trainshards.Options{Shards: 2, Rows: 5, Size: 8, NaNRow: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.DefaultTrainConfig()
	mc := unet.TinyConfig()
	cfg.ModelConfig, cfg.Model = &mc, ""
	cfg.Steps, cfg.Batch, cfg.GradAccum, cfg.Warmup, cfg.LR = 6, 2, 2, 2, 1e-3
	cfg.CheckpointEvery, cfg.ShuffleBuffer = 3, 4
	out := filepath.Join(t.TempDir(), "tiny-run")
	tr, err := train.NewTrainer(ctx, cfg, data, out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	gateway, real := metricstest.Pushgateway(t)
	t.Logf("Pushgateway at %s (real: %v)", gateway, real)
	flags := metrics.Flags{Addr: "127.0.0.1:0", Push: gateway}
	labels := map[string]string{"run": filepath.Base(out), "expert": "base"}
	job, err := flags.Start("kediff_train", labels, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer job.End(nil)
	m := metrics.NewTrain(job.Registerer, cfg.Batch*cfg.GradAccum)
	var mid metricstest.Families
	tr.OnStep = func(s train.Metrics) {
		m.Observe(s)
		if s.Step == 3 {
			mid = scrape(t, job.Server.URL)
		}
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	end := scrape(t, job.Server.URL)
	last := lastMetrics(t, out)
	if last.Step != cfg.Steps {
		t.Fatalf("metrics.jsonl ends at step %d, want %d", last.Step, cfg.Steps)
	}

	if mid == nil {
		t.Fatal("no scrape during the run")
	}
	for name, want := range map[string]float64{"kediff_train_steps_total": 3, "kediff_train_step": 3, "kediff_train_samples_total": 12} {
		if got := value(t, mid, name, "run", "tiny-run", "expert", "base"); got != want {
			t.Errorf("during step 3: %s = %v, want %v", name, got, want)
		}
	}
	check := func(t *testing.T, f metricstest.Families, labels ...string) {
		t.Helper()
		for name, want := range map[string]float64{
			"kediff_train_steps_total":        6,
			"kediff_train_step":               6,
			"kediff_train_samples_total":      24, // batch 2 x grad_accum 2 x 6 steps
			"kediff_train_loss":               last.Loss,
			"kediff_train_grad_norm":          last.GradNorm,
			"kediff_train_learning_rate":      last.LR,
			"kediff_train_samples_per_second": last.SamplesPerS,
			"kediff_train_comm_wait_seconds":  0,
		} {
			if got := value(t, f, name, labels...); got != want {
				t.Errorf("%s = %v, metrics.jsonl says %v", name, got, want)
			}
		}
		step := value(t, f, "kediff_train_step_duration_seconds", labels...)
		if want := 4 / last.SamplesPerS; step <= 0 || step-want > 1e-12*want || want-step > 1e-12*want {
			t.Errorf("step duration %v s, want 4 samples / %v samples/s", step, last.SamplesPerS)
		}
	}
	t.Run("end", func(t *testing.T) { check(t, end, "run", "tiny-run", "expert", "base") })
	t.Run("pushed", func(t *testing.T) {
		job.End(nil)
		host, _ := os.Hostname()
		pushed := scrape(t, gateway+"/metrics")
		check(t, pushed, "job", "kediff_train", "instance", host, "run", "tiny-run", "expert", "base")
		value(t, pushed, "kediff_train_last_success_timestamp_seconds", "job", "kediff_train", "run", "tiny-run")
	})
}

func lastMetrics(t *testing.T, dir string) train.Metrics {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m train.Metrics
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
