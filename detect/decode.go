package detect

import (
	"fmt"
	"math"
	"slices"
)

// Candidate is one decoded prediction in model-input pixels, before mapping
// back to the image.
type Candidate struct {
	Anchor         int // index along the output's anchor axis
	Class          int
	Score          float32
	X0, Y0, X1, Y1 float32
}

// Decode turns the output of one image (one batch item: [4+C, A] for
// yolov8, [A, 5+C] for yolov5 and yolox, row-major) into the candidates
// whose score reaches cfg.Conf. Each anchor yields at most one candidate,
// for its best class (the first on ties); score = that class's score, times
// the objectness for yolov5 and yolox. YOLOX boxes are decoded on the grid of
// cfg.Strides: anchors run level by level (finest first), each level's
// cells in row-major order; cx = (x + gx)*s, w = exp(w)*s. A NaN in a score
// or in the box of a kept candidate is an error: the model or its input is
// broken.
func Decode(out []float32, anchors, classes int, cfg *Config) ([]Candidate, error) {
	var cands []Candidate
	switch cfg.Format {
	case YOLOv8:
		if len(out) != (4+classes)*anchors {
			return nil, fmt.Errorf("detect: output holds %d values, want (4+%d)*%d", len(out), classes, anchors)
		}
		// Class rows are contiguous: first the best score of every anchor,
		// a row at a time (max propagates a NaN), then the class of the
		// few anchors that reach Conf.
		if classes <= 0 {
			return nil, nil
		}
		best := make([]float32, anchors)
		copy(best, out[4*anchors:5*anchors])
		for c := 1; c < classes; c++ {
			row := out[(4+c)*anchors : (5+c)*anchors]
			row = row[:len(best)]
			for i, v := range row {
				best[i] = max(best[i], v)
			}
		}
		n := 0
		for _, b := range best {
			if b >= cfg.Conf {
				n++
			}
		}
		cands = make([]Candidate, 0, n)
		for i, b := range best {
			if b != b {
				return nil, errNaN(i)
			}
			if b < cfg.Conf {
				continue
			}
			// The first class with the best score (max gives +0 for -0 and
			// +0; == treats them alike, and the score is the class's own).
			bc := 0
			for out[(4+bc)*anchors+i] != b {
				bc++
			}
			score := out[(4+bc)*anchors+i]
			cx, cy, w, h := out[i], out[anchors+i], out[2*anchors+i], out[3*anchors+i]
			c, err := corners(i, bc, score, cx, cy, w, h)
			if err != nil {
				return nil, err
			}
			cands = append(cands, c)
		}
	case YOLOv5, YOLOX:
		n := 5 + classes
		if len(out) != n*anchors {
			return nil, fmt.Errorf("detect: output holds %d values, want %d*(5+%d)", len(out), anchors, classes)
		}
		var grid gridWalker
		if cfg.Format == YOLOX {
			if a := cfg.anchors(); a != anchors {
				return nil, fmt.Errorf("detect: yolox output has %d anchors, strides %v on %dx%d give %d", anchors, cfg.Strides, cfg.Preprocess.Width, cfg.Preprocess.Height, a)
			}
			grid = gridWalker{strides: cfg.Strides, w: cfg.Preprocess.Width, h: cfg.Preprocess.Height}
		}
		for i := 0; i < anchors; i++ {
			row := out[i*n : (i+1)*n]
			gx, gy, s := grid.next()
			obj := row[4]
			if obj != obj {
				return nil, errNaN(i)
			}
			best, bc := float32(math.Inf(-1)), 0
			for c, v := range row[5:] {
				if v != v {
					return nil, errNaN(i)
				}
				if v > best {
					best, bc = v, c
				}
			}
			score := obj * best
			if score < cfg.Conf {
				continue
			}
			cx, cy, w, h := row[0], row[1], row[2], row[3]
			if cfg.Format == YOLOX {
				fs := float32(s)
				cx = (cx + float32(gx)) * fs
				cy = (cy + float32(gy)) * fs
				w = float32(math.Exp(float64(w))) * fs
				h = float32(math.Exp(float64(h))) * fs
			}
			c, err := corners(i, bc, score, cx, cy, w, h)
			if err != nil {
				return nil, err
			}
			cands = append(cands, c)
		}
	default:
		return nil, fmt.Errorf("detect: unknown format %q", cfg.Format)
	}
	return cands, nil
}

func corners(i, class int, score, cx, cy, w, h float32) (Candidate, error) {
	c := Candidate{Anchor: i, Class: class, Score: score, X0: cx - w/2, Y0: cy - h/2, X1: cx + w/2, Y1: cy + h/2}
	for _, v := range [...]float32{c.X0, c.Y0, c.X1, c.Y1} {
		if v != v {
			return c, errNaN(i)
		}
	}
	return c, nil
}

func errNaN(anchor int) error {
	return fmt.Errorf("detect: model output is NaN at anchor %d (broken weights or input; check --scale/--mean/--std)", anchor)
}

// gridWalker yields the YOLOX grid cell and stride of each anchor in order.
type gridWalker struct {
	strides []int
	w, h    int
	level   int
	k       int // cell index within the level
}

func (g *gridWalker) next() (gx, gy, stride int) {
	if len(g.strides) == 0 {
		return 0, 0, 1
	}
	s := g.strides[g.level]
	nx := g.w / s
	gx, gy = g.k%nx, g.k/nx
	g.k++
	// Advance when the level's nx * (height/s) cells are done; Decode has
	// checked that the levels add up to the anchor count.
	if g.level+1 < len(g.strides) && g.k == nx*g.levelRows() {
		g.level++
		g.k = 0
	}
	return gx, gy, s
}

func (g *gridWalker) levelRows() int { return g.h / g.strides[g.level] }

// NMS keeps, per class, the highest-scoring candidates that overlap no kept
// candidate of the same class by IoU > iou: candidates are visited by score,
// highest first (ties: lower anchor first), and at most maxDet are kept. It
// returns the kept candidates in visiting order. cands is reordered.
func NMS(cands []Candidate, iou float32, maxDet int) []Candidate {
	// Highest score first; like the > it replaces, a NaN compares equal.
	slices.SortStableFunc(cands, func(a, b Candidate) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	kept := cands[:0:0]
	for _, c := range cands {
		if len(kept) >= maxDet {
			break
		}
		ok := true
		for _, k := range kept {
			if k.Class == c.Class && IoU(k, c) > iou {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	return kept
}

// IoU is the intersection over union of two boxes (0 for empty ones).
func IoU(a, b Candidate) float32 {
	iw := min(a.X1, b.X1) - max(a.X0, b.X0)
	ih := min(a.Y1, b.Y1) - max(a.Y0, b.Y0)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	union := (a.X1-a.X0)*(a.Y1-a.Y0) + (b.X1-b.X0)*(b.Y1-b.Y0) - inter
	if union < 1e-9 {
		union = 1e-9
	}
	return inter / union
}
