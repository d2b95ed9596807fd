package diffusion

import (
	"fmt"
	"math"
)

// Update is one sampling step's coefficients in DESIGN.md 1.7's terms, from
// timestep T to Prev (-1 after the last step):
//
//	x0_hat = (x_t - SqrtOneMinusAbar * eps) / SqrtAbar
//	x_prev = X0 * x0_hat + Eps * eps + Sample * x_t + Sigma * z,   z ~ N(0, I)
//
// DDIM has Sample = 0, DDPM has Eps = 0 (its posterior mean is written in
// x0_hat and x_t, as diffusers writes it).
type Update struct {
	T, Prev                    int
	AbarT, AbarPrev            float64
	SqrtAbar, SqrtOneMinusAbar float64
	X0, Eps, Sample, Sigma     float64
}

// Scheduler is a sampler over a training schedule, used as diffusers'
// schedulers are: SetTimesteps once, then Step for each of Timesteps() in
// order with the model's eps at that timestep.
type Scheduler interface {
	// Name is "ddim" or "ddpm".
	Name() string
	// SetTimesteps fixes the number of inference steps (diffusers'
	// num_inference_steps); it must come before Update and Step.
	SetTimesteps(numInferenceSteps int) error
	// Timesteps are the inference timesteps, descending.
	Timesteps() []int
	// Update is the step at timestep t (one of Timesteps).
	Update(t int) (Update, error)
	// Step writes x_prev into prev (which may alias x) from the model output
	// eps at timestep t; noise (z, as long as x) is read only when the
	// step's Sigma is not 0 and may be nil otherwise.
	Step(prev, eps []float32, t int, x, noise []float32) error
}

// Apply computes a step elementwise in float64 and stores the results as F:
// prev gets x_prev and predX0 (nil: not wanted) gets x0_hat. prev and predX0
// may alias x.
func Apply[F float32 | float64](u Update, prev, predX0, eps, x, noise []F) {
	for i := range x {
		xt, e := float64(x[i]), float64(eps[i])
		x0 := (xt - u.SqrtOneMinusAbar*e) / u.SqrtAbar
		p := u.X0*x0 + u.Eps*e + u.Sample*xt
		if u.Sigma != 0 {
			p += u.Sigma * float64(noise[i])
		}
		if predX0 != nil {
			predX0[i] = F(x0)
		}
		prev[i] = F(p)
	}
}

// base holds what DDIM and DDPM share: the schedule, the options and the
// timesteps of the last SetTimesteps.
type base struct {
	schedule  *Schedule
	config    Config
	steps     int
	timesteps []int
}

func newBase(s *Schedule, c Config) (base, error) {
	if s == nil {
		return base{}, fmt.Errorf("diffusion: no schedule")
	}
	switch c.TimestepSpacing {
	case "":
		c.TimestepSpacing = Leading
	case Leading, Trailing, Linspace:
	default:
		return base{}, fmt.Errorf("diffusion: unknown timestep_spacing %q (want leading, trailing or linspace)", c.TimestepSpacing)
	}
	if c.StepsOffset < 0 {
		return base{}, fmt.Errorf("diffusion: steps_offset %d is negative", c.StepsOffset)
	}
	return base{schedule: s, config: c}, nil
}

func (b *base) SetTimesteps(n int) error {
	ts, err := Timesteps(b.config.TimestepSpacing, n, b.schedule.Steps(), b.config.StepsOffset)
	if err != nil {
		return err
	}
	b.steps, b.timesteps = n, ts
	return nil
}

func (b *base) Timesteps() []int { return b.timesteps }

// abar is abar_t, or for t < 0 (after the last step) 1 with
// set_alpha_to_one and abar_0 without.
func (b *base) abar(t int) float64 {
	if t < 0 {
		if b.config.SetAlphaToOne {
			return 1
		}
		return b.schedule.AlphasCumprod[0]
	}
	return b.schedule.AlphasCumprod[t]
}

func (b *base) check(t int) error {
	if b.timesteps == nil {
		return fmt.Errorf("diffusion: call SetTimesteps before stepping")
	}
	if t < 0 || t >= b.schedule.Steps() {
		return fmt.Errorf("diffusion: timestep %d outside the %d training timesteps", t, b.schedule.Steps())
	}
	return nil
}

// step is Step for any scheduler's Update.
func step(s Scheduler, prev, eps []float32, t int, x, noise []float32) error {
	if len(eps) != len(x) || len(prev) != len(x) {
		return fmt.Errorf("diffusion: step: eps %d, x %d, prev %d values, want equal lengths", len(eps), len(x), len(prev))
	}
	u, err := s.Update(t)
	if err != nil {
		return err
	}
	if u.Sigma != 0 && len(noise) != len(x) {
		return fmt.Errorf("diffusion: step at t=%d adds noise (sigma %.3g): noise has %d values, want %d", t, u.Sigma, len(noise), len(x))
	}
	Apply(u, prev, nil, eps, x, noise)
	return nil
}

