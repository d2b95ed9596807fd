package unet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/kediff/kediff/kernels"
)

// Model is a Text2ImUNet: parameters in one kernels.Params buffer whose Layout
// names are the PyTorch state_dict keys, activations for one batch size in
// two flat buffers (values, gradients), and the layers in forward order.
type Model struct {
	Config Config
	Params *kernels.Params
	// Train enables dropout (Config.Dropout); Seed and Forwards pick the
	// dropout masks.
	Train bool
	Seed  uint64
	// Forwards counts Forward calls (a trainer saves and restores it, so a
	// resumed run draws the same dropout masks).
	Forwards uint64
	// NoGrad is inference mode: the next SetBatch allocates no gradient
	// buffers (half the activation memory) and Backward must not be called.
	NoGrad bool
	// SampleOffset is the index of the batch's first sample in the global
	// batch when data-parallel ranks each run a slice of it: dropout masks
	// are drawn per sample from its global index, so the ranks together
	// draw the masks one process running the whole batch would.
	SampleOffset int
	// GradsReady, if set, is called during the backward pass after each
	// layer with an offset into Params.Grad from which every gradient is
	// final (later layers of the backward pass do not touch it): a
	// data-parallel trainer starts all-reducing that part while the pass
	// goes on. The offsets only decrease within one pass and end at 0.
	GradsReady func(from int)

	be     kernels.Backend
	layers []layer
	// paramEnd[i] is the Layout size once layer i was built: layer i owns
	// the parameters in [paramEnd[i-1], paramEnd[i]).
	paramEnd []int
	out      *outLayer
	// shared tensors: the SiLU of the conditioning embedding (every ResBlock's
	// emb_layers input) and the text sequence (every encoder_kv input)
	embSilu, xfOut *tensor
	attn           []*attnBlock
	nText          int // layers[:nText] are the text encoder

	// per-batch state
	B                   int
	act, grad, stat     []float32
	scratch             []float32
	scratchN            int
	x                   tensor    // input z_t (B, in, H, W)
	timesteps           []float32 // (B)
	tokens              []int32   // (B*L)
	mask                []bool    // (B*L)
	noiseBuf, weightBuf []float32
	hostBuf             []float32 // Host's copy
}

// NewModel builds the model for cfg on backend be (nil means kernels.CPU)
// with zeroed parameters; call Init or load a checkpoint.
func NewModel(cfg Config, be kernels.Backend) (*Model, error) {
	m, err := build(cfg, be)
	if err != nil {
		return nil, err
	}
	m.Params = kernels.NewParams(m.be, m.Params.Layout)
	return m, nil
}

// NewInferenceModel builds the model for cfg on backend be for sampling: in
// NoGrad mode, with parameter values only (no gradients or AdamW moments).
func NewInferenceModel(cfg Config, be kernels.Backend) (*Model, error) {
	m, err := build(cfg, be)
	if err != nil {
		return nil, err
	}
	m.Params = kernels.NewInferenceParams(m.be, m.Params.Layout)
	m.NoGrad = true
	return m, nil
}

