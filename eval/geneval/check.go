package geneval

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"

	"github.com/kediff/kediff/detect"
	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/synth"
)

// Category is one of GenEval's task categories.
type Category string

const (
	SingleObject Category = "single_object"
	TwoObject    Category = "two_object"
	Counting     Category = "counting"
	Colors       Category = "colors"
	Position     Category = "position"
	ColorAttr    Category = "color_attr"
)

// Categories lists the categories in GenEval's order.
var Categories = []Category{SingleObject, TwoObject, Counting, Colors, Position, ColorAttr}

// Categories returns the categories a parsed prompt is scored in.
func (p Prompt) Categories() []Category {
	switch len(p.Objects) {
	case 1:
		return []Category{SingleObject, Counting, Colors}
	case 2:
		if p.Relation != None {
			return []Category{TwoObject, Counting, Position, ColorAttr}
		}
		return []Category{TwoObject, Counting, ColorAttr}
	}
	return []Category{Counting}
}

// Options configure a Checker.
type Options struct {
	// MinScore is the detection score an object needs to count as present
	// (default 0.3).
	MinScore float32
	// Centre is the fraction of a box's width and height, around its centre,
	// whose pixels vote on its colour (default 0.4: inside every synth shape
	// for the boxes the shapes fill).
	Centre float64
	// AltScore is the score a weaker detection of the same object needs for
	// its label to count as an alternative (default 0.05).
	AltScore float32
	// Overlap is the fraction of the smaller box's area above which two
	// detections are one object (default 0.6).
	Overlap float64
	// MinPurity is the fraction of the box centre's pixels that must vote
	// for one colour for a detection to count (default 0.5): every synth
	// shape is flat-coloured (real renders: >= 0.7), while the detector also
	// fires on colourful noise, whose boxes are mixed.
	MinPurity float64
	// MaxColorDist is the RGB distance beyond which a pixel votes for no
	// colour (default 110).
	MaxColorDist float64
}

func (o Options) withDefaults() Options {
	if o.MinScore == 0 {
		o.MinScore = 0.3
	}
	if o.Centre == 0 {
		o.Centre = 0.4
	}
	if o.AltScore == 0 {
		o.AltScore = 0.05
	}
	if o.Overlap == 0 {
		o.Overlap = 0.6
	}
	if o.MinPurity == 0 {
		o.MinPurity = 0.5
	}
	if o.MaxColorDist == 0 {
		o.MaxColorDist = 110
	}
	return o
}

// Checker scores images against synth prompts with a shape detector.
type Checker struct {
	det *detect.Detector
	opt Options
}

// DetectorConfig is the detector configuration of the synth fixture
// detector (detect/testdata/shapes_yolov8.onnx): YOLOv8 layout at 128x128,
// the synth shape labels, a score floor of 0.05 (weak detections only name
// alternatives; Options.MinScore decides what counts).
func DetectorConfig() detect.Config {
	c := detect.DefaultConfig()
	c.Preprocess.Width, c.Preprocess.Height = 128, 128
	c.Labels = detect.Shapes()
	c.Conf = 0.05
	return c
}

// Open opens the detector model (a YOLOv8-layout ONNX file with the synth
// shape classes, such as the fixture detect/testdata/shapes_yolov8.onnx)
// with DetectorConfig and returns its Checker.
func Open(model string, opt Options, so onnx.SessionOptions) (*Checker, error) {
	d, err := detect.Open(model, DetectorConfig(), so)
	if err != nil {
		return nil, fmt.Errorf("geneval: detector: %w", err)
	}
	return NewChecker(d, opt)
}

// NewChecker returns a Checker over an open detector whose labels must
// include every synth shape. Close closes the detector.
func NewChecker(d *detect.Detector, opt Options) (*Checker, error) {
	labels := d.Config().Labels
	for _, s := range synth.Labels {
		if !slices.Contains(labels, s.Name) {
			return nil, fmt.Errorf("geneval: detector %s has no class %q (labels %v): it must detect every synth shape (use detect/testdata/shapes_yolov8.onnx with the shapes labels)",
				d.Session().Path(), s.Name, labels)
		}
	}
	return &Checker{det: d, opt: opt.withDefaults()}, nil
}

// Close closes the detector.
func (c *Checker) Close() error { return c.det.Close() }

// Found is one detection with the colour its pixels voted for.
type Found struct {
	Shape string // the best detection's label
	// Shapes are the labels of every detection of this object scoring at
	// least Options.AltScore, best first; a wanted shape matches any of them.
	Shapes []string
	Color  string // "" when no pixel was near any synth colour
	// Purity is the fraction of the box centre's pixels that voted for Color.
	Purity float64
	Score  float32
	// Box in pixels of the image.
	X0, Y0, X1, Y1 float32
}

