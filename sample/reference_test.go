package sample

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

// TestLoopMatchesPyTorch reruns whole sampling loops in PyTorch
// (tools/sample/reference.py: tools/train/reference.py's Text2ImUNet and
// diffusers' schedulers) from nothing but a --save-latents file and the
// checkpoints it names: two experts switching at t = 500, guidance 3, the
// same x_T. The final latents must agree within 1e-4 relative error.
func TestLoopMatchesPyTorch(t *testing.T) {
	py := pyref.Venv(t, "torch", "diffusers", "safetensors")
	mix := twoExperts(t, unet.TinyConfig())
	script := filepath.Join(pyref.Root(t), "tools", "sample", "reference.py")
	for _, c := range []struct {
		name      string
		scheduler string
		steps     int
		eta       float64
		guidance  float64
	}{
		{"ddim_50_guidance_3", "ddim", 50, 0, 3},
		{"ddim_eta_0.5", "ddim", 20, 0.5, 3},
		{"ddpm", "ddpm", 25, 0, 2.1},
		{"no_guidance", "ddim", 10, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := DefaultOptions()
			opt.Scheduler, opt.Steps, opt.Eta, opt.Guidance, opt.Seed, opt.KeepNoise = c.scheduler, c.steps, c.eta, c.guidance, 11, true
			res, err := Run(context.Background(), mix, []string{"a red circle left of a blue square", "蓝色的方块"}, opt)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			lat, out := filepath.Join(dir, "latents.safetensors"), filepath.Join(dir, "ref.safetensors")
			if err := WriteLatents(lat, res, 0); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(py, script, lat, out).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", script, err, b)
			}
			ref, _, err := safetensors.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref["x_0"].Float32s()
			route, _ := ref["route"].Ints()
			uses := res.Uses()
			for i, ts := range res.Timesteps {
				if got := mix.For(ts); uses[route[i]].Path != got.Dir {
					t.Errorf("t=%d: PyTorch used %s, kediff %s", ts, uses[route[i]].Path, got.Dir)
				}
			}
			e := relErr(res.Batches[0].X0, want)
			if e > 1e-4 {
				t.Errorf("final latent: rel err %.3g against PyTorch > 1e-4", e)
			}
			t.Logf("%d steps (%s, eta %g, guidance %g) over %d checkpoints: final latent rel err %.3g", len(res.Timesteps), c.scheduler, c.eta, c.guidance, len(uses), e)
		})
	}
}