// build constructs the layers and the parameter Layout, without buffers.
func build(cfg Config, be kernels.Backend) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if be == nil {
		be = &kernels.CPU{}
	}
	m := &Model{Config: cfg, be: be}
	l := &kernels.Layout{}
	m.Params = &kernels.Params{Layout: l}
	c := cfg
	L, W, E := c.TextCtx, c.XFWidth, c.TimeEmbedDim()

	// Text2ImUNet's own parameters, then the text encoder (get_text_emb).
	tin := &textIn{L: L, W: W, padding: c.XFPadding}
	tin.pos = l.Add("positional_embedding", L, W)
	if c.XFPadding {
		tin.pad = l.Add("padding_embedding", L, W)
	}
	tin.tok = l.Add("token_embedding.weight", c.NVocab, W)
	m.push(tin)
	h := tin.output()
	for i := range c.XFLayers {
		x := newXFBlock(m, i, h)
		m.push(x)
		h = x.output()
	}
	fin := &textFinal{L: L, W: W, in: h}
	if c.XFFinalLN {
		ln := newLayerNorm(l, "final_ln", W)
		fin.ln = &ln
	}
	m.push(fin)
	m.xfOut = fin.output()
	m.nText = len(m.layers)
	tout := &textProj{L: L, W: W, in: m.xfOut, proj: newLinear(l, "transformer_proj", W, E)}
	m.push(tout)

	// time_embed(timestep_embedding(t)) + xf_proj
	te := &timeEmbed{mc: c.ModelChannels, E: E, text: tout,
		l0: newLinear(l, "time_embed.0", c.ModelChannels, E),
		l2: newLinear(l, "time_embed.2", E, E)}
	m.push(te)
	m.embSilu = te.output()

	m.buildUNet()
	for _, ly := range m.layers {
		if a, ok := ly.(*attnBlock); ok {
			m.attn = append(m.attn, a)
		}
	}
	return m, nil
}

// p and dp return a parameter's values and gradient.
func (m *Model) p(v kernels.View) []float32 {
	if v.Size == 0 {
		return nil
	}
	return m.Params.Data[v.Offset : v.Offset+v.Size : v.Offset+v.Size]
}

func (m *Model) dp(v kernels.View) []float32 {
	if v.Size == 0 {
		return nil
	}
	return m.Params.Grad[v.Offset : v.Offset+v.Size : v.Offset+v.Size]
}

// Backend is the kernels the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

// ZeroGrad clears the parameter gradients (on the model's backend).
func (m *Model) ZeroGrad() { m.be.Zero(m.Params.Grad) }

// Host returns the values of buf, a buffer of the model's backend (such as
// what Forward returns), as host memory: buf itself on the CPU, else a copy
// into a slice the model reuses until the next call.
func (m *Model) Host(buf []float32) []float32 {
	if _, ok := m.be.(*kernels.CPU); ok {
		return buf
	}
	if cap(m.hostBuf) < len(buf) {
		m.hostBuf = make([]float32, len(buf))
	}
	h := m.hostBuf[:len(buf)]
	m.be.CopyToHost(h, buf)
	return h
}

// NumParams is the parameter count.
func (m *Model) NumParams() int { return m.Params.Layout.Size() }

// SetBatch sizes the activation buffers for batch size B (Forward calls it
// when the batch size changes), with gradient buffers unless NoGrad.
func (m *Model) SetBatch(B int) {
	if B == m.B && m.act != nil && (m.grad != nil) == !m.NoGrad {
		return
	}
	m.B = B
	c := m.Config
	reserve := func(a *arena) {
		m.scratchN = 0
		m.x = a.take(B * c.InChannels * c.ImageSize * c.ImageSize)
		m.timesteps = a.stats(B)
		for _, ly := range m.layers {
			ly.reserve(m, a)
		}
	}
	var count arena
	reserve(&count)
	m.freeActivations()
	a := arena{act: m.be.Alloc(count.nAct, kernels.ForActivations), stat: m.be.Alloc(count.nStat, kernels.ForStats)}
	if !m.NoGrad {
		a.grad = m.be.Alloc(count.nAct, kernels.ForActivationGrads)
	}
	reserve(&a)
	m.act, m.grad, m.stat = a.act, a.grad, a.stat
	m.scratch = nil
	if !m.NoGrad {
		m.scratch = m.be.Alloc(m.scratchN, kernels.ForStats)
	}
}

// freeActivations releases the activation buffers of the last SetBatch.
func (m *Model) freeActivations() {
	for _, b := range [][]float32{m.act, m.grad, m.stat, m.scratch} {
		m.be.Free(b)
	}
	m.act, m.grad, m.stat, m.scratch = nil, nil, nil, nil
}

