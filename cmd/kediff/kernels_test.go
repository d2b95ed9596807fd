package main

import (
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/cudaemu"
)

// TestKernelsCheckEmulated runs kediff kernels check on the host emulation of
// libkediff_cuda: every kernel at the tiny model's shapes and a whole
// training step against the CPU, in fp32 and bf16.
func TestKernelsCheckEmulated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cudaemu.Lib(t)
	bin := buildKediff(t)
	log, err := runKediff(bin, nil, "kernels", "check", "--device", "cuda-emu", "--config", "../../train/configs/tiny.json", "--batch", "2", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, want := range []string{"fp32: all", "bf16: all", "fp32: training step agrees with the CPU", "bf16: training step agrees with the CPU"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in:\n%s", want, log)
		}
	}
	if _, err := runKediff(bin, nil, "kernels", "check", "--device", "cpu"); err == nil {
		t.Error("checking the CPU against itself was accepted")
	}
	log, err = runKediff(bin, nil, "train", "base", "--device", "cpu", "--precision", "bf16", "--data", "x", "--config", "../../train/configs/tiny.json", "--out", t.TempDir())
	if err == nil || !strings.Contains(log, "bf16 needs --device cuda") {
		t.Errorf("bf16 on the CPU: %v\n%s", err, log)
	}
	log, err = runKediff(bin, nil, "kernels", "bench", "--device", "cuda-emu", "--config", "../../train/configs/tiny.json", "--batch", "1", "--reps", "1", "--top", "3", "--rate-elements", "4096", "--rate-matrix", "64")
	if err != nil {
		t.Fatalf("kernels bench: %v\n%s", err, log)
	}
	for _, want := range []string{"Conv2DBackward", "ceilings:", "the 3 slowest cases:"} {
		if !strings.Contains(log, want) {
			t.Errorf("kernels bench: no %q in:\n%s", want, log)
		}
	}
}
