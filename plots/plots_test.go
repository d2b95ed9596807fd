package plots

import (
	"bytes"
	"html"
	"image"
	"image/png"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

// drawer is what every chart kind offers.
type drawer interface {
	PNG(w, h int) ([]byte, error)
	SVG(w, h int) ([]byte, error)
}

func ramp(n int, f func(i int) float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

func TestDraw(t *testing.T) {
	steps := ramp(200, func(i int) float64 { return float64(i + 1) })
	loss := ramp(200, func(i int) float64 { return 1/(1+0.05*float64(i)) + 0.05*math.Sin(float64(i)) })
	nan := math.NaN()
	tests := []struct {
		name        string
		d           drawer
		title, x, y string
		empty       bool
		wantErr     string
	}{
		{name: "chart/smoothed", d: Chart{Title: "training loss", XLabel: "step", YLabel: "loss",
			Lines: []Line{{X: steps, Y: loss}}, Smooth: 0.9}, title: "training loss", x: "step", y: "loss"},
		{name: "chart/raw_only", d: Chart{Title: "lr", XLabel: "step", YLabel: "learning rate",
			Lines: []Line{{X: steps, Y: ramp(200, func(i int) float64 { return 1e-4 * math.Min(1, float64(i)/50) })}}},
			title: "lr", x: "step", y: "learning rate"},
		{name: "chart/named_lines_log_y", d: Chart{Title: "loss <per expert>", XLabel: "step", YLabel: "loss (log)", LogY: true, Smooth: 0.6,
			Lines: []Line{{Name: "base", X: steps, Y: loss}, {Name: "expert-1", Y: ramp(50, func(i int) float64 { return 2 - float64(i)/50 })}}},
			title: "loss <per expert>", x: "step", y: "loss (log)"},
		{name: "chart/nan_and_inf_skipped", d: Chart{Title: "grad norm", XLabel: "step", YLabel: "‖g‖",
			Lines: []Line{{X: []float64{1, 2, 3, 4, nan}, Y: []float64{1, nan, math.Inf(1), 2, 3}}}, Smooth: 0.9},
			title: "grad norm", x: "step", y: "‖g‖"},
		{name: "chart/one_point", d: Chart{Title: "one", XLabel: "step", YLabel: "loss", Lines: []Line{{X: []float64{7}, Y: []float64{0.5}}}, Smooth: 0.9},
			title: "one", x: "step", y: "loss"},
		{name: "chart/empty", d: Chart{Title: "loss", XLabel: "step", YLabel: "loss", Smooth: 0.9}, title: "loss", x: "step", y: "loss", empty: true},
		{name: "chart/all_nan", d: Chart{Title: "loss", XLabel: "step", YLabel: "loss", Lines: []Line{{Y: []float64{nan, nan}}}},
			title: "loss", x: "step", y: "loss", empty: true},
		{name: "chart/log_y_no_positive", d: Chart{Title: "loss", XLabel: "step", YLabel: "loss", LogY: true, Lines: []Line{{Y: []float64{0, -1}}}},
			title: "loss", x: "step", y: "loss", empty: true},
		{name: "chart/length_mismatch", d: Chart{Title: "loss", Lines: []Line{{Name: "base", X: []float64{1}, Y: []float64{1, 2}}}},
			wantErr: `line "base" has 1 x values and 2 y values`},
		{name: "chart/bad_smoothing", d: Chart{Title: "loss", Smooth: 1}, wantErr: "outside [0, 1)"},
		{name: "histogram", d: Histogram{Title: "caption length", XLabel: "caption length (tokens)", Values: loss},
			title: "caption length", x: "caption length (tokens)", y: "samples"},
		{name: "histogram/one_value_repeated", d: Histogram{Title: "objects per image", XLabel: "objects", YLabel: "images", Values: []float64{3, 3, 3}, Bins: 4},
			title: "objects per image", x: "objects", y: "images"},
		{name: "histogram/empty", d: Histogram{Title: "keyword ratio", XLabel: "ratio"}, title: "keyword ratio", x: "ratio", y: "samples", empty: true},
		{name: "histogram/nan_only", d: Histogram{Title: "coverage", XLabel: "fraction", Values: []float64{nan}}, title: "coverage", x: "fraction", y: "samples", empty: true},
		{name: "bars", d: Bars{Title: "rejects by reason", XLabel: "reason", YLabel: "samples",
			Labels: []string{"too_small", "decode_error", "no_caption", "aspect_ratio", "duplicate"}, Values: []float64{12, 3, 40, 7, 1}},
			title: "rejects by reason", x: "reason", y: "samples"},
		{name: "bars/empty", d: Bars{Title: "rejects by reason", XLabel: "reason", YLabel: "samples"},
			title: "rejects by reason", x: "reason", y: "samples", empty: true},
		{name: "bars/mismatch", d: Bars{Title: "r", Labels: []string{"a"}}, wantErr: "1 labels and 0 values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const w, h = 480, 270
			b, err := tc.d.PNG(w, h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("PNG: err %v, want one saying %q", err, tc.wantErr)
				}
				if _, err := tc.d.SVG(w, h); err == nil {
					t.Fatal("SVG: no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Bounds().Size(); got != image.Pt(w, h) {
				t.Fatalf("PNG is %v, want %dx%d", got, w, h)
			}
			if dark := inked(img); dark < w*h/200 {
				t.Fatalf("PNG has %d inked pixels of %d: blank", dark, w*h)
			}
			svg, err := tc.d.SVG(w, h)
			if err != nil {
				t.Fatal(err)
			}
			s := string(svg)
			if !strings.HasPrefix(s, "<?xml") || !strings.Contains(s, "<svg") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") {
				t.Fatalf("SVG is not an SVG document: %.200s", s)
			}
			for what, want := range map[string]string{"title": tc.title, "x label": tc.x, "y label": tc.y} {
				if !strings.Contains(s, ">"+html.EscapeString(want)+"</text>") {
					t.Errorf("SVG lacks the %s %q", what, want)
				}
			}
			if got := strings.Contains(s, ">"+NoData+"</text>"); got != tc.empty {
				t.Errorf("SVG says %q: %v, want %v", NoData, got, tc.empty)
			}
			if !strings.Contains(s, `width="360pt" height="202.5pt"`) {
				t.Errorf("SVG is not %dx%d px (%dx%d pt): %.300s", w, h, w*3/4, h*3/4, s)
			}
		})
	}
}

// inked counts the pixels that are not near white.
func inked(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xc000 || g < 0xc000 || bl < 0xc000 {
				n++
			}
		}
	}
	return n
}

