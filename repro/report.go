package repro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/kediff/kediff/eval/geneval"
	"github.com/kediff/kediff/internal/atomicfile"
)

// figures is where the report's images go, relative to the report folder.
const figures = "repro/figures"

// report writes REPRO.md and its figures.
func (r *run) report(results []VariantResult, held heldOut) error {
	figDir := filepath.Join(r.opt.Report, figures)
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	by := map[string]VariantResult{}
	for _, res := range results {
		by[res.Name] = res
		if res.Grid != "" {
			raw, err := os.ReadFile(r.path(res.Grid))
			if err != nil {
				return err
			}
			if err := atomicfile.WriteBytes(filepath.Join(figDir, "grid-"+res.Name+".png"), raw); err != nil {
				return err
			}
		}
	}
	floor := math.NaN()
	if s, ok := r.scaleAt(by["noise-floor"], r.cfg.ReportScale); ok {
		floor = s.Overall.Value
	}
	if err := r.paretoPlot(filepath.Join(figDir, "pareto-knowledge.png"), "Knowledge ablation: alignment vs fidelity over guidance scales", pick(results, "knowledge"), floor); err != nil {
		return err
	}
	if err := r.paretoPlot(filepath.Join(figDir, "pareto-experts.png"), "Mixture of denoising experts: alignment vs fidelity over guidance scales", pick(results, "experts"), floor); err != nil {
		return err
	}
	var b bytes.Buffer
	r.writeReport(&b, results, by, held)
	return atomicfile.WriteBytes(filepath.Join(r.opt.Report, "REPRO.md"), b.Bytes())
}

func pick(results []VariantResult, group string) []VariantResult {
	var out []VariantResult
	for _, r := range results {
		if r.Group == group {
			out = append(out, r)
		}
	}
	return out
}

// paretoPlot draws one curve per variant through its guidance scales:
// alignment (GenEval overall) across, Fréchet distance up, each point with
// its 95% intervals, like the paper's Fig. 5 (CLIP score vs FID), and a
// dashed line at the noise floor's alignment (NaN: none).
func (r *run) paretoPlot(path, title string, results []VariantResult, floor float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "alignment: GenEval-style overall score (fraction of checks passed; higher is better)"
	p.Y.Label.Text = "fidelity: Fréchet distance to held-out renders (detector features; lower is better)"
	p.Add(plotter.NewGrid())
	for i, res := range results {
		pts := make(plotter.XYs, len(res.Scales))
		xe := make(plotter.XErrors, len(res.Scales))
		ye := make(plotter.YErrors, len(res.Scales))
		labels := make([]string, len(res.Scales))
		for j, s := range res.Scales {
			pts[j] = plotter.XY{X: s.Overall.Value, Y: s.FD.Value}
			xe[j] = struct{ Low, High float64 }{Low: nan0(s.Overall.Value - s.Overall.Lo), High: nan0(s.Overall.Hi - s.Overall.Value)}
			ye[j] = struct{ Low, High float64 }{Low: nan0(s.FD.Value - s.FD.Lo), High: nan0(s.FD.Hi - s.FD.Value)}
			labels[j] = "s=" + fmtW(s.Guidance)
		}
		c := palette[i%len(palette)]
		line, points, err := plotterLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = c, c
		points.Shape = shapes[i%len(shapes)]
		bars := &struct {
			plotter.XYs
			plotter.XErrors
			plotter.YErrors
		}{pts, xe, ye}
		xb, err := plotter.NewXErrorBars(bars)
		if err != nil {
			return err
		}
		yb, err := plotter.NewYErrorBars(bars)
		if err != nil {
			return err
		}
		xb.Color, yb.Color = faded(c), faded(c)
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
		if err != nil {
			return err
		}
		for k := range lab.TextStyle {
			lab.TextStyle[k].Color = c
			lab.TextStyle[k].Font.Size = vg.Points(7)
		}
		p.Add(xb, yb, line, points, lab)
		p.Legend.Add(res.Name, line, points)
	}
	if !math.IsNaN(floor) {
		top := 0.0
		for _, res := range results {
			for _, s := range res.Scales {
				top = math.Max(top, nan0(s.FD.Hi))
			}
		}
		l, err := plotter.NewLine(plotter.XYs{{X: floor, Y: 0}, {X: floor, Y: top}})
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("noise floor (random latents)", l)
	}
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 6*vg.Inch, path)
}

func nan0(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return v
}

func plotterLinePoints(pts plotter.XYs) (*plotter.Line, *plotter.Scatter, error) {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, nil, err
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, nil, err
	}
	l.Width = vg.Points(1.5)
	s.Radius = vg.Points(3)
	return l, s, nil
}

var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

// faded is c at partial opacity (non-premultiplied, as color.RGBA is not).
func faded(c color.RGBA) color.NRGBA { return color.NRGBA{c.R, c.G, c.B, 90} }

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{}, draw.PyramidGlyph{}, draw.PlusGlyph{}, draw.SquareGlyph{}}

