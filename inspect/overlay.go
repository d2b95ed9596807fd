package inspect

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"

	"github.com/kediff/kediff/shards"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The overlay colours, also shown in the report's legend. They stay apart
// from each other and from the saturated colours of the bundled sample's
// shapes; every box line has a black edge on both sides so that it shows on
// any background.
var (
	// KeptColor outlines the kept (eye-catching) detections, solid.
	KeptColor = color.RGBA{0, 255, 64, 255}
	// DroppedColor outlines the detections the selection dropped, dashed.
	DroppedColor = color.RGBA{255, 0, 200, 255}
	// MaskColor tints the latent cells that the loss mask weights, blended
	// over the image with weight MaskAlpha/255, and outlines the region
	// they make (one solid pixel inside its edge).
	MaskColor = color.RGBA{0, 150, 255, 255}
)

// MaskAlpha is the weight of MaskColor in a tinted cell, out of 255:
// out = (img*(255-MaskAlpha) + MaskColor*MaskAlpha + 127) / 255 per channel.
const MaskAlpha = 110

// BoxWidth is the width in pixels of a box's coloured line (the black
// edges come on top: one pixel outside and one inside).
const BoxWidth = 2

// Display sizes of the overlay: images with a longer side under minSide are
// enlarged by a whole factor (nearest neighbour, so pixels stay sharp and
// exact), over maxSide reduced to it (Catmull-Rom, or bilinear from images
// over 4*maxSide); between, kept as stored.
const (
	minSide = 256
	maxSide = 512
)

// displaySize is the overlay's size for a stored image of w x h.
func displaySize(w, h int) (int, int) {
	long := max(w, h)
	switch {
	case long <= 0:
		return 0, 0
	case long < minSide:
		k := (minSide + long - 1) / long
		return w * k, h * k
	case long > maxSide:
		s := float64(maxSide) / float64(long)
		return max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
	}
	return w, h
}

// drawOverlay draws the stored image at its display size with the loss
// mask tinted on its latent grid (shape [rows, cols], row-major, one byte a
// cell), then every detection: the dropped ones dashed in DroppedColor, the
// kept ones solid in KeptColor, each with its label and score.
func drawOverlay(src image.Image, mask []byte, maskShape []int32, objects []shards.Object) *image.RGBA {
	b := src.Bounds()
	w, h := displaySize(b.Dx(), b.Dy())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	switch {
	case w == b.Dx() && h == b.Dy():
		draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	case w > b.Dx():
		xdraw.NearestNeighbor.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	case max(b.Dx(), b.Dy()) <= 4*maxSide:
		xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	default: // a photo of many megapixels: CatmullRom would take seconds
		xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	}
	if rows, cols, ok := maskGrid(mask, maskShape); ok {
		drawMask(dst, mask, rows, cols)
	}
	var labels []label
	for _, kept := range []bool{false, true} {
		for _, o := range objects {
			if o.Kept != kept {
				continue
			}
			r := boxRect(o, w, h)
			col := DroppedColor
			if kept {
				col = KeptColor
			}
			drawBox(dst, r, col, !kept)
			labels = append(labels, label{text: labelText(o), box: r, col: col})
		}
	}
	var placed []image.Rectangle
	for _, l := range labels {
		placed = append(placed, drawLabel(dst, l, placed))
	}
	return dst
}

// drawMask tints the weighted cells and outlines the region they make in
// MaskColor, one pixel inside its edge.
func drawMask(dst *image.RGBA, mask []byte, rows, cols int) {
	w, h := dst.Bounds().Dx(), dst.Bounds().Dy()
	on := func(r, c int) bool { return r >= 0 && r < rows && c >= 0 && c < cols && mask[r*cols+c] != 0 }
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			if !on(r, c) {
				continue
			}
			cell := cellRect(r, c, rows, cols, w, h)
			tint(dst, cell)
			edge := func(x0, y0, x1, y1 int) {
				draw.Draw(dst, image.Rect(x0, y0, x1, y1), image.NewUniform(MaskColor), image.Point{}, draw.Src)
			}
			if !on(r-1, c) {
				edge(cell.Min.X, cell.Min.Y, cell.Max.X, cell.Min.Y+1)
			}
			if !on(r+1, c) {
				edge(cell.Min.X, cell.Max.Y-1, cell.Max.X, cell.Max.Y)
			}
			if !on(r, c-1) {
				edge(cell.Min.X, cell.Min.Y, cell.Min.X+1, cell.Max.Y)
			}
			if !on(r, c+1) {
				edge(cell.Max.X-1, cell.Min.Y, cell.Max.X, cell.Max.Y)
			}
		}
	}
}

// maskGrid checks a loss mask against its shape.
func maskGrid(mask []byte, shape []int32) (rows, cols int, ok bool) {
	if len(shape) != 2 || shape[0] <= 0 || shape[1] <= 0 {
		return 0, 0, false
	}
	rows, cols = int(shape[0]), int(shape[1])
	return rows, cols, len(mask) == rows*cols
}

// cellRect is latent cell (r, c)'s rectangle on a w x h overlay.
func cellRect(r, c, rows, cols, w, h int) image.Rectangle {
	return image.Rect(c*w/cols, r*h/rows, (c+1)*w/cols, (r+1)*h/rows)
}

