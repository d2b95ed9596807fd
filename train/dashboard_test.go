package train

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/dashboard"
)

// TestSaveWritesDashboard: every checkpoint has loss.png (a real chart, not
// blank) and dashboard.html with a chart per metric and the grids drawn so
// far, labelled by step; a resumed run's page has the steps from before.
func TestSaveWritesDashboard(t *testing.T) {
	if MetricsFile != dashboard.MetricsFile || GridDir != dashboard.GridDir || StateFile != dashboard.StateFile {
		t.Fatal("package dashboard reads other file names than train writes")
	}
	data := writeTestShards(t, shardOpts{shards: 1, rows: 6, size: 8, nanRow: -1})
	ctx := context.Background()
	prompts := filepath.Join(t.TempDir(), "prompts.txt")
	os.WriteFile(prompts, []byte("a red apple\n"), 0o644)
	cfg := tinyTrainConfig()
	cfg.Steps, cfg.CheckpointEvery = 2, 2
	cfg.SampleEvery, cfg.SamplePrompts, cfg.SampleDecoder, cfg.SampleSteps = 2, prompts, "../vae/testdata/model", 2
	out := filepath.Join(t.TempDir(), "base")
	for i, resume := range []bool{false, true} {
		if resume {
			cfg.Steps = 4
		}
		tr, err := NewTrainer(ctx, cfg, data, out, "", resume)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		tr.Close()

		f, err := os.Open(filepath.Join(out, LossPlotFile))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 {
			t.Fatalf("loss.png: %v, %v; want a 640x360 PNG", err, img.Bounds())
		}
		inked := 0
		for y := 0; y < 360; y++ {
			for x := 0; x < 640; x++ {
				if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
					inked++
				}
			}
		}
		if inked < 2000 {
			t.Errorf("loss.png has %d dark pixels: no axes, labels or line", inked)
		}

		raw, err := os.ReadFile(filepath.Join(out, DashboardFile))
		if err != nil {
			t.Fatal(err)
		}
		page := string(raw)
		for _, s := range []string{`id="chart-loss"`, `id="chart-grad_norm"`, `id="chart-lr"`, `id="chart-samples_per_s"`, "<figcaption>step 2</figcaption>", "kediff training: base"} {
			if !strings.Contains(page, s) {
				t.Errorf("run %d: dashboard.html lacks %q", i, s)
			}
		}
		if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "<script") {
			t.Errorf("run %d: dashboard.html is not self-contained", i)
		}
		if resume {
			if !strings.Contains(page, "<figcaption>step 4</figcaption>") || !bytes.Contains(raw, []byte("<td>4</td><td>4</td>")) {
				t.Error("the resumed run's page lacks the new grid or the four steps")
			}
		}
	}
}
