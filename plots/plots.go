// Package plots is where kediff draws its charts: training curves
// (Chart), distributions (Histogram) and categorical counts (Bars), as PNG
// or SVG bytes, on gonum.org/v1/plot.
//
// Every chart has a title and labelled axes with ticks; put the unit in the
// label ("step time (s)", "throughput (samples/s)"). A Chart with Smooth > 0
// draws each line twice, the raw values faint and a smoothed curve over them
// (SmoothEMA, TensorBoard's smoothing), like TensorBoard's scalar panel.
// Empty input is not an error: the chart is drawn with its title and axes
// and says "no data".
//
//	png, err := plots.Chart{Title: "training loss", XLabel: "step", YLabel: "loss",
//		Lines: []plots.Line{{X: steps, Y: losses}}, Smooth: 0.9}.PNG(640, 360)
//
// Sizes are in pixels; an SVG of w×h pixels is w×h CSS pixels (96 per inch),
// the same layout as the PNG. Text is in the Go fonts that gonum/plot
// embeds, so nothing is read from the system or the network.
package plots

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Font is the variant of gonum/plot's embedded Liberation fonts the charts
// are written in: Liberation Sans, metrically compatible with Arial and
// Helvetica, so an SVG shown where it is not installed keeps its layout
// (a page showing the SVGs can name them: see FontFamily).
const Font = "Sans"

// FontFamily is a CSS font-family list for the SVGs' text: Liberation Sans
// and the fonts with its metrics.
const FontFamily = `"Liberation Sans", Arial, Helvetica, Arimo, sans-serif`

// NoData is the text a chart without any drawable value shows.
const NoData = "no data"

// dpi is the resolution of a PNG: one CSS pixel per pixel, so that the same
// chart as SVG has the same layout.
const dpi = 96

// Palette is the colour of each line, in order (the matplotlib/TensorBoard
// "tab10" colours); line i takes Palette[i%len(Palette)].
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// Line is one series of a Chart. Points whose X or Y is NaN or ±Inf (or,
// on a LogY chart, whose Y is not positive) are skipped. A nil X numbers
// the points 0, 1, 2, ...
type Line struct {
	Name string
	X, Y []float64
}

// Chart is a line chart of one or more series sharing its axes.
type Chart struct {
	Title, XLabel, YLabel string
	Lines                 []Line
	// Smooth is the weight of the smoothed curve drawn over each raw line
	// (SmoothEMA; 0.9 like TensorBoard's slider, in [0, 1)); 0: the raw
	// lines only, drawn solid.
	Smooth float64
	// LogY draws the y axis on a log10 scale.
	LogY bool
}

// Histogram is the distribution of Values in Bins equal bins (0: the
// square root of the number of values, at most 50). Non-finite values are
// left out. YLabel defaults to "samples".
type Histogram struct {
	Title, XLabel, YLabel string
	Values                []float64
	Bins                  int
}

// Bars is a bar chart of categorical counts (reject reasons, POS classes):
// one bar per label, its value written above it.
type Bars struct {
	Title, XLabel, YLabel string
	Labels                []string
	Values                []float64
}

// SmoothEMA returns TensorBoard's smoothing of y with weight w in [0, 1)
// (its "Smoothing" slider): the exponential moving average
//
//	last_i = w*last_{i-1} + (1-w)*y_i,  last_0 = 0
//
// divided by 1 - w^k, k the number of finite values so far, which removes
// the pull towards the zero start (the debiasing of Adam's moments), so the
// first smoothed value is y_0 itself. Non-finite values are kept as they are
// and do not enter the average. w <= 0 returns a copy of y; w >= 1 is
// treated as 0.999. This is TensorBoard's scalar dashboard's smoothing
// ("classicSmoothing" in webapp/widgets/line_chart_v2, earlier
// "resmoothDataset" in components/vz_line_chart2/line-chart.ts), which
// W&B's "exponential moving average - TensorBoard" also follows.
func SmoothEMA(y []float64, w float64) []float64 {
	out := make([]float64, len(y))
	if w <= 0 {
		copy(out, y)
		return out
	}
	w = math.Min(w, 0.999)
	last, k := 0.0, 0
	for i, v := range y {
		if !finite(v) {
			out[i] = v
			continue
		}
		k++
		last = last*w + (1-w)*v
		out[i] = last / (1 - math.Pow(w, float64(k)))
	}
	return out
}

