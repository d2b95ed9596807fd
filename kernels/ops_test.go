package kernels

import (
	"math"
	"testing"
)

func TestDropout(t *testing.T) {
	const n, p = 100000, 0.25
	inp := make([]float32, n)
	for i := range inp {
		inp[i] = 1
	}
	run := func(seed uint64) []float32 {
		out := make([]float32, n)
		DropoutForward(out, inp, n, p, seed)
		return out
	}
	a := run(7)
	t.Run("drops_about_p_and_rescales_kept", func(t *testing.T) {
		dropped := 0
		for _, v := range a {
			switch v {
			case 0:
				dropped++
			case 1 / (1 - p):
			default:
				t.Fatalf("value %g is neither 0 nor 1/(1-p)", v)
			}
		}
		if frac := float64(dropped) / n; math.Abs(frac-p) > 0.01 {
			t.Errorf("dropped fraction %.4f, want %.2f", frac, p)
		}
	})
	t.Run("same_seed_same_mask_regardless_of_split", func(t *testing.T) {
		restore := forceSplit()
		b := run(7)
		restore()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("element %d differs: %g vs %g", i, a[i], b[i])
			}
		}
	})
	t.Run("different_seed_different_mask", func(t *testing.T) {
		b, same := run(8), 0
		for i := range a {
			if a[i] == b[i] {
				same++
			}
		}
		if same == n {
			t.Error("seeds 7 and 8 gave the same mask")
		}
	})
	t.Run("p_zero_is_identity", func(t *testing.T) {
		out := make([]float32, n)
		DropoutForward(out, inp, n, 0, 1)
		if relErr(out, inp) != 0 {
			t.Error("p=0 changed the input")
		}
	})
}

func TestLayout(t *testing.T) {
	var l Layout
	l.Add("time_embed.0.weight", 256, 64)
	l.Add("time_embed.0.bias", 256)
	v := l.Add("out.2.weight", 4, 64, 3, 3)
	t.Run("views_are_contiguous_in_order", func(t *testing.T) {
		if v.Offset != 256*64+256 || v.Size != 4*64*9 || l.Size() != v.Offset+v.Size {
			t.Errorf("got view %+v, size %d", v, l.Size())
		}
	})
	t.Run("get_and_grad_alias_the_flat_buffers", func(t *testing.T) {
		p := NewParams(nil, &l)
		p.Get("time_embed.0.bias")[3] = 5
		p.GradOf("time_embed.0.bias")[3] = 6
		if p.Data[256*64+3] != 5 || p.Grad[256*64+3] != 6 {
			t.Error("named views do not alias Data/Grad")
		}
		p.ZeroGrad()
		if p.Grad[256*64+3] != 0 {
			t.Error("ZeroGrad left a gradient")
		}
	})
	t.Run("duplicate_name_panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		l.Add("time_embed.0.bias", 3)
	})
}

func TestClipGradNorm(t *testing.T) {
	t.Run("below_max_is_untouched", func(t *testing.T) {
		g := []float64{0.3, 0.4}
		if n := ClipGradNorm(g, 1); math.Abs(n-0.5) > 1e-15 || g[0] != 0.3 || g[1] != 0.4 {
			t.Errorf("norm %g, grads %v", n, g)
		}
	})
	t.Run("above_max_scales_to_max", func(t *testing.T) {
		g := []float64{3, 4}
		n := ClipGradNorm(g, 1)
		want := 1 / (5 + 1e-6)
		if n != 5 || math.Abs(g[0]-3*want) > 1e-15 || math.Abs(g[1]-4*want) > 1e-15 {
			t.Errorf("norm %g, grads %v", n, g)
		}
	})
	t.Run("non_finite_norm_leaves_grads", func(t *testing.T) {
		g := []float64{math.Inf(1), 1}
		if n := ClipGradNorm(g, 1); !math.IsInf(n, 1) || g[1] != 1 {
			t.Errorf("norm %g, grads %v", n, g)
		}
	})
}

func TestAttentionMaskedKeysGetZeroWeight(t *testing.T) {
	s := AttentionShape{B: 1, NH: 1, Nq: 2, Nk: 3, D: 2}
	q := []float64{1, 2, 3, 4}
	k := []float64{1, 0, 0, 1, 100, 100}
	v := []float64{1, 1, 2, 2, 1e6, 1e6}
	mask := []float64{1, 1, 0}
	out, att := make([]float64, 4), make([]float64, 6)
	AttentionForward(out, att, q, k, v, nil, mask, s)
	if att[2] != 0 || att[5] != 0 || out[0] > 2 {
		t.Errorf("masked key leaked: att %v out %v", att, out)
	}
}

func TestFastExpMatchesMathExp(t *testing.T) {
	worst := 0.0
	for x := -750.0; x <= 750; x += 0.0137 {
		want := math.Exp(x)
		got := fastExp(x)
		if want == 0 || math.IsInf(want, 1) {
			if got != want {
				t.Fatalf("fastExp(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 1e-8 {
		t.Errorf("worst relative error %.3g", worst)
	}
	if !math.IsNaN(fastExp(math.NaN())) {
		t.Error("fastExp(NaN) is not NaN")
	}
}