// Close releases the model's backend memory (parameters, activations,
// staging buffers); the model is unusable after it. On the CPU it only drops
// references.
func (m *Model) Close() {
	m.freeActivations()
	p := m.Params
	for _, b := range [][]float32{p.Data, p.Grad, p.M, p.V, m.noiseBuf, m.weightBuf} {
		m.be.Free(b)
	}
	p.Data, p.Grad, p.M, p.V, m.noiseBuf, m.weightBuf = nil, nil, nil, nil, nil, nil
	m.B = 0
}

// ActivationFloats is the element count of the activation buffers for the
// current batch size (values + gradients + statistics).
func (m *Model) ActivationFloats() int {
	return len(m.act) + len(m.grad) + len(m.stat) + len(m.scratch)
}

// Batch is one model input.
type Batch struct {
	X         []float32 // z_t, (B, in_channels, H, W)
	Timesteps []float32 // (B), in [0, T)
	Tokens    []int32   // (B, text_ctx)
	Mask      []bool    // (B, text_ctx): true for real tokens, false for padding
	// Keyword weighting (DESIGN.md 1.3), both optional: WA[b] is w_a for a
	// sample selected for textual knowledge and 0 otherwise; Keyword[b*L+j]
	// marks keyword text tokens. Image keys of a sample with WA[b] > 0 and its
	// keyword text keys are scaled by 1 + WA[b].
	WA      []float32
	Keyword []bool
}

// N is the batch size implied by Timesteps.
func (b *Batch) N() int { return len(b.Timesteps) }

func (m *Model) check(in *Batch) error {
	c := m.Config
	B := in.N()
	L := c.TextCtx
	switch {
	case B == 0:
		return fmt.Errorf("unet: forward: empty batch")
	case len(in.X) != B*c.InChannels*c.ImageSize*c.ImageSize:
		return fmt.Errorf("unet: forward: x has %d values, want %d = %dx%dx%dx%d", len(in.X), B*c.InChannels*c.ImageSize*c.ImageSize, B, c.InChannels, c.ImageSize, c.ImageSize)
	case len(in.Tokens) != B*L || len(in.Mask) != B*L:
		return fmt.Errorf("unet: forward: tokens %d and mask %d, want %d = %d samples x text_ctx %d", len(in.Tokens), len(in.Mask), B*L, B, L)
	case in.WA != nil && len(in.WA) != B:
		return fmt.Errorf("unet: forward: w_a has %d values for %d samples", len(in.WA), B)
	case in.Keyword != nil && len(in.Keyword) != B*L:
		return fmt.Errorf("unet: forward: keyword flags %d, want %d", len(in.Keyword), B*L)
	}
	for i, t := range in.Tokens {
		if t < 0 || int(t) >= c.NVocab {
			return fmt.Errorf("unet: forward: token %d at sample %d position %d outside the vocabulary of %d", t, i/L, i%L, c.NVocab)
		}
	}
	return nil
}

// Forward runs the model on in and returns eps_theta (B, out_channels, H, W),
// a view into the model's buffers valid until the next Forward.
func (m *Model) Forward(in *Batch) ([]float32, error) {
	if err := m.check(in); err != nil {
		return nil, err
	}
	m.load(in)
	m.be.CopyToDevice(m.timesteps, in.Timesteps)
	for _, ly := range m.layers {
		ly.forward(m)
	}
	return m.out.out.v, nil
}

// load sizes the buffers for in and copies its inputs to the backend.
func (m *Model) load(in *Batch) {
	m.SetBatch(in.N())
	m.Forwards++
	m.be.CopyToDevice(m.x.v, in.X)
	m.tokens = append(m.tokens[:0], in.Tokens...)
	m.mask = append(m.mask[:0], in.Mask...)
	m.setKeys(in)
}

// TextFloats is the size of one prompt's text encoding, text_ctx x xf_width.
func (m *Model) TextFloats() int { return m.Config.TextCtx * m.Config.XFWidth }

