package caption

import (
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"math"
	"sync"

	"github.com/kediff/kediff/onnx"
)

// Preprocessor turns images into the encoder's pixel_values as a Hugging Face
// image processor (ViTImageProcessor and kin) configured by
// preprocessor_config.json would: convert to RGB, resize, rescale (x *
// rescale_factor, 1/255 by default) and normalize ((x - mean) / std), laid
// out channel-first.
//
// Resizing is a separable triangle (bilinear) filter whose support widens
// with the downscale factor, as PIL's BILINEAR resample does; it works in
// float32 throughout, so it can differ from PIL's 8-bit passes by about one
// grey level. Images already at the target size are not resampled. Only
// resample 2 (bilinear, the ViT default) and 3 (bicubic, treated as
// bilinear) are accepted.
type Preprocessor struct {
	Resize       bool
	Width        int // target size; 0 when Resize is false and ShortestEdge is 0
	Height       int
	ShortestEdge int // resize the shorter side to this (then center-crop, if CropWidth > 0)
	CropWidth    int
	CropHeight   int
	Rescale      bool
	RescaleScale float32
	Normalize    bool
	Mean, Std    [3]float32
}

type preprocessorJSON struct {
	DoResize       *bool           `json:"do_resize"`
	Size           json.RawMessage `json:"size"`
	Resample       *int            `json:"resample"`
	DoCenterCrop   *bool           `json:"do_center_crop"`
	CropSize       json.RawMessage `json:"crop_size"`
	DoRescale      *bool           `json:"do_rescale"`
	RescaleFactor  *float64        `json:"rescale_factor"`
	DoNormalize    *bool           `json:"do_normalize"`
	ImageMean      json.RawMessage `json:"image_mean"`
	ImageStd       json.RawMessage `json:"image_std"`
	ImageProcessor string          `json:"image_processor_type"`
}

// LoadPreprocessor reads a preprocessor_config.json.
func LoadPreprocessor(path string) (*Preprocessor, error) {
	data, err := readLimited(path, MaxConfigBytes, "preprocessor_config.json")
	if err != nil {
		return nil, fmt.Errorf("caption: preprocessor: %w", err)
	}
	p, err := ParsePreprocessor(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return p, nil
}

// ParsePreprocessor reads the bytes of a preprocessor_config.json. Missing
// fields take the ViTImageProcessor defaults (resize to 224x224, rescale by
// 1/255, normalize with mean = std = 0.5).
func ParsePreprocessor(data []byte) (*Preprocessor, error) {
	var j preprocessorJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("caption: preprocessor_config.json is not valid JSON: %v", err)
	}
	on := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	p := &Preprocessor{Resize: on(j.DoResize, true), Rescale: on(j.DoRescale, true), RescaleScale: 1.0 / 255,
		Normalize: on(j.DoNormalize, true), Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	if j.RescaleFactor != nil {
		p.RescaleScale = float32(*j.RescaleFactor)
	}
	if j.Resample != nil && *j.Resample != 2 && *j.Resample != 3 {
		return nil, fmt.Errorf("caption: preprocessor resample %d is not supported (want 2, bilinear)", *j.Resample)
	}
	if p.Resize {
		w, h, short, err := parseSize(j.Size, 224)
		if err != nil {
			return nil, fmt.Errorf("caption: preprocessor size: %v", err)
		}
		p.Width, p.Height, p.ShortestEdge = w, h, short
		if on(j.DoCenterCrop, false) {
			cw, ch, _, err := parseSize(j.CropSize, 224)
			if err != nil || cw == 0 {
				return nil, fmt.Errorf("caption: preprocessor crop_size: want {\"height\", \"width\"} or a number")
			}
			p.CropWidth, p.CropHeight = cw, ch
		}
	}
	for i, f := range []struct {
		raw json.RawMessage
		dst *[3]float32
	}{{j.ImageMean, &p.Mean}, {j.ImageStd, &p.Std}} {
		if isNull(f.raw) {
			continue
		}
		v, err := parseTriple(f.raw)
		if err != nil {
			return nil, fmt.Errorf("caption: preprocessor %s: %v", []string{"image_mean", "image_std"}[i], err)
		}
		*f.dst = v
	}
	for c := range 3 {
		if p.Normalize && p.Std[c] == 0 {
			return nil, fmt.Errorf("caption: preprocessor image_std has a zero")
		}
	}
	return p, nil
}

// parseSize reads {"height", "width"}, {"shortest_edge"} or a bare number.
func parseSize(raw json.RawMessage, def int) (w, h, short int, err error) {
	if isNull(raw) {
		return def, def, 0, nil
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, n, 0, check(n, n)
	}
	var m map[string]int
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, 0, 0, fmt.Errorf("%s is not {\"height\": H, \"width\": W}", raw)
	}
	if s, ok := m["shortest_edge"]; ok {
		return 0, 0, s, check(s, s)
	}
	return m["width"], m["height"], 0, check(m["width"], m["height"])
}

