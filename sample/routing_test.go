package sample

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/unet"
)

// TestRoutingByConstruction proves that each step ran on the right model:
// every checkpoint predicts a constant eps of its own, so the final latent
// is a function of which model took which step. The test replays the loop
// with eps chosen by the block formula t*n/T (not by the Mixture), and a
// routing shifted by one block must give a different latent.
func TestRoutingByConstruction(t *testing.T) {
	cfg := unet.TinyConfig()
	tok := testckpt.Vocab(t)
	root := t.TempDir()
	const n, T = 10, 1000
	value := func(k int) float32 { return 0.05 * float32(k+1) } // expert k
	const baseValue = -0.3
	have := []int{0, 1, 2, 4, 5, 7, 8, 9} // no expert 3 or 6: the base takes them
	var experts []*Checkpoint
	for _, k := range have {
		dir := testckpt.Write(t, filepath.Join(root, fmt.Sprintf("expert-%d", k)), testckpt.Constant(t, cfg, value(k)), tok, k, n)
		experts = append(experts, openCheckpoint(t, dir))
	}
	base := openCheckpoint(t, testckpt.Write(t, filepath.Join(root, "base"), testckpt.Constant(t, cfg, baseValue), tok, -1, n))
	mix, err := NewMixture(base, experts)
	if err != nil {
		t.Fatal(err)
	}
	for _, guidance := range []float64{1, 3} {
		opt := DefaultOptions()
		opt.Guidance, opt.Seed, opt.Batch = guidance, 5, 2
		res, err := Run(context.Background(), mix, []string{"a red circle", "蓝色的方块", "a blue square"}, opt)
		if err != nil {
			t.Fatal(err)
		}
		replay := func(shift int) [][]float32 {
			sched, _ := diffusion.NewDDIM(diffusion.Default(), diffusion.DefaultConfig(), 0)
			sched.SetTimesteps(50)
			var out [][]float32
			for _, b := range res.Batches {
				x := slices.Clone(b.XT)
				for _, ts := range sched.Timesteps() {
					k := min(n-1, max(0, ts*n/T+shift))
					c := float32(baseValue)
					if slices.Contains(have, k) {
						c = value(k)
					}
					eps := make([]float32, len(x))
					per := len(x) / len(b.Images) / 4
					for i := range eps {
						eps[i] = c + 0.1*float32(i/per%4)
					}
					u, _ := sched.Update(ts)
					diffusion.Apply(u, x, nil, eps, x, nil)
				}
				out = append(out, x)
			}
			return out
		}
		want, shifted := replay(0), replay(1)
		for bi, b := range res.Batches {
			if !slices.Equal(b.X0, want[bi]) {
				t.Errorf("guidance %g, batch %d: the final latent differs from the replay of the block routing", guidance, bi)
			}
			if slices.Equal(want[bi], shifted[bi]) {
				t.Fatalf("a routing shifted by one block gives the same latent: the test could not see a wrong expert")
			}
		}
		// each checkpoint ran exactly the timesteps of its block, in one
		// pass per range; the base took both gaps
		for _, s := range res.Segments {
			lo, hi := s.Checkpoint.Block()
			for _, ts := range s.Timesteps {
				inExpert := slices.Contains(have, ts*n/T)
				if ts < lo || ts >= hi || (s.Checkpoint == base) == inExpert {
					t.Errorf("t=%d ran on %s (%s)", ts, s.Checkpoint.Name, s.Checkpoint.Role())
				}
			}
		}
		if got := len(res.Segments); got != len(have)+2 {
			t.Errorf("%d segments, want %d (8 experts, the base twice)", got, len(have)+2)
		}
	}
}
