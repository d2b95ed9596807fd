package clipscore

import (
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"

	"github.com/kediff/kediff/eval/pilresize"
	"github.com/kediff/kediff/onnx"
)

// Options configures Open. The zero value runs on the CPU in batches of 32.
type Options struct {
	// Session is passed to onnx.Open for both models.
	Session onnx.SessionOptions
	// BatchSize is how many images or prompts one model run takes; 0 = 32.
	BatchSize int
}

// Scorer computes CLIP scores with one CLIP model's image and text encoders.
// It is safe for concurrent use; Close must not overlap a Score.
type Scorer struct {
	image, text *onnx.Session
	tok         *Tokenizer
	pre         preprocessor
	context     int    // the text model's sequence length
	embed       int    // embedding width, the same for both models
	textType    string // "int64" or "int32"
	mask        bool   // the text model takes an attention_mask second
	batch       int
}

// Open loads a CLIP image encoder, its text encoder and its tokenizer (see
// LoadTokenizer), and checks that the models fit together before any image
// is scored:
//
//   - the image model takes float32 pixels [N,3,R,R] with R fixed and
//     returns embeddings [N,E];
//   - the text model takes int64 or int32 token ids [N,L], optionally
//     followed by an attention_mask of the same shape, and returns [N,E];
//     L is the context length (77 when the model leaves it dynamic);
//   - both give embeddings of the same width E.
//
// A preprocessor_config.json beside the image model sets the normalisation
// and resampling filter as Hugging Face's CLIPImageProcessor does.
func Open(imageModel, textModel, tokenizer string, opt Options) (*Scorer, error) {
	tok, err := LoadTokenizer(tokenizer)
	if err != nil {
		return nil, err
	}
	s := &Scorer{
		tok:   tok,
		pre:   preprocessor{mean: clipMean, std: clipStd, filter: pilresize.Bicubic},
		batch: opt.BatchSize,
	}
	if s.batch <= 0 {
		s.batch = 32
	}
	if s.image, err = onnx.Open(imageModel, opt.Session); err != nil {
		return nil, fmt.Errorf("clipscore: image model: %w", err)
	}
	if s.text, err = onnx.Open(textModel, opt.Session); err != nil {
		s.image.Close()
		return nil, fmt.Errorf("clipscore: text model: %w", err)
	}
	if err := s.check(); err != nil {
		s.Close()
		return nil, err
	}
	cfg := filepath.Join(filepath.Dir(imageModel), "preprocessor_config.json")
	if err := s.pre.readConfig(cfg); err != nil {
		s.Close()
		return nil, fmt.Errorf("clipscore: image model %s: %w", s.image.Name(), err)
	}
	return s, nil
}

// check reads the layouts of both models and returns what is wrong with them.
func (s *Scorer) check() error {
	in := s.image.Inputs()
	if len(in) != 1 {
		return fmt.Errorf("clipscore: image model %s takes %d inputs, want 1 (pixel values [N 3 R R])", s.image.Name(), len(in))
	}
	if err := s.image.CheckTensor("input", in[0], []int64{-1, 3, -1, -1}, "float32"); err != nil {
		return fmt.Errorf("clipscore: image %w", err)
	}
	r := in[0].Shape[2]
	if r <= 0 || in[0].Shape[3] != r {
		return fmt.Errorf("clipscore: image model %s: input %q has shape %s, want a fixed square resolution [N 3 R R] (export it with a fixed image size)",
			s.image.Name(), in[0].Name, onnx.FormatShape(in[0].Shape))
	}
	s.pre.size = int(r)
	imageWidth, err := embedWidth("image", s.image)
	if err != nil {
		return err
	}

	in = s.text.Inputs()
	if len(in) != 1 && (len(in) != 2 || in[1].Name != "attention_mask") {
		return fmt.Errorf("clipscore: text model %s has inputs %v, want token ids [N L] and optionally attention_mask", s.text.Name(), in)
	}
	ids := in[0]
	if ids.Type != "int64" && ids.Type != "int32" {
		return fmt.Errorf("clipscore: text model %s: input %q has element type %s, want int64 or int32 token ids", s.text.Name(), ids.Name, ids.Type)
	}
	if err := s.text.CheckTensor("input", ids, []int64{-1, -1}, ""); err != nil {
		return fmt.Errorf("clipscore: text %w (token ids [N L])", err)
	}
	s.textType = ids.Type
	s.context = int(ids.Shape[1])
	if s.context <= 0 {
		s.context = 77
	}
	if s.context < 2 {
		return fmt.Errorf("clipscore: text model %s: context length %d leaves no room for the start and end tokens", s.text.Name(), s.context)
	}
	if len(in) == 2 {
		if err := s.text.CheckTensor("input", in[1], []int64{-1, int64(s.context)}, ids.Type); err != nil {
			return fmt.Errorf("clipscore: text %w (the mask must match the token ids)", err)
		}
		s.mask = true
	}
	textWidth, err := embedWidth("text", s.text)
	if err != nil {
		return err
	}
	if imageWidth != textWidth {
		return fmt.Errorf("clipscore: image model %s gives %d-wide embeddings, text model %s %d-wide; use the two encoders of one CLIP model",
			s.image.Name(), imageWidth, s.text.Name(), textWidth)
	}
	s.embed = imageWidth
	return nil
}

