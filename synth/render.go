package synth

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
)

// Options says what Generate writes and how Render draws. Zero numeric fields
// and an empty Lang take the defaults of DefaultOptions; Photo and BadSamples
// are taken as given, so start from DefaultOptions to get photo backgrounds.
type Options struct {
	Samples  int    // good samples in all; default 64
	PerShard int    // samples per tar shard; default 16
	Width    int    // image width in pixels; default 256
	Height   int    // image height in pixels; default 256
	Seed     uint64 // sample k is drawn from rand.NewPCG(Seed, k); default 1
	Quality  int    // JPEG quality 1..100; default 90
	// Lang picks the language of each .txt caption: "mixed" (about 2/3
	// Chinese, 1/3 English; the default), "zh" or "en". The json always holds
	// both.
	Lang string
	// Photo draws a busy photo-like background instead of a flat one.
	Photo bool
	// ObjectMix weighs scenes of 1, 2 and 3 objects (relative weights, e.g.
	// {1, 2, 1} for prompts heavy in two-object attribute binding). All
	// zero: uniform, the bundled sample's draw. A scene that cannot fit its
	// objects still gets fewer.
	ObjectMix [3]float64
	// BadSamples appends the broken samples of BadKinds to the last shard.
	BadSamples bool
}

// DefaultOptions returns the options of the bundled sample (without broken
// samples): 64 photo-like 256x256 images in 4 shards.
func DefaultOptions() Options {
	return Options{Samples: 64, PerShard: 16, Width: 256, Height: 256, Seed: 1, Quality: 90, Lang: "mixed", Photo: true}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Samples == 0 {
		o.Samples = d.Samples
	}
	if o.PerShard == 0 {
		o.PerShard = d.PerShard
	}
	if o.Width == 0 {
		o.Width = d.Width
	}
	if o.Height == 0 {
		o.Height = d.Height
	}
	if o.Seed == 0 {
		o.Seed = d.Seed
	}
	if o.Quality == 0 {
		o.Quality = d.Quality
	}
	if o.Lang == "" {
		o.Lang = d.Lang
	}
	return o
}

// minSide is the smallest image side that fits three small shapes.
const minSide = 32

func (o Options) validate() error {
	switch {
	case o.Samples < 0:
		return fmt.Errorf("synth: samples %d, want >= 1", o.Samples)
	case o.PerShard < 0:
		return fmt.Errorf("synth: per-shard %d, want >= 1", o.PerShard)
	case o.Width < minSide || o.Height < minSide || o.Width > 8192 || o.Height > 8192:
		return fmt.Errorf("synth: image size %dx%d, want each side in %d..8192", o.Width, o.Height, minSide)
	case o.Quality < 1 || o.Quality > 100:
		return fmt.Errorf("synth: quality %d, want 1..100", o.Quality)
	case o.ObjectMix[0] < 0 || o.ObjectMix[1] < 0 || o.ObjectMix[2] < 0:
		return fmt.Errorf("synth: object mix %v: weights must be >= 0", o.ObjectMix)
	case o.Lang != "mixed" && o.Lang != "zh" && o.Lang != "en":
		return fmt.Errorf("synth: lang %q, want mixed, zh or en", o.Lang)
	}
	return nil
}

// Render draws one scene of opt.Width x opt.Height (defaults as in Options)
// on a photo-like or flat background and returns the image and its ground
// truth. The result depends only on r's state and the options.
func Render(r *rand.Rand, opt Options) (*image.RGBA, Scene) {
	opt = opt.withDefaults()
	w, h := max(opt.Width, minSide), max(opt.Height, minSide)

	objs, covs := drawLayout(r, w, h, opt.ObjectMix)

	var canvas []float32
	if opt.Photo {
		canvas = photoBackground(r, w, h)
	} else {
		canvas = flatBackground(r, w, h)
	}
	for i, c := range covs {
		composite(canvas, w, c, objs[i].paint)
	}
	if opt.Photo {
		addNoise(r, canvas)
	}

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p, d := 0, 0; p < len(canvas); p, d = p+3, d+4 {
		img.Pix[d] = to8(canvas[p])
		img.Pix[d+1] = to8(canvas[p+1])
		img.Pix[d+2] = to8(canvas[p+2])
		img.Pix[d+3] = 255
	}
	s := Scene{Width: w, Height: h, Objects: objs}
	s.CaptionEn, s.CaptionZh = Caption(objs)
	return img, s
}