// writeReport writes REPRO.md's text.
func (r *run) writeReport(b *bytes.Buffer, results []VariantResult, by map[string]VariantResult, held heldOut) {
	c := r.cfg
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	cfgJSON, _ := json.MarshalIndent(c, "", "  ")
	quick := ""
	if r.opt.Quick {
		quick = " This is the QUICK smoke run: its numbers are noise and mean nothing."
	}
	w("# Toy-scale reproduction of ERNIE-ViLG 2.0's ablations\n\n")
	w("Generated by `%s` on %s (%s, %d cores) from the run in `%s` (its log, with every stage's time, is below). Every number below comes from that run.%s\n\n",
		r.opt.Command, time.Now().UTC().Format("2006-01-02"), runtime.GOARCH, runtime.NumCPU(), r.opt.Dir, quick)
	w("ERNIE-ViLG 2.0 (DESIGN.md 1.6, the paper's Fig. 5) claims that (1) textual and visual knowledge together improve image-text alignment and fidelity more than either alone, and (2) more denoising experts improve quality at equal inference cost. This report checks both on kediff's synthetic domain (coloured shapes with Chinese and English captions) at a scale one small machine can train.\n\n")

	w("## What ran\n\n")
	w("- **Data**: %d synth training scenes (%dx%d, photo-like backgrounds, 1/2/3-object scenes weighted %v: heavy in two-object attribute binding; captions 2/3 Chinese, 1/3 English; seed %d).\n",
		c.TrainSamples, c.ImageSize, c.ImageSize, c.ObjectMix, c.TrainSeed)
	w("- **Held out** (seed %d, never trained on, nothing chosen on them): %d prompts (alternately Chinese and English) and %d renders of held-out scenes as the fidelity reference.\n", c.HeldOutSeed, c.HeldOut, c.References)
	w("- **Knowledge** (preprocessing with `%s`, fixture models): the paper's fraction %.0f%% for each source; `w_a` = %g, `w_l` = %g (the paper's 0.01 and 0.1).\n", c.Preprocess, 100*c.Fraction, c.WA, c.WL)
	for _, k := range knowledgeSets {
		w("  - `%s`: %s\n", k.Name, k.Doc)
	}
	w("- **Models**: `%s` (the tiny U-Net), %d steps per base model at equal batch; experts n = %v fine-tuned from the `all` base with %d steps in total per n (%s steps each), so every n sees the same number of samples and runs one expert per denoising step (equal inference cost).\n",
		c.Train, c.Steps, c.Experts, c.ExpertSteps, expertSplit(c))
	w("- **Sampling**: DDIM, %d steps, guidance scales %v, %d seed(s) per prompt and scale.\n", c.SampleSteps, c.Guidance, c.Seeds)
	w("- **Alignment**: the GenEval-style checker (`eval/geneval`: the fixture detector finds the shapes, box-centre pixels give the colour, the prompt's parse gives what should be there); overall = mean of the category pass rates. The checker scores >= 0.975 per category on real renders and 0 on deliberately wrong ones (its tests).\n")
	w("- **Fidelity**: Fréchet distance (`eval/fid`, pytorch-fid's formula) between features of the generated images and of the held-out renders, from `%s` (the fixture detector's backbone, pooled; an independent network, not the generator's autoencoder). Lower is better; the scale is not comparable to Inception FID.\n", c.Features)
	w("- **95%% confidence intervals**: %d bootstrap resamples over prompts (each prompt's images of every seed together; the Fréchet distance on the first 200), so they cover seed and prompt variation.\n\n", c.Bootstrap)

	task := "go tool task repro-toy"
	if r.opt.Quick {
		task += " QUICK=1"
	}
	w("Commands (the task builds kediff and installs what is missing first; a rerun resumes from the run folder and rewrites this report):\n\n```sh\n%s\n# or, with kediff built:\n%s\n```\n\nConfig:\n\n```json\n%s\n```\n\n", task, r.opt.Command, cfgJSON)
	if log, err := os.ReadFile(r.path("log.txt")); err == nil {
		w("<details><summary>The run's log (every stage, with its time; a resumed run appends)</summary>\n\n```\n%s```\n\n</details>\n\n", log)
	}

	w("## Knowledge ablation (guidance %g)\n\n", c.ReportScale)
	r.categoryTable(b, append(pick(results, "floor"), pick(results, "knowledge")...))
	w("\n`noise-floor` is random latents through the decoder, what an untrained generator draws: the fixture detector fires on such colourful noise, so alignment scores near this row mean nothing.\n")
	w("\n![knowledge pareto](%s/pareto-knowledge.png)\n\n", figures)
	w("Every guidance scale:\n\n")
	r.scaleTable(b, append(pick(results, "floor"), pick(results, "knowledge")...))

	w("\n## Mixture of denoising experts (guidance %g)\n\n", c.ReportScale)
	r.categoryTable(b, pick(results, "experts"))
	w("\n![experts pareto](%s/pareto-experts.png)\n\nEvery guidance scale:\n\n", figures)
	r.scaleTable(b, pick(results, "experts"))

	w("\n## Sweep of w_a and w_l (full knowledge, guidance %g)\n\n", c.ReportScale)
	w("The paper's grid %v; `all` is the paper's w_a = %g, w_l = %g (fraction %.0f%% for every source).\n\n", c.Sweep, c.WA, c.WL, 100*c.Fraction)
	sweep := []VariantResult{by["all"]}
	sweep = append(sweep, pick(results, "w_a")...)
	sweep = append(sweep, pick(results, "w_l")...)
	r.categoryTable(b, sweep)

	w("\n## Sample grids (guidance %g, seed 0, the first %d held-out prompts)\n\n", c.GridGuidance, c.GridPrompts)
	for i := range min(c.GridPrompts, len(held.Prompts)) {
		w("%d. %s\n", i+1, held.Prompts[i])
	}
	w("\n")
	for _, res := range results {
		if res.Grid != "" {
			w("`%s`\n\n![%s](%s/grid-%s.png)\n\n", res.Name, res.Name, figures, res.Name)
		}
	}

	w("## Did the paper's directions hold here?\n\n")
	for _, p := range r.summary(by) {
		w("%s\n\n", p)
	}
	for _, line := range r.verdicts(by) {
		w("- %s\n", line)
	}
	w("\nA direction *holds* when the point estimates go the paper's way and the 95%% intervals do not overlap; *points the paper's way* when only the point estimates do; *does not hold* otherwise. Tiny models trained for minutes on one machine are far from the paper's regime: a direction that does not show here is not refuted at scale, and one that does is a small-scale observation.\n")
}

