// Package dashboard writes training dashboards: one self-contained HTML
// page (charts as inline SVG, sample grids as data: URIs, no script, no
// network) that opens from disk.
//
// A page shows one or more runs (checkpoint folders of kediff train): for
// each metric of metrics.jsonl (loss, gradient norm, learning rate,
// throughput and, for data-parallel runs, the time waiting on other ranks)
// one chart with a line per run, the raw values faint and TensorBoard's
// smoothed curve over them (plots.SmoothEMA); then the sample grids drawn
// while training (OUT/samples/step-NNNNNN.png): a run's grids over time,
// labelled with their step, for a page of one run, and each run's latest
// grid for a page of several. Package train writes the page of its run as
// dashboard.html in the checkpoint folder at every checkpoint; "kediff
// dashboard" puts a base and its experts on one page:
//
//	runs, err := dashboard.FindRuns([]string{"out/train"})
//	err = dashboard.WriteFile("dashboard.html", runs, dashboard.Options{})
//
// Writing a page reads only the metrics given and the grids (through a
// Thumbs cache, each grid once per process), so a trainer can afford it at
// every checkpoint.
//
// # TensorBoard
//
// kediff writes no TensorBoard event files (events.out.tfevents.*). The
// format is TFRecord-framed Event protocol buffers, and no maintained Go
// writer of it was found (December 2026): github.com/helinwang/tfsum (last
// change April 2017) and github.com/c3sr/tensorflow/tensorboard (last
// release June 2022, no importers) only frame a Summary that TensorFlow's Go
// bindings (cgo) have already serialized, github.com/orktes/go-tensorboard
// (2020) and github.com/wchargin/tensorboard-data-server-go (a 2020
// prototype of TensorBoard's data server, since rewritten in Rust) read
// event files and do not write them; and the Go module proxy this project
// builds from refuses the first three (none is in its list of Go modules).
// The maintained writers are Python (tensorboard, tensorboardX), Rust
// (tfrecord, tboard) and C++ (TensorFlow). Rather than a hand-written
// protobuf writer, the metrics stay in metrics.jsonl (one JSON object a
// line), which pandas reads with read_json(lines=True) and which this
// dashboard draws.
package dashboard

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/plots"
)

// DefaultSmooth is the smoothing weight of the charts (TensorBoard's
// default slider position is 0.6; 0.9 suits the noisy per-step diffusion
// loss).
const DefaultSmooth = 0.9

// Options are a page's settings; the zero value is the defaults.
type Options struct {
	// Title heads the page; empty: "kediff training: NAME" for one run,
	// "kediff training: N runs" for more.
	Title string
	// Smooth is the charts' EMA weight in [0, 1) (0: DefaultSmooth; a
	// negative value: no smoothing).
	Smooth float64
	// MaxGrids bounds the grids of a one-run page, picked evenly over the
	// run with the first and the latest (0: 24).
	MaxGrids int
	// ChartWidth and ChartHeight are each chart's size in pixels (0: 640 by
	// 320).
	ChartWidth, ChartHeight int
	// GridWidth is the widest a grid is shown, in pixels; wider grids are
	// scaled down (0: 512).
	GridWidth int
	// Thumbs caches the grid thumbnails across pages (nil: none).
	Thumbs *Thumbs
	// Now is the time the page says it was written (zero: time.Now()).
	Now time.Time
}

