package diffusion

import (
	"fmt"
	"math"
)

// Timestep spacings (diffusers' timestep_spacing; Lin et al. 2023, Table 2).
const (
	Leading  = "leading"  // t_i = (S-1-i) * (T/S) + steps_offset, integer division
	Trailing = "trailing" // t_i = round(T - i*T/S) - 1: starts at T-1
	Linspace = "linspace" // t_i = round(linspace(0, T-1, S))[S-1-i]: both ends
)

// Config holds the options diffusers' DDIMScheduler and DDPMScheduler take,
// with their names and meanings.
type Config struct {
	TimestepSpacing string `json:"timestep_spacing"` // Leading (default), Trailing or Linspace
	StepsOffset     int    `json:"steps_offset"`     // added to every leading timestep
	// SetAlphaToOne makes the step after the last timestep land on abar = 1
	// (a clean x_0); false uses abar_0, the first training timestep's.
	SetAlphaToOne bool `json:"set_alpha_to_one"`
}

// DefaultConfig is diffusers' default: leading spacing, no offset,
// set_alpha_to_one.
func DefaultConfig() Config {
	return Config{TimestepSpacing: Leading, SetAlphaToOne: true}
}

// Timesteps returns the descending inference timesteps of S steps over T
// training timesteps exactly as diffusers' set_timesteps computes them
// (NumPy's round-half-to-even included). Leading timesteps with a
// steps_offset may reach T or more, which the schedulers then reject, as the
// model was never trained there.
func Timesteps(spacing string, S, T, offset int) ([]int, error) {
	if S < 1 || S > T {
		return nil, fmt.Errorf("diffusion: %d inference steps, want 1 to %d (the training timesteps)", S, T)
	}
	ts := make([]int, S)
	switch spacing {
	case Leading, "":
		ratio := T / S
		for i := range ts {
			ts[i] = (S-1-i)*ratio + offset
		}
	case Trailing:
		// np.round(np.arange(T, 0, -T/S)) - 1. NumPy's arange fills
		// start + i*delta with delta = (start + step) - start, and its
		// length is ceil(-T / -step).
		step := -float64(T) / float64(S)
		n := int(math.Ceil(-float64(T) / step))
		delta := (float64(T) + step) - float64(T)
		ts = ts[:0]
		for i := range n {
			ts = append(ts, int(math.RoundToEven(float64(T)+float64(i)*delta))-1)
		}
	case Linspace:
		// np.linspace(0, T-1, S).round()[::-1]: i*step, the last point exact.
		if S == 1 {
			ts[0] = 0
			break
		}
		step := float64(T-1) / float64(S-1)
		for i := range S {
			v := float64(i) * step
			if i == S-1 {
				v = float64(T - 1)
			}
			ts[S-1-i] = int(math.RoundToEven(v))
		}
	default:
		return nil, fmt.Errorf("diffusion: unknown timestep_spacing %q (want leading, trailing or linspace)", spacing)
	}
	for _, t := range ts {
		if t < 0 || t >= T {
			return nil, fmt.Errorf("diffusion: %s spacing with steps_offset %d gives timestep %d, outside the %d training timesteps", spacing, offset, t, T)
		}
	}
	return ts, nil
}