// PNG draws the chart as a w×h PNG.
func (c Chart) PNG(w, h int) ([]byte, error) { return render(c.plot, w, h, false) }

// SVG draws the chart as a w×h SVG document.
func (c Chart) SVG(w, h int) ([]byte, error) { return render(c.plot, w, h, true) }

// PNG draws the histogram as a w×h PNG.
func (hg Histogram) PNG(w, h int) ([]byte, error) { return render(hg.plot, w, h, false) }

// SVG draws the histogram as a w×h SVG document.
func (hg Histogram) SVG(w, h int) ([]byte, error) { return render(hg.plot, w, h, true) }

// PNG draws the bars as a w×h PNG.
func (b Bars) PNG(w, h int) ([]byte, error) { return render(b.plot, w, h, false) }

// SVG draws the bars as a w×h SVG document.
func (b Bars) SVG(w, h int) ([]byte, error) { return render(b.plot, w, h, true) }

// render builds a plot for a w×h canvas and encodes it. The plot's legend
// goes in a column right of the data, where it hides no line.
func render(build func(width vg.Length) (*plot.Plot, error), w, h int, svg bool) ([]byte, error) {
	if w < 64 || h < 64 {
		return nil, fmt.Errorf("plots: a %dx%d chart is too small to draw (at least 64x64 pixels)", w, h)
	}
	width, height := px(w), px(h)
	p, err := build(width)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if svg {
		c := vgsvg.New(width, height)
		layout(p, draw.New(c))
		if _, err := c.WriteTo(&buf); err != nil {
			return nil, fmt.Errorf("plots: %q: svg: %w", p.Title.Text, err)
		}
		return buf.Bytes(), nil
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := vgimg.NewWith(vgimg.UseImage(img), vgimg.UseDPI(dpi))
	layout(p, draw.New(c))
	if err := png.Encode(&buf, c.Image()); err != nil {
		return nil, fmt.Errorf("plots: %q: png: %w", p.Title.Text, err)
	}
	return buf.Bytes(), nil
}

// layout draws p into c with a margin, its legend (if any) in a column at
// the right below the title.
func layout(p *plot.Plot, c draw.Canvas) {
	m := vg.Points(5)
	c = draw.Crop(c, m, -2*m, m, -m)
	leg := p.Legend
	p.Legend = plot.NewLegend()
	p.Legend.TextStyle = leg.TextStyle
	probe := leg
	probe.Top, probe.Left = true, false
	r := probe.Rectangle(c)
	// 15% more than the text needs, for a viewer's substitute font.
	lw := (r.Max.X - r.Min.X) * 1.15
	if lw <= 0 || lw > c.Size().X/3 {
		// No legend, or one too wide to give a column: inside, top right.
		p.Legend = leg
		p.Draw(c)
		return
	}
	p.Draw(draw.Crop(c, 0, -(lw + m), 0, 0))
	top := vg.Length(0)
	if p.Title.Text != "" {
		top = p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
	}
	leg.Top, leg.Left = true, true
	leg.Draw(draw.Crop(c, c.Size().X-lw, 0, 0, -top))
}

// px is n pixels at 96 per inch as a vg length (points).
func px(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// newPlot is a plot with kediff's common style: title, axis labels, a grid.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Label.TextStyle.Font.Size = vg.Points(10)
	p.Y.Label.TextStyle.Font.Size = vg.Points(10)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		f.Variant = Font
	}
	p.Legend.Top = true
	p.Legend.Padding = vg.Points(2)
	p.Legend.ThumbnailWidth = vg.Points(16)
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// noData marks p as empty: unit axes and "no data" in the middle.
func noData(p *plot.Plot) error {
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{NoData}})
	if err != nil {
		return fmt.Errorf("plots: %q: %w", p.Title.Text, err)
	}
	l.TextStyle[0].Font.Size = vg.Points(14)
	l.TextStyle[0].Font.Variant = Font
	l.TextStyle[0].Color = color.Gray{Y: 110}
	l.TextStyle[0].XAlign = text.XCenter
	l.TextStyle[0].YAlign = text.YCenter
	p.Add(l)
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// faint is c mixed 70% towards white (the raw line under a smoothed one).
func faint(c color.RGBA) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(float64(v) + 0.7*(255-float64(v))) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 255}
}

