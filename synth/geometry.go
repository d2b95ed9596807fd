package synth

import (
	"math"
	"math/rand/v2"
	"slices"
)

// geometry is a shape in image coordinates: an axis-aligned ellipse or a
// polygon (even-odd rule), with its bounding box.
type geometry struct {
	ellipse        bool
	cx, cy, rx, ry float64   // ellipse
	pts            []float64 // polygon: x0, y0, x1, y1, ...

	x0, y0, x1, y1 float64 // bounds
}

// newGeometry makes shape number shape (an index into Labels) of extent ext
// pixels, centred on the origin. Rectangles and ellipses get a random aspect
// ratio and orientation; the other shapes are regular and upright.
func newGeometry(shape int, ext float64, r *rand.Rand) geometry {
	half := ext / 2
	switch Labels[shape].Name {
	case "circle":
		return ellipseGeom(half, half)
	case "ellipse":
		short := half * (0.5 + 0.15*r.Float64())
		if r.IntN(2) == 0 {
			return ellipseGeom(half, short)
		}
		return ellipseGeom(short, half)
	case "square":
		s := 0.9 * half
		return polyGeom(-s, -s, s, -s, s, s, -s, s)
	case "rectangle":
		short := half * (0.45 + 0.17*r.Float64())
		if r.IntN(2) == 0 {
			return polyGeom(-half, -short, half, -short, half, short, -half, short)
		}
		return polyGeom(-short, -half, short, -half, short, half, -short, half)
	case "triangle":
		h := ext * math.Sqrt(3) / 2
		return polyGeom(0, -h*2/3, half, h/3, -half, h/3)
	case "star":
		return regular(10, half, 0.382*half)
	case "hexagon":
		return regular(6, half, half)
	}
	panic("synth: no geometry for " + Labels[shape].Name)
}

func ellipseGeom(rx, ry float64) geometry {
	return geometry{ellipse: true, rx: rx, ry: ry, x0: -rx, y0: -ry, x1: rx, y1: ry}
}

// regular is an upright polygon of n vertices alternating between radii
// outer and inner (equal radii give a regular polygon), first vertex on top.
func regular(n int, outer, inner float64) geometry {
	pts := make([]float64, 0, 2*n)
	for k := range n {
		a := -math.Pi/2 + 2*math.Pi*float64(k)/float64(n)
		rad := outer
		if k%2 == 1 {
			rad = inner
		}
		pts = append(pts, rad*math.Cos(a), rad*math.Sin(a))
	}
	return polyGeom(pts...)
}

func polyGeom(pts ...float64) geometry {
	g := geometry{pts: pts, x0: math.Inf(1), y0: math.Inf(1), x1: math.Inf(-1), y1: math.Inf(-1)}
	for i := 0; i < len(pts); i += 2 {
		g.x0, g.x1 = min(g.x0, pts[i]), max(g.x1, pts[i])
		g.y0, g.y1 = min(g.y0, pts[i+1]), max(g.y1, pts[i+1])
	}
	return g
}

func (g geometry) translate(dx, dy float64) geometry {
	g.cx, g.cy = g.cx+dx, g.cy+dy
	g.x0, g.x1, g.y0, g.y1 = g.x0+dx, g.x1+dx, g.y0+dy, g.y1+dy
	if g.pts != nil {
		pts := make([]float64, len(g.pts))
		for i := 0; i < len(pts); i += 2 {
			pts[i], pts[i+1] = g.pts[i]+dx, g.pts[i+1]+dy
		}
		g.pts = pts
	}
	return g
}

// spans appends to buf the x intervals [a, b) where the horizontal line at y
// is inside the shape, as pairs a0, b0, a1, b1, ... in increasing order.
func (g geometry) spans(y float64, buf []float64) []float64 {
	buf = buf[:0]
	if g.ellipse {
		t := (y - g.cy) / g.ry
		if t*t >= 1 {
			return buf
		}
		h := g.rx * math.Sqrt(1-t*t)
		return append(buf, g.cx-h, g.cx+h)
	}
	n := len(g.pts) / 2
	for i, j := 0, n-1; i < n; j, i = i, i+1 {
		xi, yi, xj, yj := g.pts[2*i], g.pts[2*i+1], g.pts[2*j], g.pts[2*j+1]
		if (yi > y) != (yj > y) {
			buf = append(buf, xi+(xj-xi)*(y-yi)/(yj-yi))
		}
	}
	slices.Sort(buf)
	return buf
}

// coverage is a shape rasterised with ss x ss supersampling: cov holds, for
// each pixel of the rectangle at (x0, y0) of size w x h, how many of the ss*ss
// subsamples are inside the shape.
type coverage struct {
	x0, y0, w, h int
	cov          []uint8
}

const (
	ss   = 4 // subsamples per pixel side
	full = ss * ss
)

// rasterise computes the coverage of g clipped to a width x height image.
func rasterise(g geometry, width, height int) coverage {
	x0, y0 := max(0, int(math.Floor(g.x0))), max(0, int(math.Floor(g.y0)))
	x1, y1 := min(width, int(math.Ceil(g.x1))), min(height, int(math.Ceil(g.y1)))
	c := coverage{x0: x0, y0: y0, w: max(0, x1-x0), h: max(0, y1-y0)}
	c.cov = make([]uint8, c.w*c.h)
	var buf []float64
	for sy := y0 * ss; sy < y1*ss; sy++ {
		row := c.cov[(sy/ss-y0)*c.w:][:c.w]
		buf = g.spans((float64(sy)+0.5)/ss, buf)
		for i := 0; i+1 < len(buf); i += 2 {
			// Subsample column sx sits at (sx+0.5)/ss; it is inside when
			// a <= (sx+0.5)/ss < b.
			lo := max(x0*ss, int(math.Ceil(buf[i]*ss-0.5)))
			hi := min(x1*ss, int(math.Ceil(buf[i+1]*ss-0.5)))
			for sx := lo; sx < hi; sx++ {
				row[sx/ss-x0]++
			}
		}
	}
	return c
}

// box returns the smallest [x0, y0, x1, y1) holding every pixel at least half
// covered, and false when there is none.
func (c coverage) box() ([4]int, bool) {
	b := [4]int{math.MaxInt, math.MaxInt, -1, -1}
	for y := range c.h {
		for x, v := range c.cov[y*c.w : (y+1)*c.w] {
			if v >= full/2 {
				b[0], b[1] = min(b[0], c.x0+x), min(b[1], c.y0+y)
				b[2], b[3] = max(b[2], c.x0+x+1), max(b[3], c.y0+y+1)
			}
		}
	}
	return b, b[2] >= 0
}
