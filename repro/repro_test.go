package repro

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestIntervalPercentiles(t *testing.T) {
	boot := make([]float64, 0, 1001)
	for i := 1000; i >= 0; i-- { // 0.000 .. 1.000, unsorted
		boot = append(boot, float64(i)/1000)
	}
	boot = append(boot, math.NaN(), math.NaN())
	iv := interval(0.5, boot)
	if iv.Value != 0.5 || math.Abs(iv.Lo-0.025) > 1e-9 || math.Abs(iv.Hi-0.975) > 1e-9 {
		t.Fatalf("interval %+v, want 0.5 [0.025, 0.975]", iv)
	}
	if iv := interval(0.3, []float64{math.NaN()}); iv.Value != 0.3 || !math.IsNaN(iv.Lo) || !math.IsNaN(iv.Hi) {
		t.Fatalf("all-NaN bootstrap: %+v", iv)
	}
}

func TestIntervalJSONKeepsNaN(t *testing.T) {
	in := []Interval{{0.5, 0.4, 0.6}, {math.NaN(), math.NaN(), math.NaN()}, {1, math.NaN(), math.NaN()}}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "null") {
		t.Fatalf("NaN not written as null: %s", raw)
	}
	var out []Interval
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		for j, pair := range [][2]float64{{in[i].Value, out[i].Value}, {in[i].Lo, out[i].Lo}, {in[i].Hi, out[i].Hi}} {
			if !(pair[0] == pair[1] || math.IsNaN(pair[0]) && math.IsNaN(pair[1])) {
				t.Errorf("interval %d field %d: %v -> %v", i, j, pair[0], pair[1])
			}
		}
	}
}

func TestJudge(t *testing.T) {
	cases := []struct {
		name         string
		a, b         Interval
		higherBetter bool
		want         string
	}{
		{"separate_higher", Interval{0.8, 0.75, 0.85}, Interval{0.5, 0.45, 0.55}, true, "holds"},
		{"overlap_higher", Interval{0.6, 0.5, 0.7}, Interval{0.55, 0.45, 0.65}, true, "points the paper's way (intervals overlap)"},
		{"worse", Interval{0.4, 0.3, 0.5}, Interval{0.6, 0.55, 0.65}, true, "does not hold"},
		{"separate_lower_fd", Interval{10, 9, 11}, Interval{20, 18, 22}, false, "holds"},
		{"higher_fd_is_worse", Interval{20, 18, 22}, Interval{10, 9, 11}, false, "does not hold"},
		{"equal", Interval{0.5, 0.4, 0.6}, Interval{0.5, 0.4, 0.6}, true, "does not hold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := judge(c.a, c.b, c.higherBetter); got != c.want {
				t.Fatalf("judge = %q, want %q", got, c.want)
			}
		})
	}
}

func TestVariantsOfTheFullRun(t *testing.T) {
	r := &run{cfg: FullConfig()}
	var names []string
	for _, v := range r.variants() {
		names = append(names, v.Name)
		if v.Group == "experts" && (v.BaseOf != "all" || v.Data.Name != "all") {
			t.Errorf("%s: experts come from the all base on the all data, got base %q data %q", v.Name, v.BaseOf, v.Data.Name)
		}
	}
	want := []string{"noise-floor", "baseline", "textual", "object", "visual", "all",
		"all-wa-0.1", "all-wa-0.5", "all-wa-1", "all-wl-0.01", "all-wl-0.5", "all-wl-1",
		"experts-1", "experts-2", "experts-4", "experts-10"}
	if !slices.Equal(names, want) {
		t.Fatalf("variants %v\nwant %v", names, want)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"report_scale_not_sampled", func(c *Config) { c.ReportScale = 4 }, "must be among the guidance scales"},
		{"too_many_experts", func(c *Config) { c.ExpertSteps = 5 }, "cannot share 5 expert steps"},
		{"no_held_out", func(c *Config) { c.HeldOut = 1 }, "want at least"},
		{"no_seeds", func(c *Config) { c.Seeds = 0 }, "seeds >= 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := FullConfig()
			c.edit(&cfg)
			if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("validate = %v, want an error with %q", err, c.want)
			}
		})
	}
	if err := FullConfig().validate(); err != nil {
		t.Fatalf("full config: %v", err)
	}
	if err := QuickConfig().validate(); err != nil {
		t.Fatalf("quick config: %v", err)
	}
}