// EncodeText runs the text encoder (embeddings, transformer, final
// LayerNorm) on B = len(mask)/text_ctx prompts and returns xf_out (B,
// text_ctx, xf_width), a new host slice. The U-Net's own projections of it
// (transformer_proj, every encoder_kv) are not applied: ForwardEncoded does
// that, so one encoding serves every expert that shares this text encoder.
func (m *Model) EncodeText(tokens []int32, mask []bool) ([]float32, error) {
	c := m.Config
	if len(tokens) != len(mask) || len(mask) == 0 || len(mask)%c.TextCtx != 0 {
		return nil, fmt.Errorf("unet: encode text: %d tokens and %d mask values, want equal multiples of text_ctx %d", len(tokens), len(mask), c.TextCtx)
	}
	B := len(mask) / c.TextCtx
	in := &Batch{X: make([]float32, B*c.InChannels*c.ImageSize*c.ImageSize), Timesteps: make([]float32, B), Tokens: tokens, Mask: mask}
	if err := m.check(in); err != nil {
		return nil, err
	}
	m.load(in)
	for _, ly := range m.layers[:m.nText] {
		ly.forward(m)
	}
	out := make([]float32, B*m.TextFloats())
	m.be.CopyToHost(out, m.xfOut.v)
	return out, nil
}

// ForwardEncoded is Forward with the text encoder's output given: xf (B,
// text_ctx, xf_width) from EncodeText of in's tokens and mask (the mask
// still decides the attention's key mask with attention_mask_padding).
func (m *Model) ForwardEncoded(in *Batch, xf []float32) ([]float32, error) {
	if err := m.check(in); err != nil {
		return nil, err
	}
	if len(xf) != in.N()*m.TextFloats() {
		return nil, fmt.Errorf("unet: forward: text encoding has %d values, want %d = %d samples x text_ctx %d x xf_width %d", len(xf), in.N()*m.TextFloats(), in.N(), m.Config.TextCtx, m.Config.XFWidth)
	}
	m.load(in)
	m.be.CopyToDevice(m.timesteps, in.Timesteps)
	m.be.CopyToDevice(m.xfOut.v, xf)
	for _, ly := range m.layers[m.nText:] {
		ly.forward(m)
	}
	return m.out.out.v, nil
}

// setKeys fills each attention block's per-key logit scale s_j and, with
// attention_mask_padding, its key mask. Keys are the L text tokens, then the
// block's T pixels.
func (m *Model) setKeys(in *Batch) {
	L := m.Config.TextCtx
	for _, a := range m.attn {
		nk := L + a.T
		ks := make([]float32, m.B*nk)
		var km []float32
		if a.keyMask != nil {
			km = make([]float32, m.B*nk)
		}
		for b := 0; b < m.B; b++ {
			var wa float32
			if in.WA != nil {
				wa = in.WA[b]
			}
			row := ks[b*nk : (b+1)*nk]
			for j := range row {
				row[j] = 1
				if wa != 0 && (j >= L || (in.Keyword != nil && in.Keyword[b*L+j])) {
					row[j] = 1 + wa
				}
			}
			if km != nil {
				for j := range nk {
					km[b*nk+j] = 1
					if j < L && !in.Mask[b*L+j] {
						km[b*nk+j] = 0
					}
				}
			}
		}
		m.be.CopyToDevice(a.keyScale, ks)
		if km != nil {
			m.be.CopyToDevice(a.keyMask, km)
		}
	}
}

// Backward propagates dEps (B, out_channels, H, W), the gradient of the loss
// with respect to the last Forward's output, and accumulates every parameter
// gradient into Params.Grad.
func (m *Model) Backward(dEps []float32) {
	m.mustHaveGrad()
	m.be.Zero(m.grad)
	m.be.Accumulate(m.out.out.g, dEps, len(m.out.out.g))
	m.backward()
}

func (m *Model) mustHaveGrad() {
	if m.grad == nil {
		panic("unet: backward on a model in NoGrad (inference) mode")
	}
}

func (m *Model) backward() {
	for i := len(m.layers) - 1; i >= 0; i-- {
		m.layers[i].backward(m)
		if m.GradsReady != nil && (i == 0 || m.paramEnd[i-1] < m.paramEnd[i]) {
			if i == 0 {
				m.GradsReady(0)
			} else {
				m.GradsReady(m.paramEnd[i-1])
			}
		}
	}
}

