package fid

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/kediff/kediff/eval/pilresize"
	"github.com/kediff/kediff/onnx"
)

// ExtractorOptions configures NewExtractor.
type ExtractorOptions struct {
	// Batch is the number of images per model run; 0 means 32.
	Batch int
	// Session configures onnxruntime (library, threads, CUDA).
	Session onnx.SessionOptions
}

// Extractor runs an ONNX feature network in pytorch-fid's layout on images.
// It is safe for concurrent use.
type Extractor struct {
	s             *onnx.Session
	input, output string
	size, dim     int
	batch         int
}

// layoutHint says what a feature network must look like.
const layoutHint = "a feature network takes one float32 input [N 3 S S] (RGB in [0,1]) and gives one float32 output [N D] or [N D 1 1]; export pytorch-fid's InceptionV3 with output_blocks=[3] (pool3, D=2048) and a dynamic batch"

// NewExtractor opens the feature network at path and checks its layout: one
// float32 input [N, 3, S, S] with a fixed S (299 for Inception) taking RGB in
// [0, 1], and one float32 output [N, D] or [N, D, 1, 1] with a fixed D (2048
// for Inception's pool3). N may be fixed or dynamic; a fixed N must equal the
// batch size.
func NewExtractor(path string, opt ExtractorOptions) (*Extractor, error) {
	s, err := onnx.Open(path, opt.Session)
	if err != nil {
		return nil, fmt.Errorf("fid: %w", err)
	}
	e, err := newExtractor(s, opt)
	if err != nil {
		s.Close()
		return nil, err
	}
	return e, nil
}

func newExtractor(s *onnx.Session, opt ExtractorOptions) (*Extractor, error) {
	e := &Extractor{s: s, batch: opt.Batch}
	if e.batch <= 0 {
		e.batch = 32
	}
	ins, outs := s.Inputs(), s.Outputs()
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("fid: model %s has %d inputs and %d outputs %v -> %v, want 1 and 1 (%s)", s.Name(), len(ins), len(outs), ins, outs, layoutHint)
	}
	in, out := ins[0], outs[0]
	sh := in.Shape
	if in.Type != "float32" || len(sh) != 4 || sh[1] != 3 || sh[2] <= 0 || sh[2] != sh[3] {
		return nil, fmt.Errorf("fid: model %s: input %q is %s %s, want float32 [N 3 S S] with a fixed S (%s)", s.Name(), in.Name, in.Type, onnx.FormatShape(sh), layoutHint)
	}
	os := out.Shape
	okRank := len(os) == 2 || (len(os) == 4 && os[2] == 1 && os[3] == 1)
	if out.Type != "float32" || !okRank || os[1] <= 0 {
		return nil, fmt.Errorf("fid: model %s: output %q is %s %s, want float32 [N D] or [N D 1 1] with a fixed D (%s)", s.Name(), out.Name, out.Type, onnx.FormatShape(os), layoutHint)
	}
	if sh[0] > 0 && os[0] > 0 && sh[0] != os[0] {
		return nil, fmt.Errorf("fid: model %s: input batch %d and output batch %d differ", s.Name(), sh[0], os[0])
	}
	if sh[0] > 0 {
		if opt.Batch > 0 && int64(opt.Batch) != sh[0] {
			return nil, fmt.Errorf("fid: model %s has a fixed batch of %d, not the %d asked for (export it with a dynamic batch axis, or set the batch to %d)", s.Name(), sh[0], opt.Batch, sh[0])
		}
		e.batch = int(sh[0])
	}
	e.input, e.output = in.Name, out.Name
	e.size, e.dim = int(sh[2]), int(os[1])
	return e, nil
}

// Size is the model's input side S: images are resized to S x S.
func (e *Extractor) Size() int { return e.size }

// Dim is the feature dimension D.
func (e *Extractor) Dim() int { return e.dim }

// Batch is the number of images per model run.
func (e *Extractor) Batch() int { return e.batch }

// Close releases the model.
func (e *Extractor) Close() error { return e.s.Close() }