func check(w, h int) error {
	if w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return fmt.Errorf("size %dx%d, want each side in 1..8192", w, h)
	}
	return nil
}

func parseTriple(raw json.RawMessage) ([3]float32, error) {
	var one float32
	if json.Unmarshal(raw, &one) == nil {
		return [3]float32{one, one, one}, nil
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil || len(v) != 3 {
		return [3]float32{}, fmt.Errorf("%s is not a number or three numbers", raw)
	}
	return [3]float32{v[0], v[1], v[2]}, nil
}

// OutputSize is the width and height of the pixel_values for a source image
// of w x h.
func (p *Preprocessor) OutputSize(w, h int) (int, int) {
	switch {
	case !p.Resize:
		return w, h
	case p.CropWidth > 0:
		return p.CropWidth, p.CropHeight
	case p.ShortestEdge > 0:
		return shortEdge(w, h, p.ShortestEdge)
	}
	return p.Width, p.Height
}

func shortEdge(w, h, s int) (int, int) {
	if w <= h {
		return s, max(1, int(float64(h)*float64(s)/float64(w)))
	}
	return max(1, int(float64(w)*float64(s)/float64(h))), s
}

// Apply writes img's pixel values ([3, H, W], channel-first) into dst, which
// must hold 3*W*H values for (W, H) = OutputSize(img's size).
func (p *Preprocessor) Apply(img image.Image, dst []float32) error {
	if img == nil {
		return fmt.Errorf("image is nil")
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return fmt.Errorf("image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	ow, oh := p.OutputSize(b.Dx(), b.Dy())
	if len(dst) != 3*ow*oh {
		return fmt.Errorf("caption: preprocess: dst holds %d values, want %d", len(dst), 3*ow*oh)
	}
	sc := scratchPool.Get()
	defer scratchPool.Put(sc)
	sw, sh := b.Dx(), b.Dy()
	sc.planar = grow(sc.planar, 3*sw*sh)
	src := planarInto(img, sc.planar)
	if p.Resize {
		rw, rh := p.Width, p.Height
		if p.ShortestEdge > 0 {
			rw, rh = shortEdge(sw, sh, p.ShortestEdge)
		}
		if rw != sw || rh != sh {
			sc.tmp = grow(sc.tmp, 3*rw*sh)
			sc.resized = grow(sc.resized, 3*rw*rh)
			src = resizePlanesInto(src, sw, sh, rw, rh, sc.tmp, sc.resized)
			sw, sh = rw, rh
		}
		if p.CropWidth > 0 && (sw != p.CropWidth || sh != p.CropHeight) {
			sc.crop = grow(sc.crop, 3*p.CropWidth*p.CropHeight)
			clear(sc.crop)
			src, sw, sh = centerCropInto(src, sw, sh, p.CropWidth, p.CropHeight, sc.crop), p.CropWidth, p.CropHeight
		}
	}
	n := sw * sh
	for c := range 3 {
		scale, shift := float32(1), float32(0)
		if p.Rescale {
			scale = p.RescaleScale
		}
		if p.Normalize {
			scale, shift = scale/p.Std[c], -p.Mean[c]/p.Std[c]
		}
		out := dst[c*n : (c+1)*n]
		if affineC(out, src[c*n:(c+1)*n], scale, shift) {
			continue
		}
		for i, v := range src[c*n : (c+1)*n] {
			out[i] = v*scale + shift
		}
	}
	return nil
}

// scratch holds Apply's intermediate planes, reused across calls.
type scratch struct{ planar, tmp, resized, crop []float32 }

var scratchPool onnx.FreeList[scratch]

// grow returns b resized to n values, reallocated only when too small.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// planar returns img as float32 RGB planes in 0..255.
func planar(img image.Image) []float32 {
	b := img.Bounds()
	return planarInto(img, make([]float32, 3*b.Dx()*b.Dy()))
}

// planarInto writes img as float32 RGB planes in 0..255 into out (3*W*H
// values) and returns it. *image.YCbCr (what image/jpeg returns) is converted
// directly, with the same values draw.Draw into RGBA gives.
func planarInto(img image.Image, out []float32) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	if m, ok := img.(*image.YCbCr); ok {
		onnx.YCbCrPlanes(m, onnx.Identity, out[:n], out[n:2*n], out[2*n:3*n])
		return out
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	for y := range h {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*w]
		ro, go_, bo := out[y*w:(y+1)*w], out[n+y*w:n+(y+1)*w], out[2*n+y*w:2*n+(y+1)*w]
		for x := range w {
			ro[x] = float32(row[4*x])
			go_[x] = float32(row[4*x+1])
			bo[x] = float32(row[4*x+2])
		}
	}
	return out
}

// resizePlanes resamples 3 planes from sw x sh to dw x dh with a triangle
// filter, horizontally then vertically.
func resizePlanes(src []float32, sw, sh, dw, dh int) []float32 {
	return resizePlanesInto(src, sw, sh, dw, dh, make([]float32, 3*dw*sh), make([]float32, 3*dw*dh))
}

// resizePlanesInto is resizePlanes with the intermediate (3*dw*sh values) and
// output (3*dw*dh values) buffers given; it returns out.
func resizePlanesInto(src []float32, sw, sh, dw, dh int, tmp, out []float32) []float32 {
	if resizeC(src, sw, sh, dw, dh, cachedPacked(sw, dw), cachedPacked(sh, dh), tmp, out) {
		return out
	}
	xs := cachedWeights(sw, dw)
	ys := cachedWeights(sh, dh)
	for c := range 3 {
		for y := range sh {
			row := src[c*sw*sh+y*sw : c*sw*sh+(y+1)*sw]
			trow := tmp[c*dw*sh+y*dw : c*dw*sh+(y+1)*dw]
			for x, wt := range xs {
				var s float32
				taps := row[wt.first : wt.first+len(wt.w)]
				for k, v := range wt.w {
					s += taps[k] * v
				}
				trow[x] = s
			}
		}
	}
	// Vertical pass row by row: each output value still sums its taps in
	// tap order from zero, so the values are those of a per-pixel loop.
	for c := range 3 {
		plane := tmp[c*dw*sh : (c+1)*dw*sh]
		for y, wt := range ys {
			orow := out[c*dw*dh+y*dw : c*dw*dh+(y+1)*dw]
			clear(orow)
			for k, v := range wt.w {
				trow := plane[(wt.first+k)*dw : (wt.first+k+1)*dw]
				trow = trow[:len(orow)]
				for x, t := range trow {
					orow[x] += t * v
				}
			}
		}
	}
	return out
}

// weightCache maps [2]int{src, dst} to filterWeights(src, dst).
var weightCache sync.Map

func cachedWeights(src, dst int) []taps {
	k := [2]int{src, dst}
	if v, ok := weightCache.Load(k); ok {
		return v.([]taps)
	}
	t := filterWeights(src, dst)
	weightCache.Store(k, t)
	return t
}

type taps struct {
	first int
	w     []float32
}

// packedTaps is filterWeights laid out for C: output i sums n[i] taps from
// first[i], with weights w[i*k:], k the most taps of any output.
type packedTaps struct {
	first, n []int32
	w        []float32
	k        int
}

// packedCache maps [2]int{src, dst} to the packedTaps of filterWeights(src, dst).
var packedCache sync.Map

func cachedPacked(src, dst int) *packedTaps {
	key := [2]int{src, dst}
	if v, ok := packedCache.Load(key); ok {
		return v.(*packedTaps)
	}
	ts := cachedWeights(src, dst)
	p := &packedTaps{first: make([]int32, len(ts)), n: make([]int32, len(ts))}
	for _, t := range ts {
		p.k = max(p.k, len(t.w))
	}
	p.w = make([]float32, len(ts)*max(p.k, 1))
	for i, t := range ts {
		p.first[i], p.n[i] = int32(t.first), int32(len(t.w))
		copy(p.w[i*p.k:], t.w)
	}
	packedCache.Store(key, p)
	return p
}

// filterWeights gives each output pixel's source taps, PIL-style: centres at
// (i + 0.5) * scale, support max(1, scale), weights normalised to sum 1.
func filterWeights(src, dst int) []taps {
	scale := float64(src) / float64(dst)
	support := math.Max(1, scale)
	out := make([]taps, dst)
	for i := range out {
		centre := (float64(i) + 0.5) * scale
		lo := max(0, int(math.Floor(centre-support+0.5)))
		hi := min(src, int(math.Floor(centre+support+0.5)))
		w := make([]float32, 0, hi-lo)
		var sum float64
		ws := make([]float64, 0, hi-lo)
		for j := lo; j < hi; j++ {
			v := 1 - math.Abs((float64(j)+0.5-centre)/support)
			v = math.Max(0, v)
			ws = append(ws, v)
			sum += v
		}
		for _, v := range ws {
			w = append(w, float32(v/sum))
		}
		out[i] = taps{lo, w}
	}
	return out
}

func centerCrop(src []float32, sw, sh, cw, ch int) []float32 {
	return centerCropInto(src, sw, sh, cw, ch, make([]float32, 3*cw*ch))
}

// centerCropInto is centerCrop into out (3*cw*ch values, zeroed).
func centerCropInto(src []float32, sw, sh, cw, ch int, out []float32) []float32 {
	x0, y0 := (sw-cw)/2, (sh-ch)/2
	for c := range 3 {
		for y := range ch {
			for x := range cw {
				sx, sy := x0+x, y0+y
				if sx >= 0 && sy >= 0 && sx < sw && sy < sh {
					out[c*cw*ch+y*cw+x] = src[c*sw*sh+sy*sw+sx]
				}
			}
		}
	}
	return out
}
