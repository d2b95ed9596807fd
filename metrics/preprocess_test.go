package metrics_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kediff/kediff/metrics"
	"github.com/kediff/kediff/metrics/metricstest"
	"github.com/kediff/kediff/pipelines"
	"github.com/kediff/kediff/synth"
)

var quietLog = slog.New(slog.DiscardHandler)

var _ pipelines.Observer = (*metrics.Preprocess)(nil)

// gate is the run's observer: it passes everything on and, once the write
// stage has written row at, calls hook from inside the run, so that a scrape
// sees the run half done however fast the machine is.
type gate struct {
	*metrics.Preprocess
	at   int64
	n    atomic.Int64
	hook func()
}

func (g *gate) Written(imageBytes int) {
	g.Preprocess.Written(imageBytes)
	if g.n.Add(1) == g.at {
		g.hook()
	}
}

func scrape(t *testing.T, url string) metricstest.Families {
	t.Helper()
	f, err := metricstest.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func value(t *testing.T, f metricstest.Families, name string, labels ...string) float64 {
	t.Helper()
	return f.Must(t, name, labels...)
}

// A preprocess run of the synthetic sample (with its broken samples) serves
// /metrics; a scrape halfway shows the run in progress, the scrape at the
// end adds up to the stats files, and the Pushgateway gets the same values.
func TestPreprocessMetrics(t *testing.T) {
	ctx := context.Background()
	in := filepath.Join(t.TempDir(), "in")
	if _, err := synth.Generate(ctx, in, synth.Options{Samples: 24, PerShard: 8, Width: 96, Height: 96, Seed: 7,
		Quality: 85, Lang: "mixed", BadSamples: true}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cfg := pipelines.Default()
	cfg.Image.Size, cfg.POS.Enabled, cfg.Output.RowGroupRows = 64, false, 8
	gateway, real := metricstest.Pushgateway(t)
	t.Logf("Pushgateway at %s (real: %v)", gateway, real)

	flags := metrics.Flags{Addr: "127.0.0.1:0", Push: gateway}
	job, err := flags.Start("kediff_preprocess", map[string]string{"worker": "1"}, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer job.End(nil)
	url := job.Server.URL
	var mid metricstest.Families
	obs := &gate{Preprocess: metrics.NewPreprocess(job.Registerer, quietLog), at: 10, hook: func() { mid = scrape(t, url) }}
	sum, err := pipelines.Preprocess(ctx, pipelines.PreprocessOptions{Input: in, Output: out, Config: cfg,
		Split: pipelines.Split{Index: 0, Count: 1}, Logger: quietLog, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	end := scrape(t, url)
	read := value(t, end, "kediff_preprocess_samples_total", "stage", "read")

	t.Run("halfway", func(t *testing.T) {
		if mid == nil {
			t.Fatal("the gate never scraped")
		}
		if got := value(t, mid, "kediff_preprocess_rows_written_total"); got != 10 {
			t.Errorf("rows written halfway: %v, want 10", got)
		}
		if got := value(t, mid, "kediff_preprocess_samples_total", "stage", "write"); got >= read {
			t.Errorf("write stage consumed %v samples halfway, the whole run has %v", got, read)
		}
		if got := value(t, mid, "kediff_preprocess_shards_total", "result", "written"); got >= 3 {
			t.Errorf("%v shards written halfway", got)
		}
		for _, stage := range []string{"read", "text", "image", "write"} {
			value(t, mid, "kediff_preprocess_stage_busy_seconds_total", "stage", stage)
			value(t, mid, "kediff_preprocess_stage_blocked_seconds_total", "stage", stage)
			if stage != "read" {
				if c := value(t, mid, "kediff_preprocess_queue_capacity", "stage", stage); c != 64 {
					t.Errorf("queue of %s: capacity %v, want 64", stage, c)
				}
				value(t, mid, "kediff_preprocess_queue_length", "stage", stage)
			}
		}
		metricstest.CheckGrowth(t, mid, end)
	})

	t.Run("end_adds_up_to_stats_files", func(t *testing.T) {
		if n := metricstest.CheckPreprocess(t, end, out, filepath.Join(in, "*.tar"), "worker", "1"); n != 3 {
			t.Errorf("%d shards written, want 3", n)
		}
		if got := value(t, end, "kediff_preprocess_rows_written_total"); got != float64(sum.Written) {
			t.Errorf("rows written: %v, the run's summary %d", got, sum.Written)
		}
		if got := value(t, end, "kediff_preprocess_shards_total", "result", "skipped"); got != 0 {
			t.Errorf("shards skipped: %v, want 0", got)
		}
		if got := value(t, end, "kediff_preprocess_shards_todo"); got != 3 {
			t.Errorf("shards to do: %v, want 3", got)
		}
		if got := value(t, end, "kediff_preprocess_stage_busy_seconds_total", "stage", "image"); got <= 0 {
			t.Errorf("image stage busy %v s", got)
		}
		if got := value(t, end, "kediff_preprocess_stage_workers", "stage", "write"); got != 1 {
			t.Errorf("write workers: %v", got)
		}
		for _, s := range end.Series("kediff_preprocess_rows_written_total") {
			if s.Labels["worker"] != "1" {
				t.Errorf("the Job's label is missing: %v", s.Labels)
			}
		}
		value(t, end, "go_goroutines")
		value(t, end, "process_cpu_seconds_total")
	})

	t.Run("pushed", func(t *testing.T) {
		job.End(nil)
		host, _ := os.Hostname()
		pushed := scrape(t, gateway+"/metrics")
		group := []string{"job", "kediff_preprocess", "instance", host, "worker", "1"}
		n := 0
		for name := range end {
			if !strings.HasPrefix(name, "kediff_") || name == "kediff_preprocess_duration_seconds" {
				continue
			}
			for _, s := range end.Series(name) {
				want := append([]string{}, group...)
				for k, v := range s.Labels {
					want = append(want, k, v)
				}
				got, ok := pushed.Value(name, want...)
				if !ok || got != s.Value {
					t.Errorf("pushed %s%v: %v (found %v), served %v", name, s.Labels, got, ok, s.Value)
				}
				n++
			}
		}
		if n < 40 {
			t.Errorf("only %d series compared", n)
		}
		value(t, pushed, "kediff_preprocess_last_success_timestamp_seconds", group...)
		if d := value(t, pushed, "kediff_preprocess_duration_seconds", group...); d <= 0 {
			t.Errorf("duration %v", d)
		}
		if _, ok := pushed.Value("go_goroutines", "job", "kediff_preprocess"); ok {
			t.Error("the Go runtime's metrics were pushed")
		}
	})

	t.Run("rerun_skips", func(t *testing.T) {
		reg := metrics.NewRegistry()
		srv, err := reg.Serve("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		obs := metrics.NewPreprocess(reg.Registerer(), quietLog)
		if _, err := pipelines.Preprocess(ctx, pipelines.PreprocessOptions{Input: in, Output: out, Config: cfg,
			Split: pipelines.Split{Index: 0, Count: 1}, Logger: quietLog, Observer: obs}); err != nil {
			t.Fatal(err)
		}
		f := scrape(t, srv.URL)
		for name, want := range map[string]float64{"kediff_preprocess_shards_todo": 0, "kediff_preprocess_rows_written_total": 0} {
			if got := value(t, f, name); got != want {
				t.Errorf("%s: %v, want %v", name, got, want)
			}
		}
		if got := value(t, f, "kediff_preprocess_shards_total", "result", "skipped"); got != 3 {
			t.Errorf("shards skipped: %v, want 3", got)
		}
		if _, ok := f.Value("kediff_preprocess_samples_total"); ok {
			t.Error("stage metrics without a pipeline")
		}
	})
}

// What the write stage pays per sample with metrics on: a row and a reject.
func BenchmarkPreprocessPerSample(b *testing.B) {
	m := metrics.NewPreprocess(metrics.NewRegistry().Registerer(), quietLog)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Written(12345)
			m.Rejected("image", "image_decode")
		}
	})
}