func (f Found) centre() (float32, float32) { return (f.X0 + f.X1) / 2, (f.Y0 + f.Y1) / 2 }

// Result is one image's outcome.
type Result struct {
	Prompt Prompt
	// Err is set when the prompt could not be parsed (an *UnparsedError) or
	// the image could not be processed; the image then counts in no category.
	Err    error
	Found  []Found
	Passed map[Category]bool // the prompt's categories: passed or not
}

// Check scores each image against its prompt. A prompt outside the grammar
// or an image the detector cannot take gives a Result with Err; only a
// failing model run (or a count mismatch) fails the call.
func (c *Checker) Check(imgs []image.Image, prompts []string) ([]Result, error) {
	if len(imgs) != len(prompts) {
		return nil, fmt.Errorf("geneval: %d images but %d prompts (one prompt per image)", len(imgs), len(prompts))
	}
	out := make([]Result, len(imgs))
	var todo []int
	for i, text := range prompts {
		p, err := Parse(text)
		out[i].Prompt = p
		if err != nil {
			out[i].Prompt.Text = text
			out[i].Err = err
			continue
		}
		todo = append(todo, i)
	}
	for start := 0; start < len(todo); start += c.det.MaxBatch() {
		idx := todo[start:min(len(todo), start+c.det.MaxBatch())]
		batch := make([]image.Image, len(idx))
		for j, i := range idx {
			batch[j] = imgs[i]
		}
		res, err := c.det.DetectResults(batch)
		if err != nil {
			return nil, fmt.Errorf("geneval: %w", err)
		}
		for j, i := range idx {
			if res[j].Err != nil {
				out[i].Err = res[j].Err
				continue
			}
			out[i].Found = c.found(imgs[i], res[j].Objects)
			out[i].Passed = score(out[i].Prompt, out[i].Found)
		}
	}
	return out, nil
}

// found groups the detections into objects and gives each its colour. The
// detector's NMS is class-aware, so one shape often comes back as, say, a
// hexagon and a weaker circle (the fixture detector confuses small circles
// and hexagons, small ellipses and rectangles): detections that share more
// than Overlap of the smaller box's area are one object, named by its best
// detection, with every label in the group above AltScore as an
// alternative. An object counts when its best score reaches MinScore.
func (c *Checker) found(img image.Image, objs []detect.Object) []Found {
	var out []Found
	slices.SortStableFunc(objs, func(a, b detect.Object) int { return cmp.Compare(b.Score, a.Score) })
next:
	for _, o := range objs {
		for i, k := range out {
			if sameObject(o, k, c.opt.Overlap) {
				if o.Score >= c.opt.AltScore && !slices.Contains(out[i].Shapes, o.Label) {
					out[i].Shapes = append(out[i].Shapes, o.Label)
				}
				continue next
			}
		}
		if o.Score < c.opt.MinScore {
			continue
		}
		f := Found{Shape: o.Label, Shapes: []string{o.Label}, Score: o.Score, X0: o.X0, Y0: o.Y0, X1: o.X1, Y1: o.Y1}
		f.Color, f.Purity = c.colorOf(img, f)
		if f.Purity < c.opt.MinPurity {
			continue // not one flat colour: no synth shape
		}
		out = append(out, f)
	}
	return out
}

// colorOf lets every pixel of the box's centre vote for its nearest synth
// colour (if within MaxColorDist) and returns the colour with most votes.
func (c *Checker) colorOf(img image.Image, f Found) (string, float64) {
	cx, cy := float64(f.X0+f.X1)/2, float64(f.Y0+f.Y1)/2
	hw, hh := float64(f.X1-f.X0)*c.opt.Centre/2, float64(f.Y1-f.Y0)*c.opt.Centre/2
	b := img.Bounds()
	x0, x1 := max(b.Min.X, int(math.Floor(cx-hw))), min(b.Max.X, int(math.Ceil(cx+hw)))
	y0, y1 := max(b.Min.Y, int(math.Floor(cy-hh))), min(b.Max.Y, int(math.Ceil(cy+hh)))
	votes := make([]int, len(synth.Colors))
	total := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			total++
			k, d := NearestColor(img.At(x, y))
			if d <= c.opt.MaxColorDist {
				votes[k]++
			}
		}
	}
	best := -1
	for k, v := range votes {
		if v > 0 && (best < 0 || v > votes[best]) {
			best = k
		}
	}
	if best < 0 {
		return "", 0
	}
	return synth.Colors[best].Name, float64(votes[best]) / float64(max(1, total))
}