// Features returns the features of imgs, len(imgs) x Dim() row-major.
// Each image is converted to 8-bit RGB as PIL's convert("RGB") does (gray is
// replicated; alpha is dropped, not composited, as pytorch-fid and clean-fid
// read images), then resized to S x S as clean-fid's "clean" mode does: each
// channel as a float plane with PIL's bicubic filter
// (pilresize.ResizePlane), clipped to [0, 255] and divided by 255. A nil
// image (one that failed to decode) is an error naming its index.
func (e *Extractor) Features(imgs []image.Image) ([]float32, error) {
	if len(imgs) == 0 {
		return nil, ErrNoImages
	}
	for i, m := range imgs {
		if m == nil {
			return nil, fmt.Errorf("fid: image %d is missing (nil: it did not decode)", i)
		}
		if b := m.Bounds(); b.Empty() {
			return nil, fmt.Errorf("fid: image %d is empty (%dx%d)", i, b.Dx(), b.Dy())
		}
	}
	S := e.size
	plane := 3 * S * S
	feats := make([]float32, 0, len(imgs)*e.dim)
	fixed := int(e.s.Inputs()[0].Shape[0]) // > 0: the model takes exactly this batch
	in := make([]float32, max(min(e.batch, len(imgs)), fixed)*plane)
	for lo := 0; lo < len(imgs); lo += e.batch {
		hi := min(lo+e.batch, len(imgs))
		nb := hi - lo
		if fixed > 0 {
			nb = fixed // pad a fixed-batch model's last batch
			clear(in[(hi-lo)*plane:])
		}
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for i := lo; i < hi; i++ {
			g.Go(func() error {
				Preprocess(imgs[i], S, in[(i-lo)*plane:(i-lo+1)*plane])
				return nil
			})
		}
		g.Wait()
		out, err := e.s.Run(onnx.Float32(e.input, []int64{int64(nb), 3, int64(S), int64(S)}, in[:nb*plane]))
		if err != nil {
			return nil, fmt.Errorf("fid: model %s on images %d..%d: %w", e.s.Name(), lo, hi-1, err)
		}
		f := out[0].Float32s()
		if len(f) < (hi-lo)*e.dim {
			return nil, fmt.Errorf("fid: model %s returned %d values for %d images of %d features", e.s.Name(), len(f), hi-lo, e.dim)
		}
		feats = append(feats, f[:(hi-lo)*e.dim]...)
	}
	return feats, nil
}

// ErrNoImages is returned for an empty image set.
var ErrNoImages = errors.New("fid: no images to extract features from")

// Preprocess writes m as a [3, size, size] float32 tensor into dst (3*size*size
// values): RGB as PIL's convert("RGB"), each channel resized with PIL's
// F-mode bicubic filter, clipped to [0, 255] and divided by 255 (clean-fid's
// "clean" resize).
func Preprocess(m image.Image, size int, dst []float32) {
	w, h, ch := rgbPlanes(m)
	for c := 0; c < 3; c++ {
		r := pilresize.ResizePlane(ch[c], w, h, size, size, pilresize.Bicubic)
		out := dst[c*size*size : (c+1)*size*size]
		for i, v := range r {
			v = min(max(v, 0), 255)
			out[i] = v / 255
		}
	}
}

// rgbPlanes converts m to three float planes of 8-bit values as PIL's
// convert("RGB") does for the decoded image: gray is replicated, alpha is
// dropped (non-premultiplied colour kept).
func rgbPlanes(m image.Image) (w, h int, p [3][]float32) {
	b := m.Bounds()
	w, h = b.Dx(), b.Dy()
	for c := range p {
		p[c] = make([]float32, w*h)
	}
	put := func(i int, r, g, bl uint8) {
		p[0][i], p[1][i], p[2][i] = float32(r), float32(g), float32(bl)
	}
	switch m := m.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				put(y*w+x, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				put(y*w+x, row[x], row[x], row[x])
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				put(y*w+x, c.R, c.G, c.B)
			}
		}
	}
	return w, h, p
}