func TestDrawTooSmall(t *testing.T) {
	if _, err := (Chart{Title: "x"}).PNG(10, 10); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("err %v, want too small", err)
	}
}

func TestSmoothEMA(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		y    []float64
		w    float64
		want []float64
	}{
		{"weight_0_is_raw", []float64{3, 1, 2}, 0, []float64{3, 1, 2}},
		{"empty", nil, 0.9, []float64{}},
		// last: 0.5, 1.25, 2.125; debias: 1-0.5, 1-0.25, 1-0.125.
		{"weight_half", []float64{1, 2, 3}, 0.5, []float64{1, 1.25 / 0.75, 2.125 / 0.875}},
		// last: 0.4*1 = 0.4, 0.6*0.4+0.4*5 = 2.24; debias: 1-0.6, 1-0.36.
		{"weight_0.6", []float64{1, 5}, 0.6, []float64{1, 2.24 / 0.64}},
		{"constant_stays", []float64{2, 2, 2, 2}, 0.9, []float64{2, 2, 2, 2}},
		// the NaN is kept and neither enters the average nor counts.
		{"nan_kept_and_skipped", []float64{1, nan, 2}, 0.5, []float64{1, nan, 1.25 / 0.75}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SmoothEMA(tc.y, tc.w)
			if len(got) != len(tc.want) {
				t.Fatalf("len %d, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if math.IsNaN(tc.want[i]) != math.IsNaN(got[i]) || (!math.IsNaN(got[i]) && math.Abs(got[i]-tc.want[i]) > 1e-12) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestChartSmoothedCurve checks that the solid line a chart draws over the
// raw one is the debiased EMA of the finite points, at their x.
func TestChartSmoothedCurve(t *testing.T) {
	nan := math.NaN()
	c := Chart{Title: "loss", XLabel: "step", YLabel: "loss", Smooth: 0.5,
		Lines: []Line{{Name: "base", X: []float64{10, 20, 30, 40}, Y: []float64{1, nan, 2, 3}}}}
	cv, err := c.curves()
	if err != nil {
		t.Fatal(err)
	}
	if len(cv) != 1 {
		t.Fatalf("%d curves, want 1", len(cv))
	}
	raw, sm := cv[0].raw, cv[0].smooth
	want := plotter.XYs{{X: 10, Y: 1}, {X: 30, Y: 1.25 / 0.75}, {X: 40, Y: (0.5*1.25 + 0.5*3) / 0.875}}
	if len(raw) != 3 || raw[1] != (plotter.XY{X: 30, Y: 2}) {
		t.Errorf("raw line %v, want the three finite points", raw)
	}
	if len(sm) != len(want) {
		t.Fatalf("smoothed line %v, want %v", sm, want)
	}
	for i := range want {
		if sm[i].X != want[i].X || math.Abs(sm[i].Y-want[i].Y) > 1e-12 {
			t.Fatalf("smoothed line %v, want %v", sm, want)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0, 300, []string{"0", "50", "100", "150", "200", "250", "300"}},
		{0.05, 1.08, []string{"0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 1e-4, []string{"0", "2.0e-05", "4.0e-05", "6.0e-05", "8.0e-05", "1.0e-04"}},
		{0, 3e-4, []string{"0", "5.0e-05", "1.0e-04", "1.5e-04", "2.0e-04", "2.5e-04", "3.0e-04"}},
		{0, 2e6, []string{"0", "500000", "1000000", "1500000", "2000000"}},
		{5, 5, []string{"5"}},
	}
	for _, tc := range tests {
		var got []string
		for _, tk := range (niceTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ticks on [%g, %g]: %q, want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}

// TestThinLongLines: a line longer than MaxPoints is drawn with at most
// MaxPoints points, keeping its extremes and its last smoothed value.
func TestThinLongLines(t *testing.T) {
	n := 10*MaxPoints + 7
	y := ramp(n, func(i int) float64 { return math.Sin(float64(i)) })
	y[12345] = 50 // a spike
	c := Chart{Title: "loss", Smooth: 0.9, Lines: []Line{{Y: y}}}
	cv, err := c.curves()
	if err != nil {
		t.Fatal(err)
	}
	raw, sm := cv[0].raw, cv[0].smooth
	if len(raw) > MaxPoints || len(sm) > MaxPoints/2 {
		t.Fatalf("%d raw and %d smoothed points, want at most %d", len(raw), len(sm), MaxPoints)
	}
	spike := false
	for _, p := range raw {
		spike = spike || p.Y == 50
	}
	if !spike {
		t.Error("the spike was thinned away")
	}
	full := SmoothEMA(y, 0.9)
	if last := sm[len(sm)-1]; last.X != float64(n-1) || last.Y != full[n-1] {
		t.Errorf("last smoothed point %v, want (%d, %g)", last, n-1, full[n-1])
	}
	if _, err := c.PNG(320, 200); err != nil {
		t.Fatal(err)
	}
}