// push appends a layer whose parameters were the last added to the Layout.
func (m *Model) push(ly layer) {
	m.layers = append(m.layers, ly)
	m.paramEnd = append(m.paramEnd, m.Params.Layout.Size())
}

// dropout runs the dropout of a (B, per) tensor sample by sample, each
// sample's mask a function of the layer's seed and the sample's index in
// the global batch (SampleOffset), so that a batch split across ranks draws
// one process's masks.
func (m *Model) dropout(out, inp []float32, per int, p float64, seed uint64, backward bool) {
	n := m.B
	if p <= 0 { // identity: one call
		n, per = 1, per*m.B
	}
	for b := range n {
		s := mix64(seed ^ uint64(m.SampleOffset+b+1)*0x9e3779b97f4a7c15)
		o, i := out[b*per:(b+1)*per], inp[b*per:(b+1)*per]
		if backward {
			m.be.DropoutBackward(o, i, per, p, s)
		} else {
			m.be.DropoutForward(o, i, per, p, s)
		}
	}
}

// dropoutSeed derives a per-layer, per-forward seed (splitmix64).
func (m *Model) dropoutSeed(layer int) uint64 {
	return mix64(m.Seed ^ m.Forwards*0x9e3779b97f4a7c15 ^ uint64(layer+1)*0xbf58476d1ce4e5b9)
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Init fills the parameters as a freshly constructed PyTorch Text2ImUNet
// would be: nn.Linear/nn.Conv weights and biases uniform in +-1/sqrt(fan_in),
// norms at weight 1 and bias 0, token_embedding N(0, 1), GLIDE's
// zero_module layers (out_layers.3, proj_out, out.2) at zero. GLIDE leaves the
// positional and padding embeddings uninitialised (th.empty); they get
// N(0, 0.01^2) here.
func (m *Model) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6b656469666621))
	host := make([]float32, len(m.Params.Data))
	defer m.be.CopyToDevice(m.Params.Data, host)
	for _, v := range m.Params.Layout.Views() {
		w := host[v.Offset : v.Offset+v.Size]
		name := v.Name
		switch {
		case strings.Contains(name, "out_layers.3.") || strings.Contains(name, "proj_out.") || strings.HasPrefix(name, "out.2."):
			clear(w)
		case name == "positional_embedding" || name == "padding_embedding":
			for i := range w {
				w[i] = float32(0.01 * rng.NormFloat64())
			}
		case name == "token_embedding.weight":
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
		case isNorm(name):
			val := float32(0)
			if strings.HasSuffix(name, ".weight") {
				val = 1
			}
			for i := range w {
				w[i] = val
			}
		default:
			// fan_in from the weight of the same module
			wv, _ := m.Params.Layout.Lookup(strings.TrimSuffix(strings.TrimSuffix(name, ".weight"), ".bias") + ".weight")
			fanIn := 1
			for _, d := range wv.Shape[1:] {
				fanIn *= d
			}
			bound := 1 / math.Sqrt(float64(fanIn))
			for i := range w {
				w[i] = float32(bound * (2*rng.Float64() - 1))
			}
		}
	}
}

// IsTextEncoder reports whether a parameter belongs to the shared text
// encoder (frozen while experts are fine-tuned): the token, positional and
// padding embeddings, the transformer and its final LayerNorm. The U-Net's
// projections of the text (transformer_proj, encoder_kv) are not.
func IsTextEncoder(name string) bool {
	for _, p := range []string{"token_embedding.", "transformer.", "final_ln."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "positional_embedding" || name == "padding_embedding"
}

// isNorm reports whether a parameter belongs to a GroupNorm or LayerNorm.
func isNorm(name string) bool {
	if strings.HasPrefix(name, "out.0.") || strings.HasPrefix(name, "final_ln.") {
		return true
	}
	for _, s := range []string{"in_layers.0.", "out_layers.0.", ".norm.", "ln_1.", "ln_2."} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
