package clipscore

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"

	"github.com/kediff/kediff/eval/pilresize"
)

// CLIP's normalisation (OpenAI's training-set statistics), which open_clip
// and Hugging Face's CLIPImageProcessor use unless a model says otherwise.
var (
	clipMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// preprocessor turns an image into the image model's input the way CLIP's
// evaluation transform does: RGB, the shorter side resized to size, a
// centred size x size crop, values / 255, then (v - mean) / std.
type preprocessor struct {
	size      int
	mean, std [3]float32
	filter    pilresize.Filter
	// floorCrop centres the crop as Hugging Face does, (d - size) / 2
	// rounded down; torchvision's CenterCrop rounds half to even.
	floorCrop bool
}

// hfPreprocessorConfig is the part of a Hugging Face preprocessor_config.json
// (CLIPImageProcessor) that changes the pixels.
type hfPreprocessorConfig struct {
	ImageMean []float32 `json:"image_mean"`
	ImageStd  []float32 `json:"image_std"`
	Resample  *int      `json:"resample"`
}

// readPreprocessorConfig applies the preprocessor_config.json at path, if
// there is one, to p.
func (p *preprocessor) readConfig(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var c hfPreprocessorConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if c.ImageMean != nil {
		if len(c.ImageMean) != 3 || len(c.ImageStd) != 3 {
			return fmt.Errorf("%s: image_mean and image_std must have 3 values each, have %d and %d", path, len(c.ImageMean), len(c.ImageStd))
		}
		copy(p.mean[:], c.ImageMean)
		copy(p.std[:], c.ImageStd)
	}
	if c.Resample != nil {
		switch *c.Resample { // PIL's numbering
		case 2:
			p.filter = pilresize.Bilinear
		case 3:
			p.filter = pilresize.Bicubic
		default:
			return fmt.Errorf("%s: resample %d is not supported (2 bilinear or 3 bicubic)", path, *c.Resample)
		}
	}
	p.floorCrop = true
	return nil
}

// crop returns img resized and centre-cropped to size x size as interleaved
// 8-bit RGB: what torchvision's Resize(size) and CenterCrop(size) give for a
// PIL image before ToTensor.
func (p *preprocessor) crop(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	rgb := rgb8(img)
	// torchvision's _compute_resized_output_size: the shorter side becomes
	// size, the longer size*long/short truncated.
	nw, nh := p.size, p.size
	if w <= h {
		nh = int(float64(p.size*h) / float64(w))
	} else {
		nw = int(float64(p.size*w) / float64(h))
	}
	if nw != w || nh != h {
		rgb = pilresize.ResizeRGB8(rgb, w, h, nw, nh, p.filter)
	}
	top, left := p.offset(nh), p.offset(nw)
	out := make([]byte, 0, p.size*p.size*3)
	for y := top; y < top+p.size; y++ {
		row := (y*nw + left) * 3
		out = append(out, rgb[row:row+p.size*3]...)
	}
	return out
}

// offset is where a centred crop of p.size starts in a side of length n.
func (p *preprocessor) offset(n int) int {
	if p.floorCrop {
		return (n - p.size) / 2
	}
	return int(math.RoundToEven(float64(n-p.size) / 2))
}

// pixels writes img's model input, planar [3, size, size], into dst.
func (p *preprocessor) pixels(img image.Image, dst []float32) {
	rgb := p.crop(img)
	plane := p.size * p.size
	for i := 0; i < plane; i++ {
		for c := 0; c < 3; c++ {
			v := float32(rgb[i*3+c]) / 255
			dst[c*plane+i] = (v - p.mean[c]) / p.std[c]
		}
	}
}

// rgb8 returns img's pixels as interleaved 8-bit RGB, as PIL's
// convert("RGB") gives them: alpha is dropped from the unpremultiplied
// colour, grey is copied to all three channels.
func rgb8(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, 0, w*h*3)
	switch m := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				out = append(out, row[x*4], row[x*4+1], row[x*4+2])
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				out = append(out, row[x], row[x], row[x])
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				out = append(out, c.R, c.G, c.B)
			}
		}
	}
	return out
}
