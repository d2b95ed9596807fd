package caption

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kediff/kediff/onnx"
)

// File names of a vision-encoder-decoder export, as Hugging Face optimum
// writes them.
const (
	EncoderFile      = "encoder_model.onnx"
	DecoderFile      = "decoder_model.onnx"
	TokenizerFile    = "tokenizer.json"
	PreprocessorFile = "preprocessor_config.json"
	ConfigFile       = "config.json"
	GenerationFile   = "generation_config.json"
)

// Options configures Open.
type Options struct {
	// Session is passed to onnx.Open for both models (library, threads, CUDA).
	Session onnx.SessionOptions
	// BatchSize is how many images one encoder run takes; a decoder run takes
	// their live beams (up to BatchSize*NumBeams rows). Default 8.
	BatchSize int
	// Search is the default generation setting for Generate.
	Search Search
}

// Captioner generates captions with an encoder/decoder ONNX pair. It is safe
// for concurrent use.
type Captioner struct {
	enc, dec    *onnx.Session
	tok         *Tokenizer
	pre         *Preprocessor
	start, eos  int64
	hidden      int64 // encoder hidden size; -1 when dynamic
	batch       int
	search      Search
	inW, inH    int64 // static encoder input size, -1 when dynamic
	dir         string
	vocabLogits int64
}

// Result is one image's outcome.
type Result struct {
	Caption string
	IDs     []int // generated token ids, EOS included when generated
	Err     error // the image could not be captioned (the row is rejected)
}

type genConfig struct {
	DecoderStartTokenID json.RawMessage `json:"decoder_start_token_id"`
	BosTokenID          json.RawMessage `json:"bos_token_id"`
	EosTokenID          json.RawMessage `json:"eos_token_id"`
	MaxLength           int             `json:"max_length"`
	NumBeams            int             `json:"num_beams"`
	Decoder             *genConfig      `json:"decoder"`
}