func sameObject(o detect.Object, k Found, overlap float64) bool {
	iw := min(o.X1, k.X1) - max(o.X0, k.X0)
	ih := min(o.Y1, k.Y1) - max(o.Y0, k.Y0)
	if iw <= 0 || ih <= 0 {
		return false
	}
	smaller := min(o.Area(), (k.X1-k.X0)*(k.Y1-k.Y0))
	return float64(iw*ih) > overlap*float64(smaller)
}

// NearestColor returns the index in synth.Colors of the colour nearest to
// c (Euclidean distance in 8-bit RGB) and that distance.
func NearestColor(c color.Color) (int, float64) {
	r, g, b, _ := c.RGBA()
	best, bd := 0, math.Inf(1)
	for k, p := range synth.Colors {
		dr, dg, db := float64(r>>8)-float64(p.RGB.R), float64(g>>8)-float64(p.RGB.G), float64(b>>8)-float64(p.RGB.B)
		if d := dr*dr + dg*dg + db*db; d < bd {
			best, bd = k, d
		}
	}
	return best, math.Sqrt(bd)
}

// score decides every category of the prompt from what was found.
func score(p Prompt, found []Found) map[Category]bool {
	m := bestMatch(p.Objects, found)
	shapes, colours := 0, 0
	for i, j := range m {
		if j >= 0 {
			shapes++
			if found[j].Color == p.Objects[i].Color {
				colours++
			}
		}
	}
	all := shapes == len(p.Objects)
	out := map[Category]bool{}
	for _, c := range p.Categories() {
		switch c {
		case SingleObject, TwoObject:
			out[c] = all
		case Counting:
			out[c] = all && len(found) == len(p.Objects)
		case Colors, ColorAttr:
			out[c] = all && colours == len(p.Objects)
		case Position:
			if all {
				ax, ay := found[m[0]].centre()
				bx, by := found[m[1]].centre()
				out[c] = (p.Relation == LeftOf && ax < bx) || (p.Relation == Above && ay < by)
			} else {
				out[c] = false
			}
		}
	}
	return out
}

// bestMatch assigns detections to the wanted objects (at most one each):
// the assignment with most shapes matched, then most colours right, then
// the highest scores. m[i] is the detection of want i, or -1.
func bestMatch(want []Want, found []Found) []int {
	m := make([]int, len(want))
	best := make([]int, len(want))
	bestKey := [3]float64{-1, -1, -1}
	used := make([]bool, len(found))
	var walk func(i int, shapes, colours int, sc float64)
	walk = func(i int, shapes, colours int, sc float64) {
		if i == len(want) {
			key := [3]float64{float64(shapes), float64(colours), sc}
			if slices.Compare(key[:], bestKey[:]) > 0 {
				bestKey = key
				copy(best, m)
			}
			return
		}
		m[i] = -1
		walk(i+1, shapes, colours, sc)
		for j, f := range found {
			if used[j] || !slices.Contains(f.Shapes, want[i].Shape) {
				continue
			}
			used[j] = true
			m[i] = j
			c := 0
			if f.Color == want[i].Color {
				c = 1
			}
			walk(i+1, shapes+1, colours+c, sc+float64(f.Score))
			used[j] = false
			m[i] = -1
		}
	}
	walk(0, 0, 0, 0)
	return best
}

// Tally is a category's count of passed images out of those scored.
type Tally struct {
	Passed, Total int
}

// Rate is Passed / Total (NaN when nothing was scored).
func (t Tally) Rate() float64 {
	if t.Total == 0 {
		return math.NaN()
	}
	return float64(t.Passed) / float64(t.Total)
}

// Report adds up results.
type Report struct {
	Images     int
	Unparsed   int      // prompts outside the grammar
	Failed     int      // images the detector could not take
	Examples   []string // up to 5 unparsed prompts or failures, with why
	Categories map[Category]Tally
}

// Overall is GenEval's overall score: the mean rate over the categories
// that scored at least one image.
func (r Report) Overall() float64 {
	sum, n := 0.0, 0
	for _, c := range Categories {
		if t := r.Categories[c]; t.Total > 0 {
			sum += t.Rate()
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// Summarise adds results up per category.
func Summarise(results []Result) Report {
	r := Report{Images: len(results), Categories: map[Category]Tally{}}
	for _, res := range results {
		if res.Err != nil {
			var ue *UnparsedError
			if errors.As(res.Err, &ue) {
				r.Unparsed++
			} else {
				r.Failed++
			}
			if len(r.Examples) < 5 {
				r.Examples = append(r.Examples, res.Err.Error())
			}
			continue
		}
		for c, ok := range res.Passed {
			t := r.Categories[c]
			t.Total++
			if ok {
				t.Passed++
			}
			r.Categories[c] = t
		}
	}
	return r
}
