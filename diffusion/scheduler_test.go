package diffusion

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSchedulerErrors(t *testing.T) {
	s := Default()
	for name, tc := range map[string]struct {
		err  func() error
		want string
	}{
		"zero_steps":      {func() error { _, err := Timesteps(Leading, 0, 1000, 0); return err }, "inference steps"},
		"too_many_steps":  {func() error { _, err := Timesteps(Leading, 1001, 1000, 0); return err }, "1 to 1000"},
		"unknown_spacing": {func() error { _, err := Timesteps("karras", 10, 1000, 0); return err }, "timestep_spacing"},
		"offset_past_T":   {func() error { _, err := Timesteps(Leading, 1000, 1000, 1); return err }, "outside"},
		"eta_negative":    {func() error { _, err := NewDDIM(s, DefaultConfig(), -0.1); return err }, "eta"},
		"eta_above_one":   {func() error { _, err := NewDDIM(s, DefaultConfig(), 1.5); return err }, "eta"},
		"ddpm_eta":        {func() error { _, err := New("ddpm", s, DefaultConfig(), 0.5); return err }, "DDIM option"},
		"unknown":         {func() error { _, err := New("euler", s, DefaultConfig(), 0); return err }, "ddim or ddpm"},
		"bad_config":      {func() error { _, err := NewDDPM(s, Config{TimestepSpacing: "x"}); return err }, "timestep_spacing"},
		"no_set_timesteps": {func() error {
			d, _ := NewDDIM(s, DefaultConfig(), 0)
			_, err := d.Update(999)
			return err
		}, "SetTimesteps"},
		"ddpm_unlisted_t": {func() error {
			d, _ := NewDDPM(s, DefaultConfig())
			d.SetTimesteps(10)
			_, err := d.Update(901)
			return err
		}, "not one of"},
		"noise_missing": {func() error {
			d, _ := NewDDPM(s, DefaultConfig())
			d.SetTimesteps(10)
			x := make([]float32, 4)
			return d.Step(x, x, 900, x, nil)
		}, "adds noise"},
		"length_mismatch": {func() error {
			d, _ := NewDDIM(s, DefaultConfig(), 0)
			d.SetTimesteps(10)
			return d.Step(make([]float32, 4), make([]float32, 3), 900, make([]float32, 4), nil)
		}, "equal lengths"},
		"bad_schedule":   {func() error { _, err := NewSchedule("scaled_linear", 1000, 0.02, 0.01); return err }, "beta_start"},
		"short_schedule": {func() error { _, err := NewSchedule("linear", 1, 0.1, 0.2); return err }, "at least 2"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}

// TestDDPMIsDDIMWithEtaOne checks the identity the package comment states: on
// the full schedule, DDPM's posterior step and DDIM's step with eta = 1 are
// the same update, although they are written differently.
func TestDDPMIsDDIMWithEtaOne(t *testing.T) {
	s := Default()
	ddpm, _ := NewDDPM(s, DefaultConfig())
	ddim, _ := NewDDIM(s, DefaultConfig(), 1)
	ddpm.SetTimesteps(1000)
	ddim.SetTimesteps(1000)
	rng := rand.New(rand.NewPCG(3, 4))
	x, eps, z := make([]float64, 16), make([]float64, 16), make([]float64, 16)
	a, b := make([]float64, 16), make([]float64, 16)
	worst := 0.0
	for _, ts := range ddpm.Timesteps() {
		for i := range x {
			x[i], eps[i], z[i] = rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		}
		u1, _ := ddpm.Update(ts)
		u2, _ := ddim.Update(ts)
		if ts == 0 {
			u2.Sigma = 0 // DDPM adds no noise at t = 0 (DDIM's sigma there is 0 too)
		}
		Apply(u1, a, nil, eps, x, z)
		Apply(u2, b, nil, eps, x, z)
		worst = max(worst, relErr(a, b))
	}
	if worst > 1e-10 {
		t.Fatalf("DDPM and DDIM(eta=1) differ by %.3g", worst)
	}
}

func TestBlocksTile(t *testing.T) {
	for _, n := range []int{1, 3, 7, 10} {
		next := 0
		for i := range n {
			lo, hi := Block(i, n, 1000)
			if lo != next || hi <= lo {
				t.Fatalf("n=%d: block %d is [%d, %d), want it to start at %d", n, i, lo, hi, next)
			}
			next = hi
		}
		if next != 1000 {
			t.Fatalf("n=%d: blocks end at %d", n, next)
		}
	}
}

// TestCosineSchedule checks the cosine schedule against its closed form:
// abar_t is abar(t+1)/abar(0) wherever no beta is capped at 0.999.
func TestCosineSchedule(t *testing.T) {
	s, err := NewSchedule("cosine", 1000, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := func(t float64) float64 { c := math.Cos((t/1000 + 0.008) / 1.008 * math.Pi / 2); return c * c }
	for _, ts := range []int{0, 10, 500, 900} {
		if want := f(float64(ts+1)) / f(0); math.Abs(s.AlphasCumprod[ts]-want) > 1e-12 {
			t.Errorf("abar_%d = %v, want %v", ts, s.AlphasCumprod[ts], want)
		}
	}
}
