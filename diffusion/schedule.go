package diffusion

import (
	"fmt"
	"math"
)

// ScheduleConfig names a noise schedule. Its JSON fields are the trainer's
// (train_config.json), so a checkpoint records the schedule its sampler must
// use.
type ScheduleConfig struct {
	Schedule  string  `json:"schedule"` // scaled_linear, linear or cosine
	BetaStart float64 `json:"beta_start"`
	BetaEnd   float64 `json:"beta_end"`
	Timesteps int     `json:"timesteps"` // T
}

// DefaultScheduleConfig is DESIGN.md 1.1's schedule: scaled_linear from
// 0.00085 to 0.012 over T = 1000 steps (Stable Diffusion's).
func DefaultScheduleConfig() ScheduleConfig {
	return ScheduleConfig{Schedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, Timesteps: 1000}
}

// New builds the schedule c names.
func (c ScheduleConfig) New() (*Schedule, error) {
	return NewSchedule(c.Schedule, c.Timesteps, c.BetaStart, c.BetaEnd)
}

// Schedule is the DDPM forward process of DESIGN.md 1.1: betas, alphas and
// their cumulative products, in float64.
type Schedule struct {
	Betas          []float64
	AlphasCumprod  []float64 // abar_t = prod_{s<=t} (1 - beta_s)
	SqrtAbar       []float64
	SqrtOneMinAbar []float64
}

// NewSchedule builds a schedule of T steps:
//   - "scaled_linear" (Stable Diffusion's): beta_t = linspace(sqrt(start), sqrt(end), T)^2;
//   - "linear": beta_t = linspace(start, end, T);
//   - "cosine" (or diffusers' name "squaredcos_cap_v2"), Nichol & Dhariwal's:
//     abar(t) = cos^2((t/T + 0.008)/1.008 * pi/2), beta_t = min(1 - abar(t+1)/abar(t), 0.999);
//     start and end are not used.
func NewSchedule(kind string, T int, start, end float64) (*Schedule, error) {
	if T < 2 {
		return nil, fmt.Errorf("diffusion: %d timesteps, want at least 2", T)
	}
	betas := make([]float64, T)
	switch kind {
	case "scaled_linear", "linear":
		if !(start > 0 && end > start && end < 1) {
			return nil, fmt.Errorf("diffusion: %s schedule: beta_start %g and beta_end %g must satisfy 0 < start < end < 1", kind, start, end)
		}
		for i := range betas {
			f := float64(i) / float64(T-1)
			if kind == "linear" {
				betas[i] = start + f*(end-start)
				continue
			}
			b := math.Sqrt(start) + f*(math.Sqrt(end)-math.Sqrt(start))
			betas[i] = b * b
		}
	case "cosine", "squaredcos_cap_v2":
		f := func(t float64) float64 { c := math.Cos((t/float64(T) + 0.008) / 1.008 * math.Pi / 2); return c * c }
		for i := range betas {
			betas[i] = math.Min(1-f(float64(i+1))/f(float64(i)), 0.999)
		}
	default:
		return nil, fmt.Errorf("diffusion: unknown beta schedule %q (want scaled_linear, linear or cosine)", kind)
	}
	s := &Schedule{Betas: betas, AlphasCumprod: make([]float64, T), SqrtAbar: make([]float64, T), SqrtOneMinAbar: make([]float64, T)}
	prod := 1.0
	for i, b := range betas {
		prod *= 1 - b
		s.AlphasCumprod[i] = prod
		s.SqrtAbar[i] = math.Sqrt(prod)
		s.SqrtOneMinAbar[i] = math.Sqrt(1 - prod)
	}
	return s, nil
}

// Default is the schedule of DefaultScheduleConfig.
func Default() *Schedule {
	s, err := DefaultScheduleConfig().New()
	if err != nil {
		panic(err)
	}
	return s
}

// Steps is T.
func (s *Schedule) Steps() int { return len(s.Betas) }

// QSample writes z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) noise into out for
// each sample b at timestep t[b]; z0, noise and out are (B, n) with n =
// len(z0)/B. The coefficients are rounded to float32 first, as a float32
// PyTorch computation of the same formula would.
func (s *Schedule) QSample(out, z0, noise []float32, t []int) {
	n := len(z0) / len(t)
	for b, ti := range t {
		a, c := float32(s.SqrtAbar[ti]), float32(s.SqrtOneMinAbar[ti])
		for i := b * n; i < (b+1)*n; i++ {
			out[i] = a*z0[i] + c*noise[i]
		}
	}
}

// Block is the timestep range [lo, hi) = [i*T/n, (i+1)*T/n) of expert i of
// n over T steps (DESIGN.md 1.5): the blocks tile [0, T).
func Block(i, n, T int) (lo, hi int) { return i * T / n, (i + 1) * T / n }