// drawLayout lays a scene out and rasterises its shapes, redrawing it until
// the rendered boxes (which the captions are made from) are unambiguous.
func drawLayout(r *rand.Rand, w, h int, mix [3]float64) ([]Object, []coverage) {
	for try := 0; ; try++ {
		objs := layout(r, w, h, mix)
		if try >= 10 {
			objs = objs[:1]
		}
		covs := make([]coverage, len(objs))
		ok := true
		for i := range objs {
			covs[i] = rasterise(objs[i].geom, w, h)
			b, any := covs[i].box()
			ok = ok && any
			objs[i].Box = b
		}
		if ok && sceneOK(objs, w, h) {
			return objs, covs
		}
	}
}

func to8(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// composite blends colour c over the canvas by coverage.
func composite(canvas []float32, width int, c coverage, col color.RGBA) {
	rgb := [3]float32{float32(col.R), float32(col.G), float32(col.B)}
	for y := range c.h {
		row := canvas[((c.y0+y)*width+c.x0)*3:]
		for x, v := range c.cov[y*c.w : (y+1)*c.w] {
			if v == 0 {
				continue
			}
			a := float32(v) / full
			px := row[3*x : 3*x+3]
			for k := range 3 {
				px[k] += (rgb[k] - px[k]) * a
			}
		}
	}
}

// muted returns a desaturated mid-tone colour: far from every entry of
// Colors, so that shapes stand out and their colour names stay true.
func muted(r *rand.Rand, vlo, vhi float64) [3]float32 {
	h, s, v := r.Float64(), 0.08+0.3*r.Float64(), vlo+(vhi-vlo)*r.Float64()
	return hsv(h, s, v)
}

func hsv(h, s, v float64) [3]float32 {
	h = 6 * (h - math.Floor(h))
	i := int(h)
	f := h - float64(i)
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	var rgb [3]float64
	switch i % 6 {
	case 0:
		rgb = [3]float64{v, t, p}
	case 1:
		rgb = [3]float64{q, v, p}
	case 2:
		rgb = [3]float64{p, v, t}
	case 3:
		rgb = [3]float64{p, q, v}
	case 4:
		rgb = [3]float64{t, p, v}
	default:
		rgb = [3]float64{v, p, q}
	}
	return [3]float32{float32(255 * rgb[0]), float32(255 * rgb[1]), float32(255 * rgb[2])}
}

func flatBackground(r *rand.Rand, w, h int) []float32 {
	c := muted(r, 0.45, 0.7)
	canvas := make([]float32, w*h*3)
	for p := 0; p < len(canvas); p += 3 {
		canvas[p], canvas[p+1], canvas[p+2] = c[0], c[1], c[2]
	}
	return canvas
}

// Photo background parameters: value-noise octaves (cell size as a fraction of
// the shorter side, amplitude in 8-bit levels) from large to fine, the range
// of blob sizes and strengths, and the clamp that keeps the background off the
// extremes where white and black shapes live.
var octaves = []struct{ cell, amp float64 }{
	{0.40, 26}, {0.14, 16}, {0.05, 10}, {0.018, 7}, {0.007, 5},
}

const (
	blobSigmaLo, blobSigmaHi = 0.06, 0.25
	blobAmp                  = 45
	bgLo, bgHi               = 28, 228
	noiseSigma               = 3.0
)

// photoBackground draws a smooth bilinear gradient between four muted corner
// colours, a few soft colour blobs and a fractal value-noise texture with a
// colour tint per octave: the low- and mid-frequency content of a photograph.
func photoBackground(r *rand.Rand, w, h int) []float32 {
	side := float64(min(w, h))
	canvas := make([]float32, w*h*3)

	var corner [4][3]float32
	for i := range corner {
		corner[i] = muted(r, 0.35, 0.8)
	}
	for y := range h {
		ty := float32(y) / float32(h-1)
		for x := range w {
			tx := float32(x) / float32(w-1)
			p := canvas[(y*w+x)*3:]
			for k := range 3 {
				top := corner[0][k] + (corner[1][k]-corner[0][k])*tx
				bot := corner[2][k] + (corner[3][k]-corner[2][k])*tx
				p[k] = top + (bot-top)*ty
			}
		}
	}

	// Gaussian blobs are separable: exp(-(dx²+dy²)/2σ²) = gx(x)·gy(y).
	gx, gy := make([]float32, w), make([]float32, h)
	for range 3 + r.IntN(5) {
		cx, cy := r.Float64()*float64(w), r.Float64()*float64(h)
		sigma := side * (blobSigmaLo + (blobSigmaHi-blobSigmaLo)*r.Float64())
		var d [3]float32
		for k := range d {
			d[k] = float32(blobAmp * (2*r.Float64() - 1))
		}
		for x := range gx {
			t := (float64(x) - cx) / sigma
			gx[x] = float32(math.Exp(-t * t / 2))
		}
		for y := range gy {
			t := (float64(y) - cy) / sigma
			gy[y] = float32(math.Exp(-t * t / 2))
		}
		for y := range h {
			if gy[y] < 1e-3 {
				continue
			}
			row := canvas[y*w*3:]
			for x := range w {
				g := gx[x] * gy[y]
				row[3*x] += d[0] * g
				row[3*x+1] += d[1] * g
				row[3*x+2] += d[2] * g
			}
		}
	}

	for _, oc := range octaves {
		cell := max(2, oc.cell*side)
		var tint [3]float32
		for k := range tint {
			tint[k] = float32(oc.amp * (0.7 + 0.6*r.Float64()))
		}
		n := newValueNoise(r, w, h, cell)
		for y := range h {
			row := canvas[y*w*3:]
			for x := range w {
				v := n.at(x, y)
				row[3*x] += tint[0] * v
				row[3*x+1] += tint[1] * v
				row[3*x+2] += tint[2] * v
			}
		}
	}

	for i, v := range canvas {
		canvas[i] = min(bgHi, max(bgLo, v))
	}
	return canvas
}

// valueNoise is random values in [-1, 1] on a grid of cell-pixel cells,
// interpolated with smoothstep weights.
type valueNoise struct {
	gw     int
	grid   []float32
	ix, iy []int     // grid cell of each column / row
	tx, ty []float32 // smoothstep weight of each column / row
}

func newValueNoise(r *rand.Rand, w, h int, cell float64) valueNoise {
	n := valueNoise{gw: int(float64(w)/cell) + 2}
	gh := int(float64(h)/cell) + 2
	n.grid = make([]float32, n.gw*gh)
	for i := range n.grid {
		n.grid[i] = float32(2*r.Float64() - 1)
	}
	axis := func(size int) ([]int, []float32) {
		idx, wt := make([]int, size), make([]float32, size)
		for i := range size {
			f := float64(i) / cell
			fl := math.Floor(f)
			t := f - fl
			idx[i], wt[i] = int(fl), float32(t*t*(3-2*t))
		}
		return idx, wt
	}
	n.ix, n.tx = axis(w)
	n.iy, n.ty = axis(h)
	return n
}

func (n valueNoise) at(x, y int) float32 {
	g := n.grid[n.iy[y]*n.gw+n.ix[x]:]
	tx, ty := n.tx[x], n.ty[y]
	top := g[0] + (g[1]-g[0])*tx
	bot := g[n.gw] + (g[n.gw+1]-g[n.gw])*tx
	return top + (bot-top)*ty
}

// addNoise adds mild sensor-like noise: Gaussian luminance noise plus a
// little independent noise per channel.
func addNoise(r *rand.Rand, canvas []float32) {
	for p := 0; p < len(canvas); p += 3 {
		l := float32(noiseSigma * r.NormFloat64())
		bits := r.Uint64()
		for k := range 3 {
			// A uniform value in [-1.5, 1.5) from 16 bits per channel.
			c := float32(bits>>(16*k)&0xffff)/65536*3 - 1.5
			canvas[p+k] += l + c
		}
	}
}
