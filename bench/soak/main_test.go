package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kediff/kediff/onnx"
)

// The short soak (task test; task soak runs the long one): a stream through
// the whole pipeline in this process, with every sample accounted for
// (rows + rejects == inputs), the peak RSS bounded and flat, no goroutine
// left after the run and no hang at its end. Run checks all of it; the
// cases here set the sizes and bounds. The POS stage runs over 100,000
// samples; every knowledge stage (captioner, detector, POS, VAE on the
// fixture models, whose batching stages are where a run's end could wait
// for ever) over 4,000.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 104,000 samples through the pipeline (about 40 s on 2 cores)")
	}
	dir := t.TempDir() // the rendered input, shared by the cases
	for _, tc := range []struct {
		name       string
		stages     string
		samples    int
		maxRSSMiB  float64
		needModels bool
	}{
		{name: "pos_100k", stages: "pos", samples: 100_000, maxRSSMiB: 1024},
		{name: "all_stages_4k", stages: "all", samples: 4_000, maxRSSMiB: 1536, needModels: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needModels {
				if err := onnx.Init(""); err != nil {
					if os.Getenv("CI") != "" {
						t.Fatalf("onnxruntime: %v", err)
					}
					t.Skipf("onnxruntime not available (go tool task setup): %v", err)
				}
			}
			start := time.Now()
			res, err := Run(context.Background(), Options{
				Samples: tc.samples, Unique: 2000, PerShard: 1000, Stages: tc.stages,
				Config: "../../pipelines/sample.yaml", Dir: dir,
				Drain: time.Minute, RSSGrowth: 256,
			}, testWriter{t})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d inputs -> %d rows + %d rejects in %.1fs (drain %.2fs); peak RSS %v MiB; goroutines %d -> %d (%.0fs in all)",
				tc.stages, res.Inputs, res.Rows, res.Rejects, res.Seconds, res.DrainS, res.PeakRSSMiB,
				res.GoroutinesBefore, res.GoroutinesAfter, time.Since(start).Seconds())
			if res.Rows+res.Rejects != res.Inputs || res.Inputs < int64(tc.samples) {
				t.Errorf("rows + rejects = %d + %d, inputs %d", res.Rows, res.Rejects, res.Inputs)
			}
			if peak := res.PeakRSSMiB[len(res.PeakRSSMiB)-1].MiB; peak > tc.maxRSSMiB {
				t.Errorf("peak RSS %.0f MiB, want at most %.0f", peak, tc.maxRSSMiB)
			}
		})
	}
}

// testWriter sends Run's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
