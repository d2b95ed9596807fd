package diffusion

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
	"github.com/kediff/kediff/safetensors"
)

// refCase is one scheduler configuration handed to
// tools/diffusion/schedulers.py (its JSON keys are the script's).
type refCase struct {
	Scheduler     string  `json:"scheduler"`
	Schedule      string  `json:"schedule"`
	BetaStart     float64 `json:"beta_start"`
	BetaEnd       float64 `json:"beta_end"`
	T             int     `json:"T"`
	Spacing       string  `json:"spacing"`
	Offset        int     `json:"offset"`
	SetAlphaToOne bool    `json:"set_alpha_to_one"`
	Eta           float64 `json:"eta"`
	Steps         int     `json:"steps"`
	DType         string  `json:"dtype"`
}

func (c refCase) String() string {
	return fmt.Sprintf("%s eta=%g %s T=%d %s offset=%d alpha_to_one=%v S=%d %s", c.Scheduler, c.Eta, c.Schedule, c.T, c.Spacing, c.Offset, c.SetAlphaToOne, c.Steps, c.DType)
}

func (c refCase) scheduler(t *testing.T) Scheduler {
	t.Helper()
	s, err := NewSchedule(c.Schedule, c.T, c.BetaStart, c.BetaEnd)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := New(c.Scheduler, s, Config{TimestepSpacing: c.Spacing, StepsOffset: c.Offset, SetAlphaToOne: c.SetAlphaToOne}, c.Eta)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetTimesteps(c.Steps); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	return sc
}

// refCases covers every scheduler, spacing and set_alpha_to_one value in both
// precisions, the three schedules, a steps_offset, and step counts that do
// and do not divide T.
func refCases() []refCase {
	var cs []refCase
	base := refCase{Schedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, T: 1000, Steps: 50}
	for _, sched := range []struct {
		name string
		eta  float64
	}{{"ddim", 0}, {"ddim", 0.5}, {"ddim", 1}, {"ddpm", 0}} {
		for _, sp := range []string{Leading, Trailing, Linspace} {
			for _, one := range []bool{true, false} {
				for _, dt := range []string{"float64", "float32"} {
					c := base
					c.Scheduler, c.Eta, c.Spacing, c.SetAlphaToOne, c.DType = sched.name, sched.eta, sp, one, dt
					cs = append(cs, c)
					c.Steps = 7 // does not divide T
					cs = append(cs, c)
				}
			}
		}
	}
	for _, kind := range []struct {
		name       string
		start, end float64
	}{{"linear", 0.0001, 0.02}, {"cosine", 0.0001, 0.02}} {
		for _, sched := range []string{"ddim", "ddpm"} {
			for _, dt := range []string{"float64", "float32"} {
				c := base
				c.Scheduler, c.Schedule, c.BetaStart, c.BetaEnd, c.Spacing, c.SetAlphaToOne, c.DType = sched, kind.name, kind.start, kind.end, Trailing, true, dt
				c.Eta = 0.3
				if sched == "ddpm" {
					c.Eta = 0
				}
				cs = append(cs, c)
			}
		}
	}
	for _, S := range []int{1, 2, 3, 10, 33, 99, 250, 333, 999, 1000} {
		for _, sp := range []string{Leading, Trailing, Linspace} {
			c := base
			c.Scheduler, c.Spacing, c.SetAlphaToOne, c.DType, c.Steps = "ddim", sp, true, "float64", S
			cs = append(cs, c)
		}
	}
	c := base
	c.Scheduler, c.Spacing, c.Offset, c.SetAlphaToOne, c.DType = "ddim", Leading, 1, true, "float64"
	cs = append(cs, c)
	c.Scheduler = "ddpm"
	cs = append(cs, c)
	c.T, c.Steps, c.Offset = 10, 3, 0 // linspace(0, 9, 3) = 0, 4.5, 9: round half to even
	c.Spacing = Linspace
	cs = append(cs, c)
	return cs
}