// firstID reads a token id given as a number or a list of numbers.
func firstID(raw json.RawMessage) (int64, bool) {
	if isNull(raw) {
		return 0, false
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var l []int64
	if json.Unmarshal(raw, &l) == nil && len(l) > 0 {
		return l[0], true
	}
	return 0, false
}

// Open loads a captioner from a folder holding encoder_model.onnx,
// decoder_model.onnx, tokenizer.json, preprocessor_config.json and
// config.json (generation_config.json, when present, is read first for the
// token ids and max_length). It checks the layout: the encoder takes
// pixel_values [N,3,H,W] float32 and returns last_hidden_state [N,S,D]; the
// decoder takes input_ids [N,L] int64 and encoder_hidden_states [N,S,D] and
// returns logits [N,L,V]; static sizes must agree with each other and with the
// preprocessor. Errors name the file, the tensor and the expected and actual
// shapes.
func Open(dir string, opt Options) (*Captioner, error) {
	c := &Captioner{dir: dir, batch: opt.BatchSize, search: opt.Search}
	if c.batch <= 0 {
		c.batch = 8
	}
	var err error
	if c.tok, err = LoadTokenizer(filepath.Join(dir, TokenizerFile)); err != nil {
		return nil, err
	}
	if c.pre, err = LoadPreprocessor(filepath.Join(dir, PreprocessorFile)); err != nil {
		return nil, err
	}
	if err := c.readConfig(); err != nil {
		return nil, err
	}
	if c.enc, err = onnx.Open(filepath.Join(dir, EncoderFile), opt.Session); err != nil {
		return nil, fmt.Errorf("caption: encoder: %w", err)
	}
	if c.dec, err = onnx.Open(filepath.Join(dir, DecoderFile), opt.Session); err != nil {
		c.enc.Close()
		return nil, fmt.Errorf("caption: decoder: %w", err)
	}
	if err := c.checkLayout(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Captioner) readConfig() error {
	var cfgs []genConfig
	for _, name := range []string{GenerationFile, ConfigFile} {
		data, err := readLimited(filepath.Join(c.dir, name), MaxConfigBytes, name)
		if errors.Is(err, os.ErrNotExist) && name == GenerationFile {
			continue
		}
		if err != nil {
			return fmt.Errorf("caption: %w", err)
		}
		var g genConfig
		if err := json.Unmarshal(data, &g); err != nil {
			return fmt.Errorf("caption: %s is not valid JSON: %v", filepath.Join(c.dir, name), err)
		}
		cfgs = append(cfgs, g)
		if g.Decoder != nil {
			cfgs = append(cfgs, *g.Decoder)
		}
	}
	pick := func(get func(g genConfig) json.RawMessage) (int64, bool) {
		for _, g := range cfgs {
			if id, ok := firstID(get(g)); ok {
				return id, true
			}
		}
		return 0, false
	}
	var ok bool
	if c.start, ok = pick(func(g genConfig) json.RawMessage { return g.DecoderStartTokenID }); !ok {
		if c.start, ok = pick(func(g genConfig) json.RawMessage { return g.BosTokenID }); !ok {
			return fmt.Errorf("caption: %s has no decoder_start_token_id or bos_token_id; add one", filepath.Join(c.dir, ConfigFile))
		}
	}
	if c.eos, ok = pick(func(g genConfig) json.RawMessage { return g.EosTokenID }); !ok {
		return fmt.Errorf("caption: %s has no eos_token_id; add one", filepath.Join(c.dir, ConfigFile))
	}
	for _, g := range cfgs {
		if c.search.MaxLength == 0 && g.MaxLength > 0 {
			c.search.MaxLength = g.MaxLength
		}
	}
	if c.search.MaxLength == 0 {
		c.search.MaxLength = 20
	}
	if c.search.NumBeams == 0 {
		c.search.NumBeams = 1
	}
	return nil
}

func (c *Captioner) checkLayout() error {
	in, ok := c.enc.Input("pixel_values")
	if !ok || len(c.enc.Inputs()) != 1 {
		return fmt.Errorf("caption: model %s has inputs %s, want only \"pixel_values\" [N 3 H W] float32 (a vision-encoder-decoder encoder_model.onnx)", EncoderFile, infos(c.enc.Inputs()))
	}
	if err := c.enc.CheckTensor("input", in, []int64{-1, 3, -1, -1}, "float32"); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	c.inH, c.inW = in.Shape[2], in.Shape[3]
	if c.pre.Resize && c.pre.ShortestEdge == 0 {
		w, h := c.pre.OutputSize(1, 1)
		if (c.inW >= 0 && c.inW != int64(w)) || (c.inH >= 0 && c.inH != int64(h)) {
			return fmt.Errorf("caption: %w", &onnx.ShapeError{Model: EncoderFile, Kind: "input", Tensor: "pixel_values",
				Want: []int64{-1, 3, int64(h), int64(w)}, Got: in.Shape, Hint: "preprocessor_config.json size must match the model's input size"})
		}
	}
	out, ok := c.enc.Output("last_hidden_state")
	if !ok {
		return fmt.Errorf("caption: model %s has no output \"last_hidden_state\" (it has %s)", EncoderFile, infos(c.enc.Outputs()))
	}
	if err := c.enc.CheckTensor("output", out, []int64{-1, -1, -1}, "float32"); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	c.hidden = out.Shape[2]

	ids, ok1 := c.dec.Input("input_ids")
	hs, ok2 := c.dec.Input("encoder_hidden_states")
	extra := 0
	for _, in := range c.dec.Inputs() {
		switch in.Name {
		case "attention_mask", "encoder_attention_mask":
			if err := c.dec.CheckTensor("input", in, []int64{-1, -1}, "int64"); err != nil {
				return fmt.Errorf("caption: %w", err)
			}
			extra++
		}
	}
	if !ok1 || !ok2 || len(c.dec.Inputs()) != 2+extra {
		return fmt.Errorf("caption: model %s has inputs %s, want \"input_ids\" [N L] int64 and \"encoder_hidden_states\" [N S D] float32 (optionally attention_mask and encoder_attention_mask), no past key values: use decoder_model.onnx, not decoder_with_past_model.onnx or decoder_model_merged.onnx",
			DecoderFile, infos(c.dec.Inputs()))
	}
	if err := c.dec.CheckTensor("input", ids, []int64{-1, -1}, "int64"); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	if err := c.dec.CheckTensor("input", hs, []int64{-1, -1, c.hidden}, "float32"); err != nil {
		return fmt.Errorf("caption: %w (the encoder's last_hidden_state is %s)", err, onnx.FormatShape(out.Shape))
	}
	if c.hidden < 0 {
		c.hidden = hs.Shape[2]
	}
	lg, ok := c.dec.Output("logits")
	if !ok {
		return fmt.Errorf("caption: model %s has no output \"logits\" (it has %s)", DecoderFile, infos(c.dec.Outputs()))
	}
	if err := c.dec.CheckTensor("output", lg, []int64{-1, -1, -1}, "float32"); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	c.vocabLogits = lg.Shape[2]
	if v := c.vocabLogits; v >= 0 && (c.start >= v || c.eos >= v || c.start < 0 || c.eos < 0) {
		return fmt.Errorf("caption: model %s has %d logits, but config.json's start token %d or eos token %d is outside 0..%d",
			DecoderFile, v, c.start, c.eos, v-1)
	}
	return nil
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

// Tokenizer returns the captioner's tokenizer.
func (c *Captioner) Tokenizer() *Tokenizer { return c.tok }

// Close releases both sessions.
func (c *Captioner) Close() error {
	var errs []error
	if c.enc != nil {
		errs = append(errs, c.enc.Close())
	}
	if c.dec != nil {
		errs = append(errs, c.dec.Close())
	}
	return errors.Join(errs...)
}

// Generate captions imgs with the search setting s (zero fields take the
// captioner's defaults). It returns one caption per image, or the first
// image's error; use GenerateEach to keep the captions of the other images.
func (c *Captioner) Generate(imgs []image.Image, s Search) ([]string, error) {
	res := c.GenerateEach(imgs, s)
	out := make([]string, len(res))
	for i, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("caption: image %d: %w", i, r.Err)
		}
		out[i] = r.Caption
	}
	return out, nil
}

// GenerateEach captions imgs in batches of Options.BatchSize and reports each
// image's caption or error. An image that cannot be preprocessed (nil, empty,
// a size the encoder cannot take) or whose model outputs are not finite gets
// an error; the others are captioned.
func (c *Captioner) GenerateEach(imgs []image.Image, s Search) []Result {
	if s.MaxLength <= 0 {
		s.MaxLength = c.search.MaxLength
	}
	if s.NumBeams <= 0 {
		s.NumBeams = c.search.NumBeams
	}
	if s.LengthPenalty == 0 {
		s.LengthPenalty = c.search.LengthPenalty
	}
	res := make([]Result, len(imgs))
	// Images of one pixel_values size run together, in batches.
	onnx.BatchesBySize(len(imgs), c.batch, func(i int) (int, int, bool) {
		img := imgs[i]
		if img == nil || img.Bounds().Empty() {
			res[i].Err = fmt.Errorf("image is nil or empty")
			return 0, 0, false
		}
		w, h := c.pre.OutputSize(img.Bounds().Dx(), img.Bounds().Dy())
		if (c.inW >= 0 && int64(w) != c.inW) || (c.inH >= 0 && int64(h) != c.inH) {
			res[i].Err = fmt.Errorf("image of %dx%d gives pixel_values of %dx%d, but %s takes %dx%d; enable do_resize in %s",
				img.Bounds().Dx(), img.Bounds().Dy(), w, h, EncoderFile, c.inW, c.inH, PreprocessorFile)
			return 0, 0, false
		}
		return w, h, true
	}, func(batch []int, w, h int) {
		c.generateBatch(imgs, batch, w, h, s, res)
	})
	return res
}

func (c *Captioner) generateBatch(imgs []image.Image, idx []int, w, h int, s Search, res []Result) {
	n := len(idx)
	plane := 3 * w * h
	pxp := pxPool.Get()
	defer pxPool.Put(pxp)
	if cap(*pxp) < n*plane {
		*pxp = make([]float32, n*plane)
	}
	px := (*pxp)[:n*plane]
	for j, i := range idx {
		if err := c.pre.Apply(imgs[i], px[j*plane:(j+1)*plane]); err != nil {
			res[i].Err = err
			clear(px[j*plane : (j+1)*plane])
		}
	}
	outs, err := c.enc.Run(onnx.Float32("pixel_values", []int64{int64(n), 3, int64(h), int64(w)}, px))
	if err != nil {
		for _, i := range idx {
			res[i].Err = fmt.Errorf("caption: encoder: %w", err)
		}
		return
	}
	var hsT onnx.Tensor
	for _, o := range outs {
		if o.Name == "last_hidden_state" {
			hsT = o
		}
	}
	hsData := hsT.Float32s()
	if len(hsT.Shape) != 3 || hsT.Shape[0] != int64(n) || (c.hidden >= 0 && hsT.Shape[2] != c.hidden) || hsData == nil {
		for _, i := range idx {
			res[i].Err = fmt.Errorf("caption: %s returned last_hidden_state %s for a batch of %d, want [%d S %d]",
				EncoderFile, onnx.FormatShape(hsT.Shape), n, n, c.hidden)
		}
		return
	}
	seq, dim := hsT.Shape[1], hsT.Shape[2]
	per := int(seq * dim)
	failed := make([]error, n)
	for j, i := range idx {
		if res[i].Err != nil {
			failed[j] = res[i].Err
			continue
		}
		if !finite(hsData[j*per : (j+1)*per]) {
			failed[j] = fmt.Errorf("encoder produced NaN or infinite hidden states")
		}
	}
	// Buffers reused across decoding steps: the steps of a batch run one
	// after another, and search reads a step's logits before the next step.
	var (
		hsBuf    []float32
		hsRows   []int // rowImg that hsBuf was built for
		hsValid  bool
		flat     []int64
		onesBuf  []int64
		last     []float32
		in       = make([]onnx.Tensor, 0, len(c.dec.Inputs()))
		idsShape = make([]int64, 2)
		hsShape  = make([]int64, 3)
		encShape = make([]int64, 2)
	)
	ones := func(n int) []int64 {
		if len(onesBuf) < n {
			old := len(onesBuf)
			onesBuf = append(onesBuf, make([]int64, n-old)...)
			for i := old; i < n; i++ {
				onesBuf[i] = 1
			}
		}
		return onesBuf[:n]
	}
	step := func(ids [][]int64, rowImg []int) ([]float32, int, error) {
		rows, l := len(ids), len(ids[0])
		flat = flat[:0]
		for _, r := range ids {
			flat = append(flat, r...)
		}
		// The rows' encoder states change only when the set of rows does.
		if !hsValid || !slices.Equal(hsRows, rowImg) {
			hsBuf = hsBuf[:0]
			for _, j := range rowImg {
				hsBuf = append(hsBuf, hsData[j*per:(j+1)*per]...)
			}
			hsRows = append(hsRows[:0], rowImg...)
			hsValid = true
		}
		// Inputs go in the model's order; masks (when the export has them) are all ones.
		idsShape[0], idsShape[1] = int64(rows), int64(l)
		hsShape[0], hsShape[1], hsShape[2] = int64(rows), seq, dim
		encShape[0], encShape[1] = int64(rows), seq
		in = in[:0]
		for _, ti := range c.dec.Inputs() {
			switch ti.Name {
			case "input_ids":
				in = append(in, onnx.Int64(ti.Name, idsShape, flat))
			case "encoder_hidden_states":
				in = append(in, onnx.Float32(ti.Name, hsShape, hsBuf))
			case "attention_mask":
				in = append(in, onnx.Int64(ti.Name, idsShape, ones(rows*l)))
			case "encoder_attention_mask":
				in = append(in, onnx.Int64(ti.Name, encShape, ones(rows*int(seq))))
			}
		}
		outs, err := c.dec.Run(in...)
		if err != nil {
			return nil, 0, fmt.Errorf("caption: decoder: %w", err)
		}
		var lg onnx.Tensor
		for _, o := range outs {
			if o.Name == "logits" {
				lg = o
			}
		}
		data := lg.Float32s()
		if len(lg.Shape) != 3 || lg.Shape[0] != int64(rows) || lg.Shape[1] != int64(l) || data == nil || lg.Shape[2] <= max(c.start, c.eos) {
			return nil, 0, fmt.Errorf("caption: %s returned logits %s for input_ids [%d %d], want [%d %d V] with V > %d",
				DecoderFile, onnx.FormatShape(lg.Shape), rows, l, rows, l, max(c.start, c.eos))
		}
		v := int(lg.Shape[2])
		if l == 1 {
			// One position per row: the logits are already each row's last.
			return data[:rows*v], v, nil
		}
		if cap(last) < rows*v {
			last = make([]float32, rows*v)
		}
		last = last[:rows*v]
		for r := range rows {
			copy(last[r*v:(r+1)*v], data[(r*l+l-1)*v:(r*l+l)*v])
		}
		return last, v, nil
	}
	gen := search(n, step, c.start, c.eos, s.NumBeams, s.MaxLength, s.LengthPenalty, failed)
	for j, i := range idx {
		if failed[j] != nil {
			res[i].Err = failed[j]
			continue
		}
		ids := make([]int, len(gen[j]))
		for t, v := range gen[j] {
			ids[t] = int(v)
		}
		res[i].IDs = ids
		res[i].Caption = strings.TrimSpace(c.tok.Decode(ids, true))
	}
}

// pxPool holds encoder input buffers, reused across batches.
var pxPool onnx.FreeList[[]float32]

// finite reports whether x holds no NaN and no infinity (exponent bits all
// ones), four values a step.
func finite(x []float32) bool {
	const exp = 0x7f800000
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		a, b, c, d := math.Float32bits(v[0])&exp, math.Float32bits(v[1])&exp, math.Float32bits(v[2])&exp, math.Float32bits(v[3])&exp
		if a == exp || b == exp || c == exp || d == exp {
			return false
		}
	}
	for ; i < len(x); i++ {
		if math.Float32bits(x[i])&exp == exp {
			return false
		}
	}
	return true
}