// points is l's drawable points: finite, and positive y on a log axis.
func (l Line) points(logY bool) (plotter.XYs, error) {
	if l.X != nil && len(l.X) != len(l.Y) {
		return nil, fmt.Errorf("line %q has %d x values and %d y values", l.Name, len(l.X), len(l.Y))
	}
	xys := make(plotter.XYs, 0, len(l.Y))
	for i, y := range l.Y {
		x := float64(i)
		if l.X != nil {
			x = l.X[i]
		}
		if !finite(x) || !finite(y) || (logY && y <= 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: x, Y: y})
	}
	return xys, nil
}

// curve is one line of a chart as drawn: its finite points and, on a
// smoothed chart, the smoothed curve at the same x (else nil).
type curve struct {
	raw, smooth plotter.XYs
}

// curves is c's lines as drawn, one per Line.
func (c Chart) curves() ([]curve, error) {
	if c.Smooth < 0 || c.Smooth >= 1 || math.IsNaN(c.Smooth) {
		return nil, fmt.Errorf("plots: chart %q: smoothing weight %g is outside [0, 1)", c.Title, c.Smooth)
	}
	out := make([]curve, len(c.Lines))
	for i, l := range c.Lines {
		xys, err := l.points(c.LogY)
		if err != nil {
			return nil, fmt.Errorf("plots: chart %q: %w", c.Title, err)
		}
		out[i].raw = xys
		if c.Smooth > 0 && len(xys) > 0 {
			ys := make([]float64, len(xys))
			for j := range xys {
				ys[j] = xys[j].Y
			}
			ys = SmoothEMA(ys, c.Smooth)
			out[i].smooth = make(plotter.XYs, len(xys))
			for j := range xys {
				out[i].smooth[j] = plotter.XY{X: xys[j].X, Y: ys[j]}
			}
		}
	}
	for i := range out {
		out[i].raw, out[i].smooth = thin(out[i].raw, out[i].smooth, MaxPoints)
	}
	return out, nil
}

// MaxPoints is the most points a line is drawn with. A longer line (a run
// of a million steps) is thinned into MaxPoints/2 buckets of consecutive
// points: the raw line keeps each bucket's lowest and highest point, so its
// envelope and spikes stay, and the smoothed curve, computed on every point
// first, its last point of each bucket.
const MaxPoints = 4000

// thin is raw and smooth (nil, or as long as raw) with at most n points.
func thin(raw, smooth plotter.XYs, n int) (plotter.XYs, plotter.XYs) {
	if len(raw) <= n {
		return raw, smooth
	}
	buckets := n / 2
	r := make(plotter.XYs, 0, n)
	var s plotter.XYs
	if smooth != nil {
		s = make(plotter.XYs, 0, buckets)
	}
	for b := range buckets {
		lo, hi := b*len(raw)/buckets, (b+1)*len(raw)/buckets
		iMin, iMax := lo, lo
		for i := lo; i < hi; i++ {
			if raw[i].Y < raw[iMin].Y {
				iMin = i
			}
			if raw[i].Y > raw[iMax].Y {
				iMax = i
			}
		}
		r = append(r, raw[min(iMin, iMax)])
		if iMin != iMax {
			r = append(r, raw[max(iMin, iMax)])
		}
		if smooth != nil {
			s = append(s, smooth[hi-1])
		}
	}
	return r, s
}

func (c Chart) plot(_ vg.Length) (*plot.Plot, error) {
	p := newPlot(c.Title, c.XLabel, c.YLabel)
	curves, err := c.curves()
	if err != nil {
		return nil, err
	}
	drawn, named := 0, 0
	for i, cv := range curves {
		drawn += len(cv.raw)
		if len(cv.raw) > 0 && c.Lines[i].Name != "" {
			named++
		}
	}
	if drawn == 0 {
		return p, noData(p)
	}
	if c.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for i, cv := range curves {
		if len(cv.raw) == 0 {
			continue
		}
		col := Palette[i%len(Palette)]
		solid := cv.raw
		if cv.smooth != nil {
			raw, err := newLine(cv.raw, faint(col), 1)
			if err != nil {
				return nil, fmt.Errorf("plots: chart %q: %w", c.Title, err)
			}
			p.Add(raw)
			solid = cv.smooth
		}
		l, err := newLine(solid, col, 1.5)
		if err != nil {
			return nil, fmt.Errorf("plots: chart %q: %w", c.Title, err)
		}
		p.Add(l)
		if name := c.Lines[i].Name; name != "" {
			p.Legend.Add(shorten(name, 28), l)
		}
	}
	if c.Smooth > 0 {
		// The key to the two kinds of line: in the line's own colour when
		// there is one line, else in grey.
		col := Palette[0]
		if named > 1 {
			col = color.RGBA{90, 90, 90, 255}
		}
		raw, _ := newLine(plotter.XYs{{}}, faint(col), 1)
		sm, _ := newLine(plotter.XYs{{}}, col, 1.5)
		if named > 0 {
			p.Legend.Add("")
		}
		p.Legend.Add("raw", raw)
		p.Legend.Add(fmt.Sprintf("smoothed (EMA %g)", c.Smooth), sm)
	}
	return p, nil
}

