package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/internal/cudaemu"
	"github.com/kediff/kediff/internal/pyref"
)

// TestHarness runs the whole benchmark at the tiny config without a GPU:
// kediff on the host emulation in bf16 (and on the CPU in fp32), PyTorch on
// the CPU with bf16 autocast, eager; torch.compile on Debian's torch 1.13
// must come back as a failed row, not end the run.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	py := pyref.Torch(t)
	cudaemu.Lib(t)
	root := pyref.Root(t)
	for _, tc := range []struct{ device, precision string }{{"cuda-emu", "bf16"}, {"cpu", "fp32"}} {
		t.Run(tc.device, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "bench.json")
			cfg := filepath.Join(root, "train/configs/tiny.json")
			o := options{device: tc.device, precision: tc.precision, models: cfg + ":2", sampleModels: cfg,
				warmup: 1, steps: 2, sampleWarmup: 1, sampleSteps: 2, python: py, reference: filepath.Join(root, "tools/train/reference.py"),
				dir: dir, torchDevice: "cpu", torchModes: "eager,compile", rateElements: 1 << 12, rateSide: 32, jsonOut: out}
			if err := run(o); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var rep report
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Matrix <= 0 || rep.Bandwidth <= 0 {
				t.Errorf("ceilings not measured: %+v", rep)
			}
			if len(rep.Results) != 6 {
				t.Fatalf("%d results, want 6 (train and sample: kediff, eager, compile):\n%s", len(rep.Results), b)
			}
			for i, r := range rep.Results {
				kind := []string{"train", "sample"}[i/3]
				if r.Kind != kind || r.Params != rep.Results[0].Params || r.Params == 0 {
					t.Errorf("row %d: %+v", i, r)
				}
				switch i % 3 {
				case 0, 1: // kediff, PyTorch eager
					if r.Error != "" || !(r.MsPerStep > 0) || !(r.BestMs <= r.MsPerStep) || !(r.TFLOPS > 0) || (kind == "train") != (r.ImagesPS > 0) {
						t.Errorf("row %d: %+v", i, r)
					}
				case 2: // torch.compile on torch 1.13
					if r.Error == "" {
						t.Errorf("row %d: torch.compile on torch 1.13 did not fail: %+v", i, r)
					}
				}
			}
			if tc.device == "cuda-emu" && rep.Results[0].PeakBytes < 4*int64(rep.Results[0].Params)*4 {
				t.Errorf("peak device memory %d bytes is below the parameters, gradients and moments (%d)", rep.Results[0].PeakBytes, 16*rep.Results[0].Params)
			}
		})
	}
}