func (o Options) withDefaults(runs []Run) Options {
	if o.Title == "" {
		if len(runs) == 1 {
			o.Title = "kediff training: " + runs[0].Name
		} else {
			o.Title = fmt.Sprintf("kediff training: %d runs", len(runs))
		}
	}
	switch {
	case o.Smooth == 0:
		o.Smooth = DefaultSmooth
	case o.Smooth < 0:
		o.Smooth = 0
	}
	if o.MaxGrids <= 0 {
		o.MaxGrids = 24
	}
	if o.ChartWidth <= 0 {
		o.ChartWidth = 640
	}
	if o.ChartHeight <= 0 {
		o.ChartHeight = 320
	}
	if o.GridWidth <= 0 {
		o.GridWidth = 512
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// Metric is one chart of the page: a column of metrics.jsonl.
type Metric struct {
	ID      string // the JSON name in metrics.jsonl, and the chart's id on the page ("chart-ID")
	Title   string
	YLabel  string // with the unit, if it has one
	Caption string // what the value is, under the chart
	Value   func(Step) float64
	// Optional metrics get a chart only when some run has a value other
	// than zero (comm_s, which one process leaves out).
	Optional bool
}

// Metrics are the charts of a page, in order.
var Metrics = []Metric{
	{ID: "loss", Title: "training loss", YLabel: "loss",
		Caption: "the step's diffusion loss: the weighted MSE between the predicted and the true noise, over the global batch",
		Value:   func(s Step) float64 { return s.Loss }},
	{ID: "grad_norm", Title: "gradient norm", YLabel: "gradient norm (L2)",
		Caption: "the global L2 norm of the gradients before clipping to grad_clip",
		Value:   func(s Step) float64 { return s.GradNorm }},
	{ID: "lr", Title: "learning rate", YLabel: "learning rate",
		Caption: "AdamW's learning rate at each step (linear warm-up, then constant)",
		Value:   func(s Step) float64 { return s.LR }},
	{ID: "samples_per_s", Title: "throughput", YLabel: "throughput (samples/s)",
		Caption: "training samples per second of wall time: the global batch times grad_accum over the step's time",
		Value:   func(s Step) float64 { return s.SamplesPerS }},
	{ID: "comm_s", Title: "time waiting on other ranks", YLabel: "wait per step (s)",
		Caption:  "seconds of each step rank 0 waited on the others (the gradient all-reduce not hidden behind the backward pass)",
		Value:    func(s Step) float64 { return s.CommS },
		Optional: true},
}

// Chart is metric m of runs as a chart: one line per run, named by the
// run, x the step, smoothed with weight smooth.
func Chart(m Metric, runs []Run, smooth float64) plots.Chart {
	c := plots.Chart{Title: m.Title, XLabel: "step", YLabel: m.YLabel, Smooth: smooth}
	for _, r := range runs {
		l := plots.Line{Name: r.Name, X: make([]float64, len(r.Steps)), Y: make([]float64, len(r.Steps))}
		for i, s := range r.Steps {
			l.X[i], l.Y[i] = float64(s.Step), m.Value(s)
		}
		c.Lines = append(c.Lines, l)
	}
	return c
}

// LossChart is the loss of runs (loss.png of a checkpoint folder).
func LossChart(runs []Run, smooth float64) plots.Chart { return Chart(Metrics[0], runs, smooth) }

// WriteFile writes the page of runs to path, through a temporary file and
// a rename.
func WriteFile(path string, runs []Run, opt Options) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, runs, opt) })
}

