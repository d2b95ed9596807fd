package vae

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/draw"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/kediff/kediff/onnx"
)

// DefaultScalingFactor is Stable Diffusion's latent scaling factor.
const DefaultScalingFactor = 0.18215

// Options configures OpenEncoder and OpenDecoder.
type Options struct {
	// Session is passed to onnx.Open (library, threads, CUDA).
	Session onnx.SessionOptions
	// BatchSize is how many images (or latents) one run takes; default 8.
	BatchSize int
	// ScalingFactor multiplies encoder latents and divides decoder inputs;
	// 0 takes scaling_factor from a config.json next to the model, else
	// DefaultScalingFactor.
	ScalingFactor float32
	// Sample draws the latent z = mean + exp(logvar/2) * eps instead of taking
	// the mean (the default, deterministic). eps is standard normal noise from
	// rand.NewPCG(Seed, FNV-1a 64 of the sample key), so a key's latent is
	// reproducible. Only models that output latent_parameters can sample.
	Sample bool
	Seed   uint64
}

// Latent is one image's encoded latent: Data holds C*H*W values (already
// times the scaling factor) in channel-major order, Shape is [C, H, W].
type Latent struct {
	Data  []float32
	Shape [3]int
	Err   error // the image could not be encoded (the row is rejected)
}

// Float16 returns the latent as little-endian IEEE half bytes (the latent
// column's dtype "float16").
func (l Latent) Float16() []byte { return AppendFloat16(make([]byte, 0, 2*len(l.Data)), l.Data) }

// Encoder runs a Stable-Diffusion-style vae_encoder. It is safe for
// concurrent use.
type Encoder struct {
	s       *onnx.Session
	out     string // "latent_parameters" or "latent_sample"
	channel int64  // latent channels C
	scale   float32
	opt     Options
	inH     int64 // static input size or -1
	inW     int64
}

// Decoder runs a Stable-Diffusion-style vae_decoder. It is safe for
// concurrent use.
type Decoder struct {
	s       *onnx.Session
	channel int64
	scale   float32
	opt     Options
}

