package sample

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kediff/kediff/internal/cudaemu"
	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/kernels/cuda"
	"github.com/kediff/kediff/unet"
)

// twoExperts writes experts 0 and 1 of 2 with different random U-Nets and
// one text encoder, and returns their mixture.
func twoExperts(t testing.TB, cfg unet.Config) *Mixture {
	t.Helper()
	tok := testckpt.Vocab(t)
	root := t.TempDir()
	e0 := testckpt.Random(t, cfg, 1, 0.05)
	e1 := testckpt.Random(t, cfg, 2, 0.05)
	testckpt.ShareTextEncoder(e0, e1)
	var cks []*Checkpoint
	for k, m := range []*unet.Model{e0, e1} {
		cks = append(cks, openCheckpoint(t, testckpt.Write(t, filepath.Join(root, fmt.Sprintf("expert-%d", k)), m, tok, k, 2)))
	}
	mix, err := NewMixture(nil, cks)
	if err != nil {
		t.Fatal(err)
	}
	return mix
}

// TestSameSeedSameImages: an image depends on the seed and its index, not
// on the worker count (bit for bit) or on the batch it falls in (up to
// float32 rounding: the matrix products of a larger batch are blocked
// differently), for the deterministic and the stochastic scheduler.
func TestSameSeedSameImages(t *testing.T) {
	mix := twoExperts(t, unet.TinyConfig())
	prompts := []string{"a red circle", "红色的圆", "a blue square left of a red circle"}
	run := func(batch, procs int, scheduler string) [][]float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		opt := DefaultOptions()
		opt.Batch, opt.Seed, opt.Scheduler, opt.Steps, opt.ImagesPerPrompt = batch, 7, scheduler, 20, 2
		res, err := Run(context.Background(), mix, prompts, opt)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for _, im := range res.Images {
			out = append(out, im.X0)
		}
		return out
	}
	for _, sch := range []string{"ddim", "ddpm"} {
		ref := run(4, 2, sch)
		for _, c := range []struct {
			batch, procs int
			tol          float64
		}{{4, 1, 0}, {1, 1, 1e-5}, {6, 2, 1e-5}} {
			got := run(c.batch, c.procs, sch)
			worst := 0.0
			for i := range ref {
				worst = max(worst, relErr(got[i], ref[i]))
			}
			if worst > c.tol {
				t.Errorf("%s, batch %d, %d workers: images differ from batch 4 on 2 workers by %.3g (tolerance %g)", sch, c.batch, c.procs, worst, c.tol)
			}
			t.Logf("%s, batch %d, %d workers: worst rel. difference %.3g", sch, c.batch, c.procs, worst)
		}
		if relErr(ref[0], ref[1]) < 1e-2 {
			t.Errorf("%s: two images of one prompt are (nearly) identical: the seeds do not differ", sch)
		}
	}
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

// TestSampleOnEmulatedDevice: the same run through kernels/cuda's device path
// (its host emulation) gives the CPU's latents (1e-4 in fp32, 2e-2 with
// bf16 activations).
func TestSampleOnEmulatedDevice(t *testing.T) {
	cudaemu.Lib(t)
	mix := twoExperts(t, unet.TinyConfig())
	opt := DefaultOptions()
	opt.Steps, opt.Seed, opt.Guidance = 12, 3, 3
	prompts := []string{"a red circle", "蓝色的方块"}
	want, err := Run(context.Background(), mix, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, bf := range []bool{false, true} {
		d, err := cuda.Open(cuda.Options{Emulate: true, BF16: bf})
		if err != nil {
			t.Fatal(err)
		}
		o := opt
		o.Backend = d
		got, err := Run(context.Background(), mix, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		tol := 1e-4
		if bf {
			tol = 2e-2
		}
		for i := range want.Images {
			if e := relErr(got.Images[i].X0, want.Images[i].X0); !(e <= tol) {
				t.Errorf("bf16 %v, image %d: rel err %.3g against the CPU (> %g)", bf, i, e, tol)
			} else {
				t.Logf("bf16 %v, image %d: rel err %.3g", bf, i, e)
			}
		}
	}
}
