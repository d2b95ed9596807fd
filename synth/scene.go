package synth

import (
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Shape is one entry of the shape vocabulary. Its index in Labels is the class
// id that detector fixtures use.
type Shape struct {
	Name, Zh string
}

// Labels is the shape vocabulary in class-id order.
var Labels = []Shape{
	{"circle", "圆形"},
	{"square", "正方形"},
	{"triangle", "三角形"},
	{"star", "五角星"},
	{"rectangle", "长方形"},
	{"ellipse", "椭圆"},
	{"hexagon", "六边形"},
}

// Paint is one entry of the colour vocabulary.
type Paint struct {
	Name, Zh string
	RGB      color.RGBA
}

// Colors is the colour vocabulary. The values are saturated or extreme so
// that none is close to the muted backgrounds.
var Colors = []Paint{
	{"red", "红色", color.RGBA{220, 30, 35, 255}},
	{"green", "绿色", color.RGBA{30, 170, 60, 255}},
	{"blue", "蓝色", color.RGBA{30, 70, 225, 255}},
	{"yellow", "黄色", color.RGBA{250, 215, 25, 255}},
	{"purple", "紫色", color.RGBA{135, 40, 185, 255}},
	{"orange", "橙色", color.RGBA{250, 130, 15, 255}},
	{"white", "白色", color.RGBA{250, 250, 250, 255}},
	{"black", "黑色", color.RGBA{12, 12, 12, 255}},
}

// Size classes. Medium is the unmarked size: captions name only "small" (小)
// and "big" (大). The extents (as a fraction of the image's shorter side)
// leave gaps between classes so that the class is visible.
const (
	Small  = "small"
	Medium = "medium"
	Big    = "big"
)

var sizeClasses = []struct {
	name, en, zh string
	lo, hi       float64 // extent range, fraction of min(width, height)
}{
	{Small, "small", "小", 0.13, 0.19},
	{Medium, "", "", 0.25, 0.33},
	{Big, "big", "大", 0.42, 0.52},
}

// Object is one shape of a scene with its ground truth.
type Object struct {
	Label   string `json:"label"`
	LabelZh string `json:"label_zh"`
	Color   string `json:"color"`
	ColorZh string `json:"color_zh"`
	Size    string `json:"size"` // Small, Medium or Big
	// Box is [x0, y0, x1, y1] in pixel-edge coordinates (x1, y1 exclusive).
	Box [4]int `json:"box"`

	geom  geometry
	paint color.RGBA
}

// Scene is what Render drew: the objects in drawing order and both captions.
type Scene struct {
	Width, Height int
	Objects       []Object
	CaptionEn     string
	CaptionZh     string
}

// Caption returns the scene's caption in lang ("en" or "zh").
func (s Scene) Caption(lang string) string {
	if lang == "en" {
		return s.CaptionEn
	}
	return s.CaptionZh
}

// layout draws a scene: 1 to 3 objects with distinct (shape, colour) pairs,
// placed without overlap so that the caption grammar's relations are
// unambiguous. Boxes are nominal here; Render replaces them by the rendered
// pixel boxes.
func layout(r *rand.Rand, w, h int, mix [3]float64) []Object {
	n := objectCount(r, mix)
	for try := 0; try < 20; try++ {
		objs := placeAll(r, w, h, n)
		if sceneOK(objs, w, h) {
			return objs
		}
	}
	// A single object always fits and is always unambiguous.
	return placeAll(r, w, h, 1)
}

// objectCount draws a scene's object count: 1, 2 or 3 with the relative
// weights mix, or uniformly (one IntN draw, as before mixes existed) when
// mix is all zero.
func objectCount(r *rand.Rand, mix [3]float64) int {
	total := mix[0] + mix[1] + mix[2]
	if total == 0 {
		return 1 + r.IntN(3)
	}
	u := r.Float64() * total
	for i, w := range mix {
		if u < w {
			return i + 1
		}
		u -= w
	}
	return 3
}

func placeAll(r *rand.Rand, w, h, n int) []Object {
	side := float64(min(w, h))
	margin := math.Max(2, 0.03*side)
	var objs []Object
	used := map[[2]int]bool{}
	for len(objs) < n {
		shape, paint := r.IntN(len(Labels)), r.IntN(len(Colors))
		if used[[2]int{shape, paint}] {
			continue
		}
		o, ok := place(r, w, h, margin, shape, paint, n, objs)
		if !ok {
			break // no room left: the scene gets fewer objects
		}
		used[[2]int{shape, paint}] = true
		objs = append(objs, o)
	}
	return objs
}

// place puts one object where it clears the objects already placed, shrinking
// its size class when it does not fit.
func place(r *rand.Rand, w, h int, margin float64, shape, paint, n int, placed []Object) (Object, bool) {
	side := float64(min(w, h))
	gap := math.Max(3, 0.03*side)
	for size := r.IntN(len(sizeClasses)); size >= 0; size-- {
		sc := sizeClasses[size]
		for try := 0; try < 40; try++ {
			ext := (sc.lo + (sc.hi-sc.lo)*r.Float64()) * side
			g := newGeometry(shape, ext, r)
			bw, bh := g.x1-g.x0, g.y1-g.y0
			if bw+2*margin > float64(w) || bh+2*margin > float64(h) {
				continue
			}
			// Position the geometry's bounding box inside the margins.
			dx := margin + r.Float64()*(float64(w)-2*margin-bw) - g.x0
			dy := margin + r.Float64()*(float64(h)-2*margin-bh) - g.y0
			g = g.translate(dx, dy)
			box := [4]int{int(math.Floor(g.x0)), int(math.Floor(g.y0)), int(math.Ceil(g.x1)), int(math.Ceil(g.y1))}
			clear := true
			for _, p := range placed {
				if !separated(box, p.Box, gap) {
					clear = false
					break
				}
			}
			if !clear {
				continue
			}
			return Object{
				Label: Labels[shape].Name, LabelZh: Labels[shape].Zh,
				Color: Colors[paint].Name, ColorZh: Colors[paint].Zh,
				Size: sc.name, Box: box,
				geom: g, paint: Colors[paint].RGB,
			}, true
		}
	}
	return Object{}, false
}

// separated reports whether boxes a and b are at least gap apart on some axis.
func separated(a, b [4]int, gap float64) bool {
	g := int(math.Ceil(gap))
	return a[2]+g <= b[0] || b[2]+g <= a[0] || a[3]+g <= b[1] || b[3]+g <= a[1]
}

// Relations between two objects, decided from their boxes. Overlap is the
// extent shared on an axis divided by the smaller extent; a negative value is
// a gap. Scenes whose overlap falls in the ambiguous band on either axis are
// redrawn, so a viewer can always tell which relation holds.
const (
	sameBandMin   = 0.35  // overlap >= this on an axis: "in the same row/column"
	apartBandMax  = -0.10 // overlap <= this: clearly apart on that axis
	orderMinShift = 0.08  // 3-object scenes: centres at least this far apart in x (fraction of width)
)

func overlap(a0, a1, b0, b1 int) float64 {
	shared := min(a1, b1) - max(a0, b0)
	return float64(shared) / float64(min(a1-a0, b1-b0))
}

func ambiguous(ov float64) bool { return ov > apartBandMax && ov < sameBandMin }

func sceneOK(objs []Object, w, h int) bool {
	switch len(objs) {
	case 0:
		return false
	case 2:
		a, b := objs[0].Box, objs[1].Box
		return !ambiguous(overlap(a[0], a[2], b[0], b[2])) && !ambiguous(overlap(a[1], a[3], b[1], b[3]))
	case 3:
		xs := []float64{centreX(objs[0]), centreX(objs[1]), centreX(objs[2])}
		sort.Float64s(xs)
		return xs[1]-xs[0] >= orderMinShift*float64(w) && xs[2]-xs[1] >= orderMinShift*float64(w)
	}
	return true
}

func centreX(o Object) float64 { return float64(o.Box[0]+o.Box[2]) / 2 }
func centreY(o Object) float64 { return float64(o.Box[1]+o.Box[3]) / 2 }

// Caption builds the English and Chinese captions of a scene from its
// objects' rendered boxes. The grammar, with X, Y, Z the objects:
//
//	one object:           "a X"                     "一个X"
//	two, same row:        "a X to the left of a Y"  "Y左边有一个X"   (X the left one)
//	two, same column:     "a X above a Y"           "Y上面有一个X"   (X the upper one)
//	two, diagonal:        "a X and a Y"             "一个X和一个Y"   (X the left one)
//	three:                "a X, a Y and a Z"        "一个X、一个Y和一个Z" (left to right)
//
// An object phrase is [size] colour shape in English ("small blue square",
// "an" before a vowel) and colour的[size]shape in Chinese ("蓝色的小正方形");
// the Y of a relation is colour[size]shape in Chinese ("绿色小三角形").
func Caption(objs []Object) (en, zh string) {
	byX := append([]Object(nil), objs...)
	sort.SliceStable(byX, func(i, j int) bool { return centreX(byX[i]) < centreX(byX[j]) })
	switch len(byX) {
	case 1:
		return enNP(byX[0]), zhNP(byX[0])
	case 2:
		a, b := byX[0], byX[1]
		sameRow := overlap(a.Box[1], a.Box[3], b.Box[1], b.Box[3]) >= sameBandMin
		sameCol := overlap(a.Box[0], a.Box[2], b.Box[0], b.Box[2]) >= sameBandMin
		switch {
		case sameRow:
			return enNP(a) + " to the left of " + enNP(b), zhRef(b) + "左边有" + zhNP(a)
		case sameCol:
			if centreY(b) < centreY(a) {
				a, b = b, a
			}
			return enNP(a) + " above " + enNP(b), zhRef(b) + "上面有" + zhNP(a)
		default:
			return enNP(a) + " and " + enNP(b), zhNP(a) + "和" + zhNP(b)
		}
	case 3:
		return enNP(byX[0]) + ", " + enNP(byX[1]) + " and " + enNP(byX[2]),
			zhNP(byX[0]) + "、" + zhNP(byX[1]) + "和" + zhNP(byX[2])
	}
	panic(fmt.Sprintf("synth: caption for %d objects", len(objs)))
}

// enNP is the English noun phrase with its article: "a small blue square".
func enNP(o Object) string {
	words := []string{o.Color, o.Label}
	if s := sizeClasses[sizeIndex(o.Size)].en; s != "" {
		words = append([]string{s}, words...)
	}
	phrase := strings.Join(words, " ")
	if strings.ContainsRune("aeiou", rune(phrase[0])) {
		return "an " + phrase
	}
	return "a " + phrase
}

// zhNP is the Chinese noun phrase with its classifier: "一个蓝色的小正方形".
func zhNP(o Object) string {
	return "一个" + o.ColorZh + "的" + sizeClasses[sizeIndex(o.Size)].zh + o.LabelZh
}

// zhRef is the bare Chinese phrase that a relation starts from: "绿色小三角形".
func zhRef(o Object) string { return o.ColorZh + sizeClasses[sizeIndex(o.Size)].zh + o.LabelZh }

func sizeIndex(name string) int {
	for i, c := range sizeClasses {
		if c.name == name {
			return i
		}
	}
	return 1 // unknown sizes read as the unmarked medium
}

// ParseObjectMix reads Options.ObjectMix from "w1,w2,w3" (weights of 1-, 2-
// and 3-object scenes).
func ParseObjectMix(s string) ([3]float64, error) {
	var mix [3]float64
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return mix, fmt.Errorf("%q: want three comma-separated weights for 1, 2 and 3 objects, e.g. 1,2,1", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || math.IsInf(v, 0) {
			return mix, fmt.Errorf("%q: weight %q is not a number >= 0", s, p)
		}
		mix[i] = v
	}
	if mix[0]+mix[1]+mix[2] == 0 {
		return mix, fmt.Errorf("%q: at least one weight must be > 0", s)
	}
	return mix, nil
}