// embedWidth checks that a model's first output is a float32 embedding
// [N,E] with E fixed, and returns E.
func embedWidth(kind string, m *onnx.Session) (int, error) {
	out := m.Outputs()[0]
	if len(out.Shape) != 2 || out.Shape[1] <= 0 {
		return 0, fmt.Errorf("clipscore: %s model %s: output %q has shape %s, want [N E] (export the projected, pooled embedding)",
			kind, m.Name(), out.Name, onnx.FormatShape(out.Shape))
	}
	if out.Type != "float32" {
		return 0, fmt.Errorf("clipscore: %s model %s: output %q has element type %s, want float32", kind, m.Name(), out.Name, out.Type)
	}
	return int(out.Shape[1]), nil
}

// Close releases both models.
func (s *Scorer) Close() error {
	return errors.Join(s.image.Close(), s.text.Close())
}

// Tokenizer returns the scorer's tokenizer.
func (s *Scorer) Tokenizer() *Tokenizer { return s.tok }

// Score returns the CLIP score of each (image, prompt) pair, 100 times the
// cosine of their embeddings but at least 0, and the mean over the pairs.
// imgs[i] goes with prompts[i].
func (s *Scorer) Score(imgs []image.Image, prompts []string) (mean float64, per []float64, err error) {
	if len(imgs) != len(prompts) {
		return 0, nil, fmt.Errorf("clipscore: %d images but %d prompts; give one prompt per image", len(imgs), len(prompts))
	}
	if len(imgs) == 0 {
		return 0, nil, errors.New("clipscore: no images to score")
	}
	ie, err := s.ImageEmbeddings(imgs)
	if err != nil {
		return 0, nil, err
	}
	te, err := s.TextEmbeddings(prompts)
	if err != nil {
		return 0, nil, err
	}
	per = make([]float64, len(imgs))
	for i := range per {
		per[i] = pairScore(ie[i], te[i])
		mean += per[i]
	}
	return mean / float64(len(per)), per, nil
}

// pairScore is torchmetrics' CLIP score of one pair, 100 * cos(a, b), and
// 0 where that is negative.
func pairScore(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return max(100*dot/math.Sqrt(na*nb), 0)
}

// ImageEmbeddings returns the image model's embedding of each image,
// unnormalised.
func (s *Scorer) ImageEmbeddings(imgs []image.Image) ([][]float32, error) {
	r := s.pre.size
	out := make([][]float32, 0, len(imgs))
	for lo := 0; lo < len(imgs); lo += s.batch {
		hi := min(lo+s.batch, len(imgs))
		px := make([]float32, (hi-lo)*3*r*r)
		for i, img := range imgs[lo:hi] {
			if b := img.Bounds(); b.Empty() {
				return nil, fmt.Errorf("clipscore: image %d is empty (%dx%d)", lo+i, b.Dx(), b.Dy())
			}
			s.pre.pixels(img, px[i*3*r*r:(i+1)*3*r*r])
		}
		res, err := s.image.Run(onnx.Float32("", []int64{int64(hi - lo), 3, int64(r), int64(r)}, px))
		if err != nil {
			return nil, fmt.Errorf("clipscore: %w", err)
		}
		rows, err := s.rows(s.image, res[0], hi-lo)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// TextEmbeddings returns the text model's embedding of each prompt,
// unnormalised.
func (s *Scorer) TextEmbeddings(prompts []string) ([][]float32, error) {
	ids := make([]int64, len(prompts)*s.context)
	lens := make([]int, len(prompts))
	for i, p := range prompts {
		lens[i] = s.tok.tokenizeInto(ids[i*s.context:(i+1)*s.context], p)
	}
	return s.embedIDs(ids, lens)
}

// embedIDs runs the text model on token ids, len(lens) rows of s.context;
// lens[i] is how many ids of row i the attention mask covers.
func (s *Scorer) embedIDs(ids []int64, lens []int) ([][]float32, error) {
	n := len(lens)
	out := make([][]float32, 0, n)
	for lo := 0; lo < n; lo += s.batch {
		hi := min(lo+s.batch, n)
		shape := []int64{int64(hi - lo), int64(s.context)}
		rows := ids[lo*s.context : hi*s.context]
		mask := make([]int64, len(rows))
		for i, l := range lens[lo:hi] {
			for j := 0; j < l; j++ {
				mask[i*s.context+j] = 1
			}
		}
		in := []onnx.Tensor{{Shape: shape, Data: rows}, {Shape: shape, Data: mask}}
		if s.textType == "int32" {
			in[0].Data, in[1].Data = toInt32(rows), toInt32(mask)
		}
		if !s.mask {
			in = in[:1]
		}
		res, err := s.text.Run(in...)
		if err != nil {
			return nil, fmt.Errorf("clipscore: %w", err)
		}
		emb, err := s.rows(s.text, res[0], hi-lo)
		if err != nil {
			return nil, err
		}
		out = append(out, emb...)
	}
	return out, nil
}

// rows splits an [n, embed] output into one slice per row.
func (s *Scorer) rows(m *onnx.Session, t onnx.Tensor, n int) ([][]float32, error) {
	data := t.Float32s()
	if len(data) != n*s.embed {
		return nil, fmt.Errorf("clipscore: model %s: output %q has shape %s for %d inputs, want [%d %d]", m.Name(), t.Name, onnx.FormatShape(t.Shape), n, n, s.embed)
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = data[i*s.embed : (i+1)*s.embed : (i+1)*s.embed]
	}
	return out, nil
}

func toInt32(v []int64) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}