func expertSplit(c Config) string {
	var parts []string
	for _, n := range c.Experts {
		parts = append(parts, fmt.Sprintf("%d", c.ExpertSteps/n))
	}
	return strings.Join(parts, "/")
}

func (r *run) scaleAt(res VariantResult, g float64) (ScaleResult, bool) {
	for _, s := range res.Scales {
		if s.Guidance == g {
			return s, true
		}
	}
	return ScaleResult{}, false
}

func fmtIv(iv Interval, digits int) string {
	if math.IsNaN(iv.Value) {
		return "–"
	}
	if math.IsNaN(iv.Lo) {
		return fmt.Sprintf("%.*f", digits, iv.Value)
	}
	return fmt.Sprintf("%.*f [%.*f, %.*f]", digits, iv.Value, digits, iv.Lo, digits, iv.Hi)
}

// knobs gives a variant's knowledge hyper-parameters for the tables: w_a
// (only with textual knowledge), w_l (only with object knowledge) and the
// fraction of samples each source is applied to.
func (r *run) knobs(name string) string {
	for _, v := range r.variants() {
		if v.Name != name || v.Group == "floor" {
			continue
		}
		wa, wl, frac := "–", "–", "–"
		if v.Data.Text {
			wa = fmtW(v.WA)
		}
		if v.Data.Object {
			wl = fmtW(v.WL)
		}
		if v.Data.Text || v.Data.Object || v.Data.Captions {
			frac = fmt.Sprintf("%.0f%%", 100*r.cfg.Fraction)
		}
		return wa + " | " + wl + " | " + frac
	}
	return "– | – | –"
}

func (r *run) categoryTable(b *bytes.Buffer, results []VariantResult) {
	fmt.Fprintf(b, "| variant | w_a | w_l | fraction | overall | ")
	for _, c := range geneval.Categories {
		fmt.Fprintf(b, "%s | ", c)
	}
	fmt.Fprintf(b, "Fréchet distance |\n|---|---|---|---|---|")
	for range geneval.Categories {
		fmt.Fprintf(b, "---|")
	}
	fmt.Fprintf(b, "---|\n")
	for _, res := range results {
		s, ok := r.scaleAt(res, r.cfg.ReportScale)
		if !ok {
			continue
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | ", res.Name, r.knobs(res.Name), fmtIv(s.Overall, 3))
		for _, c := range geneval.Categories {
			iv, ok := s.Categories[c]
			if !ok {
				iv = Interval{math.NaN(), math.NaN(), math.NaN()}
			}
			fmt.Fprintf(b, "%s | ", fmtIv(iv, 2))
		}
		fmt.Fprintf(b, "%s |\n", fmtIv(s.FD, 2))
	}
}

func (r *run) scaleTable(b *bytes.Buffer, results []VariantResult) {
	fmt.Fprintf(b, "| variant |")
	for _, g := range r.cfg.Guidance {
		fmt.Fprintf(b, " s = %g: overall / FD |", g)
	}
	fmt.Fprintf(b, "\n|---|")
	for range r.cfg.Guidance {
		fmt.Fprintf(b, "---|")
	}
	fmt.Fprintf(b, "\n")
	for _, res := range results {
		fmt.Fprintf(b, "| `%s` |", res.Name)
		for _, g := range r.cfg.Guidance {
			s, _ := r.scaleAt(res, g)
			fmt.Fprintf(b, " %.3f / %.2f |", s.Overall.Value, s.FD.Value)
		}
		fmt.Fprintf(b, "\n")
	}
}