// Write writes the page of runs to w. A grid that cannot be read is named
// on the page, not an error.
func Write(w io.Writer, runs []Run, opt Options) error {
	opt = opt.withDefaults(runs)
	var b bytes.Buffer
	esc := html.EscapeString
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; } h2 { font-size: 1.2em; margin: 1.5em 0 .5em; border-bottom: 1px solid #ddd; }
p.meta { color: #666; margin: 0 0 1em; }
table { border-collapse: collapse; } th, td { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { color: #555; font-size: .9em; }
figure.chart { width: %dpx; max-width: 100%%; }
figure.chart svg { max-width: 100%%; height: auto; border: 1px solid #eee; }
figure.chart svg text { font-family: %s !important; }
.grids { display: flex; flex-direction: column; gap: 1em; }
figure.grid img { image-rendering: pixelated; max-width: 100%%; height: auto; border: 1px solid #eee; }
figure.grid figcaption { font-weight: 600; color: #222; }
</style>
</head>
<body>
<h1>%s</h1>
<p class="meta">written %s by kediff; charts: faint the value at each step, solid TensorBoard's debiased EMA (weight %g)</p>
`, esc(opt.Title), opt.ChartWidth, plots.FontFamily, esc(opt.Title), esc(opt.Now.Format("2006-01-02 15:04:05 MST")), opt.Smooth)

	b.WriteString("<h2>Runs</h2>\n<table class=\"runs\">\n<tr><th>run</th><th>trains</th><th>folder</th><th>steps logged</th><th>last step</th><th>loss (last)</th><th>loss (smoothed)</th><th>lr</th><th>samples/s (median)</th></tr>\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "<tr><td>%s</td><td class=\"text\">%s</td><td class=\"text\">%s</td><td>%d</td>", esc(r.Name), esc(r.Note), esc(r.Dir), len(r.Steps))
		if n := len(r.Steps); n > 0 {
			last := r.Steps[n-1]
			losses := make([]float64, n)
			tput := make([]float64, 0, n)
			for i, s := range r.Steps {
				losses[i] = s.Loss
				if s.SamplesPerS > 0 && !math.IsInf(s.SamplesPerS, 0) {
					tput = append(tput, s.SamplesPerS)
				}
			}
			sm := plots.SmoothEMA(losses, opt.Smooth)[n-1]
			fmt.Fprintf(&b, "<td>%d</td><td>%.4g</td><td>%.4g</td><td>%.3g</td><td>%.3g</td>", last.Step, last.Loss, sm, last.LR, median(tput))
		} else {
			b.WriteString(`<td colspan="5" class="text">no steps logged yet</td>`)
		}
		b.WriteString("</tr>\n")
		if r.Skipped > 0 {
			fmt.Fprintf(&b, "<tr><td></td><td colspan=\"8\" class=\"text\">%d unreadable lines of %s skipped</td></tr>\n", r.Skipped, MetricsFile)
		}
	}
	b.WriteString("</table>\n")

	b.WriteString("<h2>Training curves</h2>\n<div class=\"charts\">\n")
	for _, m := range Metrics {
		if m.Optional && !anyNonZero(runs, m) {
			continue
		}
		svg, err := Chart(m, runs, opt.Smooth).SVG(opt.ChartWidth, opt.ChartHeight)
		if err != nil {
			return fmt.Errorf("dashboard: chart %s: %w", m.ID, err)
		}
		fmt.Fprintf(&b, "<figure class=\"chart\" id=\"chart-%s\">\n%s<figcaption>%s: %s (metrics.jsonl: %s)</figcaption>\n</figure>\n",
			m.ID, inlineSVG(svg), esc(m.Title), esc(m.Caption), m.ID)
	}
	b.WriteString("</div>\n")

	b.WriteString("<h2>Sample grids</h2>\n")
	if err := writeGrids(&b, runs, opt); err != nil {
		return err
	}
	b.WriteString("</body>\n</html>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// writeGrids writes a one-run page's grids over time (oldest first), or
// each run's latest grid.
func writeGrids(b *bytes.Buffer, runs []Run, opt Options) error {
	esc := html.EscapeString
	any := false
	b.WriteString("<div class=\"grids\">\n")
	for _, r := range runs {
		grids, err := ListGrids(r.Dir)
		if err != nil {
			fmt.Fprintf(b, "<p>%s: %s</p>\n", esc(r.Name), esc(err.Error()))
			continue
		}
		if len(grids) == 0 {
			continue
		}
		shown := grids[len(grids)-1:]
		if len(runs) == 1 {
			shown = spread(grids, opt.MaxGrids)
			if len(shown) < len(grids) {
				fmt.Fprintf(b, "<p>%d of the %d grids, evenly over the run</p>\n", len(shown), len(grids))
			}
		}
		for _, g := range shown {
			any = true
			label := fmt.Sprintf("step %d", g.Step)
			if len(runs) > 1 {
				label = fmt.Sprintf("%s: step %d (latest)", r.Name, g.Step)
			}
			t, err := opt.Thumbs.get(g.Path, opt.GridWidth)
			if err != nil {
				fmt.Fprintf(b, "<figure class=\"grid\"><figcaption>%s</figcaption><p>unreadable: %s</p></figure>\n", esc(label), esc(err.Error()))
				continue
			}
			fmt.Fprintf(b, "<figure class=\"grid\" id=\"grid-%s-%d\"><figcaption>%s</figcaption><img alt=\"sample grid of %s at step %d\" width=\"%d\" height=\"%d\" src=\"%s\"></figure>\n",
				esc(anchor(r.Name)), g.Step, esc(label), esc(r.Name), g.Step, t.w, t.h, t.dataURI)
		}
	}
	b.WriteString("</div>\n")
	if !any {
		b.WriteString("<p>No sample grids yet: set sample_every and sample_prompts in the train config, or kediff train --sample-every N.</p>\n")
	}
	return nil
}

var notAnchor = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func anchor(s string) string { return notAnchor.ReplaceAllString(s, "_") }

var (
	xmlDecl  = regexp.MustCompile(`(?s)<\?xml.*?\?>\s*`)
	comment  = regexp.MustCompile(`(?s)<!--.*?-->\s*`)
	xmlnsDef = regexp.MustCompile(`\s+xmlns(:\w+)?="[^"]*"`)
)

// inlineSVG makes a standalone SVG document an element of an HTML page:
// no XML declaration or comment, and no namespace attributes (an <svg> in
// HTML is in the SVG namespace without them).
func inlineSVG(doc []byte) string {
	s := xmlDecl.ReplaceAllString(string(doc), "")
	s = comment.ReplaceAllString(s, "")
	if i := strings.Index(s, "<svg"); i >= 0 {
		end := strings.Index(s[i:], ">")
		if end > 0 {
			s = s[:i] + xmlnsDef.ReplaceAllString(s[i:i+end], "") + s[i+end:]
		}
	}
	return s
}

func anyNonZero(runs []Run, m Metric) bool {
	for _, r := range runs {
		for _, s := range r.Steps {
			if v := m.Value(s); v != 0 && !math.IsNaN(v) {
				return true
			}
		}
	}
	return false
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