// DDIM is diffusers' DDIMScheduler with prediction_type "epsilon" and
// clip_sample off: x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev -
// sigma^2) eps + sigma z with sigma = eta sqrt((1-abar_prev)/(1-abar_t))
// sqrt(1 - abar_t/abar_prev). As in diffusers, abar_prev is taken at
// t - T/S (integer division) for every spacing, which for linspace (and
// trailing when S does not divide T) is not always the next listed
// timestep.
type DDIM struct {
	base
	Eta float64 // 0: deterministic DDIM; 1: DDPM-like ancestral noise
}

// NewDDIM returns a DDIM sampler over s with options c and noise level eta
// in [0, 1].
func NewDDIM(s *Schedule, c Config, eta float64) (*DDIM, error) {
	if !(eta >= 0 && eta <= 1) {
		return nil, fmt.Errorf("diffusion: DDIM eta %g outside [0, 1]", eta)
	}
	b, err := newBase(s, c)
	if err != nil {
		return nil, err
	}
	return &DDIM{base: b, Eta: eta}, nil
}

func (*DDIM) Name() string { return "ddim" }

// Update follows DDIMScheduler.step.
func (d *DDIM) Update(t int) (Update, error) {
	if err := d.check(t); err != nil {
		return Update{}, err
	}
	prev := t - d.schedule.Steps()/d.steps
	if prev < 0 {
		prev = -1
	}
	at, ap := d.abar(t), d.abar(prev)
	bt, bp := 1-at, 1-ap
	variance := bp / bt * (1 - at/ap)
	sigma := d.Eta * math.Sqrt(variance)
	return Update{T: t, Prev: prev, AbarT: at, AbarPrev: ap,
		SqrtAbar: math.Sqrt(at), SqrtOneMinusAbar: math.Sqrt(bt),
		X0: math.Sqrt(ap), Eps: math.Sqrt(1 - ap - sigma*sigma), Sigma: sigma}, nil
}

func (d *DDIM) Step(prev, eps []float32, t int, x, noise []float32) error {
	return step(d, prev, eps, t, x, noise)
}

// DDPM is diffusers' DDPMScheduler with prediction_type "epsilon",
// variance_type "fixed_small" and clip_sample off: ancestral sampling from
// the posterior q(x_prev | x_t, x0_hat), whose mean is
//
//	sqrt(abar_prev) beta_t / (1 - abar_t) x0_hat + sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t) x_t
//
// and whose variance is (1 - abar_prev)/(1 - abar_t) beta_t (at least
// 1e-20), with alpha_t = abar_t/abar_prev and beta_t = 1 - alpha_t between
// consecutive listed timesteps; no noise at t = 0. This is DDIM with eta = 1
// written the other way round. diffusers' DDPMScheduler has no
// set_alpha_to_one (it behaves as true); false here ends on abar_0 as DDIM
// does.
type DDPM struct{ base }

// NewDDPM returns a DDPM sampler over s with options c.
func NewDDPM(s *Schedule, c Config) (*DDPM, error) {
	b, err := newBase(s, c)
	if err != nil {
		return nil, err
	}
	return &DDPM{base: b}, nil
}

func (*DDPM) Name() string { return "ddpm" }

// Update follows DDPMScheduler.step: the previous timestep is the next one
// in the list (diffusers' previous_timestep).
func (d *DDPM) Update(t int) (Update, error) {
	if err := d.check(t); err != nil {
		return Update{}, err
	}
	prev := -2
	for i, ts := range d.timesteps {
		if ts == t {
			prev = -1
			if i+1 < len(d.timesteps) {
				prev = d.timesteps[i+1]
			}
			break
		}
	}
	if prev == -2 {
		return Update{}, fmt.Errorf("diffusion: DDPM: timestep %d is not one of the %d set by SetTimesteps", t, len(d.timesteps))
	}
	at, ap := d.abar(t), d.abar(prev)
	bt, bp := 1-at, 1-ap
	alpha := at / ap
	beta := 1 - alpha
	u := Update{T: t, Prev: prev, AbarT: at, AbarPrev: ap,
		SqrtAbar: math.Sqrt(at), SqrtOneMinusAbar: math.Sqrt(bt),
		X0: math.Sqrt(ap) * beta / bt, Sample: math.Sqrt(alpha) * bp / bt}
	if t > 0 {
		u.Sigma = math.Sqrt(math.Max(bp/bt*beta, 1e-20))
	}
	return u, nil
}

func (d *DDPM) Step(prev, eps []float32, t int, x, noise []float32) error {
	return step(d, prev, eps, t, x, noise)
}

// New returns the scheduler called name ("ddim" with eta, or "ddpm").
func New(name string, s *Schedule, c Config, eta float64) (Scheduler, error) {
	switch name {
	case "ddim":
		return NewDDIM(s, c, eta)
	case "ddpm":
		if eta != 0 && eta != 1 {
			return nil, fmt.Errorf("diffusion: eta %g is a DDIM option; DDPM always adds its posterior noise (eta 1)", eta)
		}
		return NewDDPM(s, c)
	}
	return nil, fmt.Errorf("diffusion: unknown scheduler %q (want ddim or ddpm)", name)
}