// TestSchedulersMatchDiffusers runs every step of every case through our
// schedulers and through diffusers' (tools/diffusion/schedulers.py, the
// pinned diffusers of the tools venv) on the same x_t, eps and noise, and
// compares the timestep lists exactly and each step's x_prev and x0_hat
// (norm-wise relative error below 1e-6 in float64, 1e-5 in float32).
func TestSchedulersMatchDiffusers(t *testing.T) {
	py := pyref.Venv(t, "diffusers", "safetensors")
	const n = 48 // latent values per step
	cases := refCases()
	in := map[string]safetensors.Tensor{}
	type data struct{ x, eps, noise [][]float64 }
	inputs := make([]data, len(cases))
	rng := rand.New(rand.NewPCG(1, 2))
	for k, c := range cases {
		S := len(c.scheduler(t).Timesteps())
		d := data{}
		flat := map[string][]float64{}
		for _, name := range []string{"x", "eps", "noise"} {
			rows := make([][]float64, S)
			for i := range rows {
				rows[i] = make([]float64, n)
				for j := range rows[i] {
					v := rng.NormFloat64()
					if c.DType == "float32" {
						v = float64(float32(v))
					}
					rows[i][j] = v
					flat[name] = append(flat[name], v)
				}
			}
			switch name {
			case "x":
				d.x = rows
			case "eps":
				d.eps = rows
			default:
				d.noise = rows
			}
			in[fmt.Sprintf("%d.%s", k, name)] = tensorOf(c.DType, []int{S, n}, flat[name])
		}
		inputs[k] = d
	}
	meta, _ := json.Marshal(cases)
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "out.safetensors")
	if err := safetensors.WriteFile(inPath, in, map[string]string{"cases": string(meta)}); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(pyref.Root(t), "tools", "diffusion", "schedulers.py")
	if out, err := exec.Command(py, script, inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	ref, refMeta, err := safetensors.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reference: diffusers %s, torch %s; %d cases", refMeta["diffusers"], refMeta["torch"], len(cases))
	worst := map[string]float64{}
	for k, c := range cases {
		s := c.scheduler(t)
		wantTS, _ := ref[fmt.Sprintf("%d.timesteps", k)].Ints()
		got := s.Timesteps()
		if !slices.Equal(intsOf(got), wantTS) {
			t.Errorf("%v: timesteps %v, diffusers %v", c, got, wantTS)
			continue
		}
		prevRef, _ := ref[fmt.Sprintf("%d.prev", k)].Float64s()
		x0Ref, _ := ref[fmt.Sprintf("%d.x0", k)].Float64s()
		tol := 1e-6
		if c.DType == "float32" {
			tol = 1e-5
		}
		d := inputs[k]
		for i, ts := range got {
			u, err := s.Update(ts)
			if err != nil {
				t.Fatal(err)
			}
			var ep, e0 float64
			if c.DType == "float64" {
				prev, x0 := make([]float64, n), make([]float64, n)
				Apply(u, prev, x0, d.eps[i], d.x[i], d.noise[i])
				ep, e0 = relErr(prev, prevRef[i*n:(i+1)*n]), relErr(x0, x0Ref[i*n:(i+1)*n])
			} else {
				f := func(v []float64) []float32 {
					out := make([]float32, len(v))
					for j, x := range v {
						out[j] = float32(x)
					}
					return out
				}
				prev, x0 := make([]float32, n), make([]float32, n)
				Apply(u, prev, x0, f(d.eps[i]), f(d.x[i]), f(d.noise[i]))
				ep, e0 = relErr(widen(prev), prevRef[i*n:(i+1)*n]), relErr(widen(x0), x0Ref[i*n:(i+1)*n])
				// the float32 Step must agree with Apply
				step := make([]float32, n)
				if err := s.Step(step, f(d.eps[i]), ts, f(d.x[i]), f(d.noise[i])); err != nil || !slices.Equal(step, prev) {
					t.Fatalf("%v t=%d: Step differs from Apply (%v)", c, ts, err)
				}
			}
			key := c.Scheduler + " " + c.DType
			worst[key] = max(worst[key], ep, e0)
			if !(ep <= tol && e0 <= tol) {
				t.Errorf("%v, step %d (t=%d -> %d): x_prev rel err %.3g, x0_hat %.3g (tolerance %g)", c, i, ts, u.Prev, ep, e0, tol)
			}
		}
	}
	for k, v := range worst {
		t.Logf("worst relative error, %s: %.3g", k, v)
	}
}

func tensorOf(dtype string, shape []int, v []float64) safetensors.Tensor {
	if dtype == "float32" {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return safetensors.F32(shape, f)
	}
	return safetensors.F64(shape, v)
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func intsOf(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// relErr is ||a - b|| / ||b||.
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range b {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}