// shorten cuts s to n runes, marking the cut with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newLine(xys plotter.XYs, col color.Color, width float64) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color = col
	l.Width = vg.Points(width)
	return l, nil
}

func (hg Histogram) plot(_ vg.Length) (*plot.Plot, error) {
	ylabel := hg.YLabel
	if ylabel == "" {
		ylabel = "samples"
	}
	p := newPlot(hg.Title, hg.XLabel, ylabel)
	var vs plotter.Values
	for _, v := range hg.Values {
		if finite(v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return p, noData(p)
	}
	bins := hg.Bins
	if bins <= 0 {
		bins = min(max(int(math.Ceil(math.Sqrt(float64(len(vs))))), 1), 50)
	}
	h, err := plotter.NewHist(vs, bins)
	if err != nil {
		return nil, fmt.Errorf("plots: histogram %q: %w", hg.Title, err)
	}
	h.FillColor = Palette[0]
	h.LineStyle.Color = color.White
	h.LineStyle.Width = vg.Points(0.5)
	p.Add(h)
	p.Y.Min = 0
	p.Legend.Add(fmt.Sprintf("n = %d", len(vs)))
	return p, nil
}

func (b Bars) plot(width vg.Length) (*plot.Plot, error) {
	p := newPlot(b.Title, b.XLabel, b.YLabel)
	if len(b.Labels) != len(b.Values) {
		return nil, fmt.Errorf("plots: bars %q: %d labels and %d values", b.Title, len(b.Labels), len(b.Values))
	}
	vs := make(plotter.Values, len(b.Values))
	for i, v := range b.Values {
		if finite(v) {
			vs[i] = v
		}
	}
	if len(vs) == 0 {
		return p, noData(p)
	}
	// The bars take about 60% of the data area's width (the canvas less
	// the y axis and margins).
	bw := vg.Length(math.Max(2, float64(width-vg.Points(60))*0.6/float64(len(vs))))
	bc, err := plotter.NewBarChart(vs, bw)
	if err != nil {
		return nil, fmt.Errorf("plots: bars %q: %w", b.Title, err)
	}
	bc.Color = Palette[0]
	bc.LineStyle.Width = 0
	p.Add(bc)
	p.NominalX(b.Labels...)
	p.X.Min, p.X.Max = -0.5, float64(len(vs))-0.5
	long := 0
	for _, l := range b.Labels {
		long = max(long, len(l))
	}
	if len(b.Labels) > 4 && long > 6 || long > 16 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	top := 0.0
	xys := make(plotter.XYs, len(vs))
	labels := make([]string, len(vs))
	for i, v := range vs {
		top = math.Max(top, v)
		xys[i] = plotter.XY{X: float64(i), Y: v}
		labels[i] = fmt.Sprintf("%g", v)
	}
	vl, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, fmt.Errorf("plots: bars %q: %w", b.Title, err)
	}
	for i := range vl.TextStyle {
		vl.TextStyle[i].Font.Size = vg.Points(8)
		vl.TextStyle[i].Font.Variant = Font
		vl.TextStyle[i].XAlign = text.XCenter
		vl.TextStyle[i].YAlign = text.YBottom
	}
	vl.Offset = vg.Point{Y: vg.Points(2)}
	p.Add(vl)
	p.Y.Min = math.Min(0, p.Y.Min)
	if top > 0 {
		p.Y.Max = top * 1.12 // room for the value labels
	}
	return p, nil
}