// tint blends MaskColor over r.
func tint(dst *image.RGBA, r image.Rectangle) {
	r = r.Intersect(dst.Bounds())
	a := uint32(MaskAlpha)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		p := dst.Pix[dst.PixOffset(r.Min.X, y):]
		for x := 0; x < r.Dx(); x++ {
			q := p[4*x : 4*x+4]
			q[0] = uint8((uint32(q[0])*(255-a) + uint32(MaskColor.R)*a + 127) / 255)
			q[1] = uint8((uint32(q[1])*(255-a) + uint32(MaskColor.G)*a + 127) / 255)
			q[2] = uint8((uint32(q[2])*(255-a) + uint32(MaskColor.B)*a + 127) / 255)
			q[3] = 255
		}
	}
}

// boxRect is a detection's box in overlay pixels, clamped to the image.
// Max is inclusive: the outline's last row and column.
func boxRect(o shards.Object, w, h int) image.Rectangle {
	clamp := func(v float32, n int) int {
		p := int(math.Round(float64(v) * float64(n)))
		return min(max(p, 0), n-1)
	}
	x0, y0, x1, y1 := clamp(o.X0, w), clamp(o.Y0, h), clamp(o.X1, w), clamp(o.Y1, h)
	if x1 < x0 {
		x0, x1 = x1, x0
	}
	if y1 < y0 {
		y0, y1 = y1, y0
	}
	return image.Rectangle{Min: image.Pt(x0, y0), Max: image.Pt(x1, y1)}
}

var black = color.RGBA{0, 0, 0, 255}

// drawBox draws r's outline BoxWidth pixels wide inwards from r's edge,
// with a black pixel outside and inside; dashed leaves gaps (6 on, 4 off)
// along the outline.
func drawBox(dst *image.RGBA, r image.Rectangle, col color.RGBA, dashed bool) {
	outline(dst, r.Inset(-1), black, dashed)
	for i := 0; i < BoxWidth; i++ {
		outline(dst, r.Inset(i), col, dashed)
	}
	outline(dst, r.Inset(BoxWidth), black, dashed)
}

// outline sets the pixels of a rectangle's border (Max inclusive). For a
// dashed line the pattern follows the position along each edge.
func outline(dst *image.RGBA, r image.Rectangle, col color.RGBA, dashed bool) {
	if r.Max.X < r.Min.X || r.Max.Y < r.Min.Y {
		return
	}
	on := func(i int) bool { return !dashed || i%10 < 6 }
	set := func(x, y int) {
		if (image.Point{x, y}).In(dst.Bounds()) {
			dst.SetRGBA(x, y, col)
		}
	}
	for x := r.Min.X; x <= r.Max.X; x++ {
		if on(x - r.Min.X) {
			set(x, r.Min.Y)
			set(x, r.Max.Y)
		}
	}
	for y := r.Min.Y; y <= r.Max.Y; y++ {
		if on(y - r.Min.Y) {
			set(r.Min.X, y)
			set(r.Max.X, y)
		}
	}
}

type label struct {
	text string
	box  image.Rectangle
	col  color.RGBA
}

// labelText is "label 0.87".
func labelText(o shards.Object) string {
	l := o.Label
	if l == "" {
		l = o.LabelZh
	}
	return l + " " + formatScore(o.Score)
}

func formatScore(s float32) string {
	v := int(math.Round(float64(s) * 100))
	v = min(max(v, 0), 100)
	if v == 100 {
		return "1.00"
	}
	return "0." + string(rune('0'+v/10)) + string(rune('0'+v%10))
}

// labelFace is the label font: 7x13 pixels, ASCII (other runes show as a box).
var labelFace = basicfont.Face7x13

// drawLabel writes a detection's label on a tag of its colour: above the
// box's top-left corner, else just inside its top, below it or inside its
// bottom, whichever first fits in the image without covering a tag placed
// before (above the box when none does). It returns the tag's rectangle.
func drawLabel(dst *image.RGBA, l label, placed []image.Rectangle) image.Rectangle {
	const padX, tagH = 2, 14
	bounds := dst.Bounds()
	tw := font.MeasureString(labelFace, l.text).Ceil() + 2*padX
	x := max(min(l.box.Min.X-1, bounds.Dx()-tw), 0)
	tops := []int{
		l.box.Min.Y - 1 - tagH,        // above
		l.box.Min.Y + BoxWidth + 1,    // inside, at the top
		l.box.Max.Y + 2,               // below
		l.box.Max.Y - BoxWidth - tagH, // inside, at the bottom
	}
	tag := image.Rect(x, tops[0], x+tw, tops[0]+tagH)
	if tag.Min.Y < 0 {
		tag = tag.Add(image.Pt(0, tops[1]-tops[0]))
	}
	for _, y := range tops {
		t := image.Rect(x, y, x+tw, y+tagH)
		if t.In(bounds) && !slices.ContainsFunc(placed, t.Overlaps) {
			tag = t
			break
		}
	}
	draw.Draw(dst, tag, image.NewUniform(l.col), image.Point{}, draw.Src)
	d := font.Drawer{Dst: dst, Src: image.NewUniform(black), Face: labelFace,
		Dot: fixed.P(tag.Min.X+padX, tag.Min.Y+labelFace.Ascent+1)}
	d.DrawString(l.text)
	return tag
}