// modelPath resolves path to the .onnx file: path itself, or inside a folder
// <dir>/<name>/model.onnx (optimum's Stable Diffusion layout), <dir>/<name>.onnx
// or <dir>/model.onnx.
func modelPath(path, name string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("vae: %w", err)
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, p := range []string{filepath.Join(path, name, "model.onnx"), filepath.Join(path, name+".onnx"), filepath.Join(path, "model.onnx")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("vae: folder %s holds none of %s/model.onnx, %s.onnx, model.onnx", path, name, name)
}

// scaling returns opt's factor, else config.json's scaling_factor next to the
// model (or one folder up, as in optimum's layout), else the default.
func scaling(opt Options, model string) (float32, error) {
	if opt.ScalingFactor != 0 {
		return opt.ScalingFactor, nil
	}
	dir := filepath.Dir(model)
	for _, p := range []string{filepath.Join(dir, "config.json"), filepath.Join(filepath.Dir(dir), "vae", "config.json")} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var c struct {
			ScalingFactor *float32 `json:"scaling_factor"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return 0, fmt.Errorf("vae: %s is not valid JSON: %v", p, err)
		}
		if c.ScalingFactor != nil {
			if *c.ScalingFactor <= 0 {
				return 0, fmt.Errorf("vae: %s has scaling_factor %v, want > 0", p, *c.ScalingFactor)
			}
			return *c.ScalingFactor, nil
		}
	}
	return DefaultScalingFactor, nil
}

// OpenEncoder loads a vae_encoder ONNX model (a file, or a folder as
// modelPath describes). The model must take "sample" [N,3,H,W] float32 in
// [-1, 1] and return either "latent_parameters" [N,2C,H/8,W/8] (mean then
// log-variance, optimum's export) or "latent_sample" [N,C,H/8,W/8] (a sample
// drawn inside the model, older diffusers exports; used as it is, so the
// latent is then not deterministic).
func OpenEncoder(path string, opt Options) (*Encoder, error) {
	p, err := modelPath(path, "vae_encoder")
	if err != nil {
		return nil, err
	}
	e := &Encoder{opt: opt}
	if e.opt.BatchSize <= 0 {
		e.opt.BatchSize = 8
	}
	if e.scale, err = scaling(opt, p); err != nil {
		return nil, err
	}
	if e.s, err = onnx.Open(p, opt.Session); err != nil {
		return nil, fmt.Errorf("vae: encoder: %w", err)
	}
	if err := e.checkLayout(); err != nil {
		e.s.Close()
		return nil, fmt.Errorf("vae: %w", err)
	}
	return e, nil
}

func (e *Encoder) checkLayout() error {
	ins := e.s.Inputs()
	if len(ins) != 1 || ins[0].Name != "sample" {
		return fmt.Errorf("model %s has inputs %s, want \"sample\" [N 3 H W] float32 only (a Stable Diffusion vae_encoder export)", e.s.Name(), infos(ins))
	}
	if err := e.s.CheckTensor("input", ins[0], []int64{-1, 3, -1, -1}, "float32"); err != nil {
		return err
	}
	e.inH, e.inW = ins[0].Shape[2], ins[0].Shape[3]
	for _, name := range []string{"latent_parameters", "latent_sample"} {
		o, ok := e.s.Output(name)
		if !ok {
			continue
		}
		if err := e.s.CheckTensor("output", o, []int64{-1, -1, -1, -1}, "float32"); err != nil {
			return err
		}
		e.out, e.channel = name, o.Shape[1]
		if name == "latent_parameters" {
			if e.channel >= 0 && e.channel%2 != 0 {
				return &onnx.ShapeError{Model: e.s.Name(), Kind: "output", Tensor: name, Want: []int64{-1, 8, -1, -1}, Got: o.Shape,
					Hint: "latent_parameters holds mean and log-variance: an even channel count"}
			}
			if e.channel > 0 {
				e.channel /= 2
			}
		} else if e.opt.Sample {
			return fmt.Errorf("model %s outputs latent_sample, which cannot be re-sampled; drop the Sample option or export latent_parameters", e.s.Name())
		}
		return nil
	}
	return fmt.Errorf("model %s has outputs %s, want \"latent_parameters\" [N 2C H/8 W/8] or \"latent_sample\" [N C H/8 W/8]", e.s.Name(), infos(e.s.Outputs()))
}

func infos(ts []onnx.TensorInfo) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// ScalingFactor is the factor latents are multiplied by.
func (e *Encoder) ScalingFactor() float32 { return e.scale }

// Close releases the session.
func (e *Encoder) Close() error { return e.s.Close() }

// Encode encodes imgs in batches (images of equal size share a run) and
// returns one Latent per image, scaled by the scaling factor. keys name the
// samples for seeded sampling (Options.Sample); they may be nil otherwise.
// An image that is nil, empty, not a multiple of 8 on each side, not the
// model's static input size, or whose latent is not finite gets an Err.
func (e *Encoder) Encode(imgs []image.Image, keys []string) []Latent {
	out := make([]Latent, len(imgs))
	onnx.BatchesBySize(len(imgs), e.opt.BatchSize, func(i int) (int, int, bool) {
		img := imgs[i]
		if img == nil || img.Bounds().Empty() {
			out[i].Err = errors.New("image is nil or empty")
			return 0, 0, false
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		if w%8 != 0 || h%8 != 0 {
			out[i].Err = fmt.Errorf("image is %dx%d; the autoencoder needs sides that are multiples of 8 (resize or crop it first)", w, h)
			return 0, 0, false
		}
		if (e.inW >= 0 && int64(w) != e.inW) || (e.inH >= 0 && int64(h) != e.inH) {
			out[i].Err = fmt.Errorf("image is %dx%d, but %s takes only %dx%d", w, h, e.s.Name(), e.inW, e.inH)
			return 0, 0, false
		}
		return w, h, true
	}, func(batch []int, w, h int) {
		e.encodeBatch(imgs, keys, batch, w, h, out)
	})
	return out
}

func (e *Encoder) encodeBatch(imgs []image.Image, keys []string, idx []int, w, h int, out []Latent) {
	n, plane := len(idx), 3*w*h
	pxp := pxPool.Get()
	defer pxPool.Put(pxp)
	if cap(*pxp) < n*plane {
		*pxp = make([]float32, n*plane)
	}
	px := (*pxp)[:n*plane]
	for j, i := range idx {
		toSample(imgs[i], px[j*plane:(j+1)*plane])
	}
	fail := func(err error) {
		for _, i := range idx {
			out[i].Err = err
		}
	}
	res, err := e.s.Run(onnx.Float32("sample", []int64{int64(n), 3, int64(h), int64(w)}, px))
	if err != nil {
		fail(fmt.Errorf("vae: encoder: %w", err))
		return
	}
	var t onnx.Tensor
	for _, o := range res {
		if o.Name == e.out {
			t = o
		}
	}
	c := e.channel
	if c < 0 && len(t.Shape) == 4 {
		c = t.Shape[1]
		if e.out == "latent_parameters" {
			c /= 2
		}
	}
	want := []int64{int64(n), c, int64(h / 8), int64(w / 8)}
	if e.out == "latent_parameters" {
		want[1] *= 2
	}
	data := t.Float32s()
	if data == nil || !onnx.ShapeMatches(want, t.Shape) {
		fail(fmt.Errorf("vae: %s returned %s %s for a %dx%d batch of %d, want %s (a downsampling factor of 8)",
			e.s.Name(), e.out, onnx.FormatShape(t.Shape), w, h, n, onnx.FormatShape(want)))
		return
	}
	cell := int(c) * (h / 8) * (w / 8)
	per := len(data) / n
	for j, i := range idx {
		src := data[j*per : (j+1)*per]
		z := make([]float32, cell)
		var rng *rand.Rand
		if e.opt.Sample {
			key := ""
			if i < len(keys) {
				key = keys[i]
			}
			f := fnv.New64a()
			f.Write([]byte(key))
			rng = rand.New(rand.NewPCG(e.opt.Seed, f.Sum64()))
		}
		ok := true
		for k := range z {
			v := src[k]
			if rng != nil {
				logvar := math.Min(20, math.Max(-30, float64(src[cell+k]))) // diffusers' clamp
				v = float32(float64(v) + math.Exp(0.5*logvar)*rng.NormFloat64())
			}
			v *= e.scale
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				ok = false
			}
			z[k] = v
		}
		if !ok {
			out[i].Err = fmt.Errorf("vae: %s produced NaN or infinite latents", e.s.Name())
			continue
		}
		out[i] = Latent{Data: z, Shape: [3]int{int(c), h / 8, w / 8}}
	}
}

// sampleMap maps an 8-bit channel value v to its sample value,
// float32(v)/127.5 - 1; sampleValue is its table.
var (
	sampleMap   = onnx.ValueMap{Mul: 1, Div: 127.5, Add: -1}
	sampleValue = sampleMap.Table()
)

// pxPool holds encoder input buffers, reused across batches.
var pxPool onnx.FreeList[[]float32]

// toSample writes img as [3, H, W] values in [-1, 1] (x / 127.5 - 1).
// *image.YCbCr (what image/jpeg returns) is converted directly, with the
// RGB values that drawing it into an RGBA gives (color.YCbCrToRGB).
func toSample(img image.Image, dst []float32) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	if m, ok := img.(*image.YCbCr); ok {
		onnx.YCbCrPlanes(m, sampleMap, dst[:n], dst[n:2*n], dst[2*n:3*n])
		return
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	for y := range h {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*w]
		r, g, bl := dst[y*w:(y+1)*w], dst[n+y*w:n+(y+1)*w], dst[2*n+y*w:2*n+(y+1)*w]
		for x := range w {
			r[x] = sampleValue[row[4*x]]
			g[x] = sampleValue[row[4*x+1]]
			bl[x] = sampleValue[row[4*x+2]]
		}
	}
}

// OpenDecoder loads a vae_decoder ONNX model (a file, or a folder as
// modelPath describes): "latent_sample" [N,C,h,w] float32 -> "sample"
// [N,3,8h,8w] in about [-1, 1].
func OpenDecoder(path string, opt Options) (*Decoder, error) {
	p, err := modelPath(path, "vae_decoder")
	if err != nil {
		return nil, err
	}
	d := &Decoder{opt: opt}
	if d.opt.BatchSize <= 0 {
		d.opt.BatchSize = 8
	}
	if d.scale, err = scaling(opt, p); err != nil {
		return nil, err
	}
	if d.s, err = onnx.Open(p, opt.Session); err != nil {
		return nil, fmt.Errorf("vae: decoder: %w", err)
	}
	ins := d.s.Inputs()
	if len(ins) != 1 || ins[0].Name != "latent_sample" {
		d.s.Close()
		return nil, fmt.Errorf("vae: model %s has inputs %s, want \"latent_sample\" [N C h w] float32 only (a Stable Diffusion vae_decoder export)", d.s.Name(), infos(ins))
	}
	if err := d.s.Check(map[string][]int64{"latent_sample": {-1, -1, -1, -1}}, map[string][]int64{"sample": {-1, 3, -1, -1}}); err != nil {
		d.s.Close()
		return nil, fmt.Errorf("vae: %w", err)
	}
	d.channel = ins[0].Shape[1]
	return d, nil
}

// Close releases the session.
func (d *Decoder) Close() error { return d.s.Close() }

// LatentChannels is the latent channel count the model takes (-1 when its
// input shape leaves it open).
func (d *Decoder) LatentChannels() int { return int(d.channel) }

// ScalingFactor is the factor latents are divided by before decoding.
func (d *Decoder) ScalingFactor() float32 { return d.scale }

// DecodePlanes decodes scaled latents (as Encoder returns them; each [C,h,w],
// all of one shape) into images as [3, 8h, 8w] planes in [0, 1], in batches.
func (d *Decoder) DecodePlanes(latents []Latent) ([][]float32, error) {
	if len(latents) == 0 {
		return nil, nil
	}
	shape := latents[0].Shape
	if d.channel >= 0 && int64(shape[0]) != d.channel {
		return nil, fmt.Errorf("vae: latents have %d channels, but %s takes %d", shape[0], d.s.Name(), d.channel)
	}
	per := shape[0] * shape[1] * shape[2]
	out := make([][]float32, 0, len(latents))
	for lo := 0; lo < len(latents); lo += d.opt.BatchSize {
		batch := latents[lo:min(lo+d.opt.BatchSize, len(latents))]
		buf := make([]float32, 0, len(batch)*per)
		for i, l := range batch {
			if l.Shape != shape || len(l.Data) != per {
				return nil, fmt.Errorf("vae: latent %d has shape %v (%d values), want %v", lo+i, l.Shape, len(l.Data), shape)
			}
			for _, v := range l.Data {
				buf = append(buf, v/d.scale)
			}
		}
		res, err := d.s.Run(onnx.Float32("latent_sample", []int64{int64(len(batch)), int64(shape[0]), int64(shape[1]), int64(shape[2])}, buf))
		if err != nil {
			return nil, fmt.Errorf("vae: decoder: %w", err)
		}
		var t onnx.Tensor
		for _, o := range res {
			if o.Name == "sample" {
				t = o
			}
		}
		want := []int64{int64(len(batch)), 3, int64(8 * shape[1]), int64(8 * shape[2])}
		data := t.Float32s()
		if data == nil || !onnx.ShapeMatches(want, t.Shape) {
			return nil, fmt.Errorf("vae: %s returned sample %s, want %s", d.s.Name(), onnx.FormatShape(t.Shape), onnx.FormatShape(want))
		}
		n := len(data) / len(batch)
		for i := range batch {
			img := make([]float32, n)
			for k, v := range data[i*n : (i+1)*n] {
				if math.IsNaN(float64(v)) {
					return nil, fmt.Errorf("vae: %s produced NaN pixels for latent %d", d.s.Name(), lo+i)
				}
				img[k] = min(1, max(0, (v+1)/2))
			}
			out = append(out, img)
		}
	}
	return out, nil
}

// Decode decodes scaled latents into RGBA images (see DecodePlanes).
func (d *Decoder) Decode(latents []Latent) ([]*image.RGBA, error) {
	planes, err := d.DecodePlanes(latents)
	if err != nil {
		return nil, err
	}
	out := make([]*image.RGBA, len(planes))
	for i, p := range planes {
		h, w := 8*latents[i].Shape[1], 8*latents[i].Shape[2]
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		n := w * h
		for k := range n {
			for c := range 3 {
				img.Pix[4*k+c] = uint8(math.Round(float64(p[c*n+k]) * 255))
			}
			img.Pix[4*k+3] = 255
		}
		out[i] = img
	}
	return out, nil
}
