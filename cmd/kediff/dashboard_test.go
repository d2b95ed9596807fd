package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/trainshards"
	"github.com/kediff/kediff/train"
	"github.com/kediff/kediff/unet"
)

// TestDashboardCommand trains a tiny base and two experts (a grid every two
// steps) and puts them on one page, named as folders and as their parent:
// the loss and grad norm charts have a line named after each run, every
// run's latest grid is there, and the page names nothing outside itself.
func TestDashboardCommand(t *testing.T) {
	ctx := context.Background()
	data, err := trainshards.Write(ctx, t.TempDir(), trainshards.Options{Shards: 1, Rows: 6, Size: 8, NaNRow: -1})
	if err != nil {
		t.Fatal(err)
	}
	prompts := filepath.Join(t.TempDir(), "prompts.txt")
	os.WriteFile(prompts, []byte("a red apple\n"), 0o644)
	cfg := train.DefaultTrainConfig()
	mc := unet.TinyConfig()
	cfg.ModelConfig, cfg.Model = &mc, ""
	cfg.Steps, cfg.Batch, cfg.Warmup, cfg.LR, cfg.CheckpointEvery, cfg.ShuffleBuffer = 4, 2, 2, 1e-3, 0, 4
	cfg.SampleEvery, cfg.SamplePrompts, cfg.SampleDecoder, cfg.SampleSteps = 2, prompts, fixtureDecoder, 2
	cfg.Experts = 4
	root := filepath.Join(t.TempDir(), "train")
	runTrain := func(name string, expert int) {
		c := cfg
		c.Expert = expert
		base := ""
		if expert >= 0 {
			base = filepath.Join(root, "base")
		}
		tr, err := train.NewTrainer(ctx, c, data, filepath.Join(root, name), base, false)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runTrain("base", -1)
	runTrain("expert-0", 0)
	runTrain("expert-1", 1)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"folders", []string{filepath.Join(root, "base"), filepath.Join(root, "expert-0"), filepath.Join(root, "expert-1")}},
		{"parent_flags_last", []string{root}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "page.html")
			args := append(append([]string{}, tc.args...), "--output", out)
			if tc.name == "folders" { // flags first
				args = append([]string{"--output", out}, tc.args...)
			}
			if err := runDashboard(ctx, args); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			page := string(raw)
			for _, bad := range []string{"http://", "https://", "<script"} {
				if strings.Contains(page, bad) {
					t.Errorf("the page holds %q", bad)
				}
			}
			for _, src := range regexp.MustCompile(`<img [^>]*src="([^"]{0,30})`).FindAllStringSubmatch(page, -1) {
				if !strings.HasPrefix(src[1], "data:image/png;base64,") {
					t.Errorf("an image is not inline: %s", src[1])
				}
			}
			for _, id := range []string{"loss", "grad_norm"} {
				chart := regexp.MustCompile(`(?s)<figure class="chart" id="chart-` + id + `">(.*?)</figure>`).FindStringSubmatch(page)
				if chart == nil {
					t.Fatalf("no %s chart", id)
				}
				for _, name := range []string{"base", "expert-0", "expert-1"} {
					if !strings.Contains(chart[1], ">"+name+"</text>") {
						t.Errorf("the %s chart has no line named %s", id, name)
					}
				}
			}
			for _, l := range []string{"base: step 4 (latest)", "expert-0: step 4 (latest)", "expert-1: step 4 (latest)", "expert 1 of 4"} {
				if !strings.Contains(page, l) {
					t.Errorf("the page lacks %q", l)
				}
			}
		})
	}

	if err := runDashboard(ctx, []string{t.TempDir(), "--output", filepath.Join(t.TempDir(), "x.html")}); err == nil || !strings.Contains(err.Error(), "no metrics.jsonl") {
		t.Errorf("a folder without runs: %v", err)
	}
	if err := runDashboard(ctx, []string{"--smooth", "1", root}); err == nil || !strings.Contains(err.Error(), "--smooth") {
		t.Errorf("--smooth 1: %v", err)
	}
}
