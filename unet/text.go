package unet

import (
	"fmt"

	"github.com/kediff/kediff/kernels"
)

// textIn is the start of Text2ImUNet.get_text_emb:
//
//	xf_in = token_embedding(tokens) + positional_embedding
//	xf_in = where(mask, xf_in, padding_embedding)   (with xf_padding)
type textIn struct {
	L, W     int
	tok, pos kernels.View // token_embedding.weight (n_vocab, W), positional_embedding (L, W)
	pad      kernels.View // padding_embedding (L, W), with xf_padding
	padding  bool
	emb, out tensor // (B*L, W)
}

func (t *textIn) output() *tensor { return &t.out }
func (t *textIn) reserve(m *Model, a *arena) {
	t.emb, t.out = a.take(m.B*t.L*t.W), a.take(m.B*t.L*t.W)
}

func (t *textIn) padded(m *Model, b, l int) bool { return t.padding && !m.mask[b*t.L+l] }

func (t *textIn) forward(m *Model) {
	be, L, W := m.be, t.L, t.W
	be.EmbeddingForward(t.emb.v, m.p(t.tok), m.tokens, m.Config.NVocab, W)
	pos, pad := m.p(t.pos), m.p(t.pad)
	for b := 0; b < m.B; b++ {
		be.AddForward(t.out.v[b*L*W:(b+1)*L*W], t.emb.v[b*L*W:(b+1)*L*W], pos, L*W)
		for l := 0; l < L; l++ {
			if t.padded(m, b, l) {
				row := t.out.v[(b*L+l)*W : (b*L+l+1)*W]
				be.Zero(row)
				be.Accumulate(row, pad[l*W:(l+1)*W], W)
			}
		}
	}
}

func (t *textIn) backward(m *Model) {
	be, L, W := m.be, t.L, t.W
	dpos, dpad := m.dp(t.pos), m.dp(t.pad)
	for b := 0; b < m.B; b++ {
		for l := 0; l < L; l++ {
			i := b*L + l
			g := t.out.g[i*W : (i+1)*W]
			if t.padded(m, b, l) {
				be.Accumulate(dpad[l*W:(l+1)*W], g, W)
				continue
			}
			be.Accumulate(t.emb.g[i*W:(i+1)*W], g, W)
			be.Accumulate(dpos[l*W:(l+1)*W], g, W)
		}
	}
	// Padded rows of emb.g stay zero, so they add nothing to their tokens.
	be.EmbeddingBackward(m.dp(t.tok), t.emb.g, m.tokens, m.Config.NVocab, W)
}

// xfBlock is xf.py's ResidualAttentionBlock (pre-LN):
//
//	x = x + attn.c_proj(attention(attn.c_qkv(ln_1(x))))
//	x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
//
// c_qkv's output is viewed per head as (q, k, v), each W/heads wide; there is
// no attention mask (padding is marked by the padding embedding).
type xfBlock struct {
	L, W, NH, D int

	in                   *tensor
	ln1, ln2             layerNorm
	qkv, proj, fc, proj2 linear
	n1, qkvc, qkvT, qkvS tensor // (BL,W), (BL,3W), (B,NH,3,L,D), (3, B,NH,L,D)
	ao, aoT, pr, x1      tensor // (B,NH,L,D), (B,L,W), c_proj, residual
	n2, f, g, p2, out    tensor // ln_2, c_fc (BL,4W), gelu, c_proj, residual
	att                  []float32
}

func newXFBlock(m *Model, i int, in *tensor) *xfBlock {
	c := m.Config
	l := m.Params.Layout
	W := c.XFWidth
	p := fmt.Sprintf("transformer.resblocks.%d", i)
	x := &xfBlock{L: c.TextCtx, W: W, NH: c.XFHeads, D: W / c.XFHeads, in: in}
	// module registration order: attn, ln_1, mlp, ln_2
	x.qkv = newLinear(l, p+".attn.c_qkv", W, 3*W)
	x.proj = newLinear(l, p+".attn.c_proj", W, W)
	x.ln1 = newLayerNorm(l, p+".ln_1", W)
	x.fc = newLinear(l, p+".mlp.c_fc", W, 4*W)
	x.proj2 = newLinear(l, p+".mlp.c_proj", 4*W, W)
	x.ln2 = newLayerNorm(l, p+".ln_2", W)
	return x
}

func (x *xfBlock) output() *tensor { return &x.out }

func (x *xfBlock) shape(B int) kernels.AttentionShape {
	return kernels.AttentionShape{B: B, NH: x.NH, Nq: x.L, Nk: x.L, D: x.D}
}

func (x *xfBlock) reserve(m *Model, a *arena) {
	BL := m.B * x.L
	n := BL * x.W
	x.n1, x.qkvc, x.qkvT, x.qkvS = a.take(n), a.take(3*n), a.take(3*n), a.take(3*n)
	x.ao, x.aoT, x.pr, x.x1 = a.take(n), a.take(n), a.take(n), a.take(n)
	x.n2, x.f, x.g, x.p2, x.out = a.take(n), a.take(4*n), a.take(4*n), a.take(n), a.take(n)
	x.ln1.reserve(a, BL)
	x.ln2.reserve(a, BL)
	s := x.shape(m.B)
	x.att = a.stats(s.B * s.NH * s.Nq * s.Nk)
	m.scratchN = max(m.scratchN, s.B*s.NH*s.Nq*s.Nk)
}

func (x *xfBlock) forward(m *Model) {
	be, B := m.be, m.B
	BL := B * x.L
	n := BL * x.W
	x.ln1.forward(m, x.n1.v, x.in.v, BL)
	x.qkv.forward(m, x.qkvc.v, x.n1.v, BL)
	be.Permute0213(x.qkvT.v, x.qkvc.v, B, x.L, 3*x.NH, x.D)
	be.Permute0213(x.qkvS.v, x.qkvT.v, 1, B*x.NH, 3, x.L*x.D)
	be.AttentionForward(x.ao.v, x.att, x.qkvS.v[:n], x.qkvS.v[n:2*n], x.qkvS.v[2*n:], nil, nil, x.shape(B))
	be.Permute0213(x.aoT.v, x.ao.v, B, x.NH, x.L, x.D)
	x.proj.forward(m, x.pr.v, x.aoT.v, BL)
	be.AddForward(x.x1.v, x.in.v, x.pr.v, n)
	x.ln2.forward(m, x.n2.v, x.x1.v, BL)
	x.fc.forward(m, x.f.v, x.n2.v, BL)
	be.GELUForward(x.g.v, x.f.v, 4*n)
	x.proj2.forward(m, x.p2.v, x.g.v, BL)
	be.AddForward(x.out.v, x.x1.v, x.p2.v, n)
}

func (x *xfBlock) backward(m *Model) {
	be, B := m.be, m.B
	BL := B * x.L
	n := BL * x.W
	be.Accumulate(x.x1.g, x.out.g, n)
	be.Accumulate(x.p2.g, x.out.g, n)
	x.proj2.backward(m, x.g.g, x.p2.g, x.g.v, BL)
	be.GELUBackward(x.f.g, x.g.g, x.f.v, 4*n)
	x.fc.backward(m, x.n2.g, x.f.g, x.n2.v, BL)
	x.ln2.backward(m, x.x1.g, x.n2.g, x.x1.v, BL)
	be.Accumulate(x.in.g, x.x1.g, n)
	be.Accumulate(x.pr.g, x.x1.g, n)
	x.proj.backward(m, x.aoT.g, x.pr.g, x.aoT.v, BL)
	be.Permute0213Backward(x.ao.g, x.aoT.g, B, x.NH, x.L, x.D)
	s := x.shape(B)
	q, k, v := x.qkvS.v[:n], x.qkvS.v[n:2*n], x.qkvS.v[2*n:]
	be.AttentionBackward(x.qkvS.g[:n], x.qkvS.g[n:2*n], x.qkvS.g[2*n:], m.scratch[:s.B*s.NH*s.Nq*s.Nk], x.ao.g, x.att, q, k, v, nil, s)
	be.Permute0213Backward(x.qkvT.g, x.qkvS.g, 1, B*x.NH, 3, x.L*x.D)
	be.Permute0213Backward(x.qkvc.g, x.qkvT.g, B, x.L, 3*x.NH, x.D)
	x.qkv.backward(m, x.n1.g, x.qkvc.g, x.n1.v, BL)
	x.ln1.backward(m, x.in.g, x.n1.g, x.in.v, BL)
}

// textFinal ends the text encoder: xf_out = final_ln(x) with xf_final_ln
// (else x itself). xf_out (B, L, W) is Model.xfOut, read by textProj and by
// every encoder_kv.
type textFinal struct {
	L, W int
	in   *tensor
	ln   *layerNorm
	out  tensor // alias of in without final_ln
}

func (t *textFinal) output() *tensor { return &t.out }
func (t *textFinal) reserve(m *Model, a *arena) {
	t.out = *t.in
	if t.ln != nil {
		t.out = a.take(m.B * t.L * t.W)
		t.ln.reserve(a, m.B*t.L)
	}
}

func (t *textFinal) forward(m *Model) {
	if t.ln != nil {
		t.ln.forward(m, t.out.v, t.in.v, m.B*t.L)
	}
}

func (t *textFinal) backward(m *Model) {
	if t.ln != nil {
		t.ln.backward(m, t.in.g, t.out.g, t.in.v, m.B*t.L)
	}
}

// textProj is the U-Net's first use of the text: xf_proj =
// transformer_proj(xf_out[:, -1]), the last token's vector, which the time
// embedding adds.
type textProj struct {
	L, W   int
	in     *tensor // xf_out
	proj   linear
	xfProj tensor // (B, 4*model_channels)
}

func (t *textProj) output() *tensor { return &t.xfProj }
func (t *textProj) reserve(m *Model, a *arena) {
	t.xfProj = a.take(m.B * t.proj.OC)
}

func (t *textProj) forward(m *Model) {
	for b := 0; b < m.B; b++ {
		last := (b*t.L + t.L - 1) * t.W
		t.proj.forward(m, t.xfProj.v[b*t.proj.OC:(b+1)*t.proj.OC], t.in.v[last:last+t.W], 1)
	}
}

func (t *textProj) backward(m *Model) {
	for b := 0; b < m.B; b++ {
		last := (b*t.L + t.L - 1) * t.W
		t.proj.backward(m, t.in.g[last:last+t.W], t.xfProj.g[b*t.proj.OC:(b+1)*t.proj.OC], t.in.v[last:last+t.W], 1)
	}
}

// timeEmbed is time_embed (Linear mc -> E (0), SiLU (1), Linear E -> E (2)) on
// GLIDE's sinusoidal timestep_embedding, plus xf_proj. It also computes the
// SiLU of the sum, the first op of every ResBlock's emb_layers.
type timeEmbed struct {
	mc, E        int
	l0, l2       linear
	text         *textProj
	sin          []float32 // (B, mc)
	h0, a0, h2   tensor    // (B, E)
	emb, embSilu tensor    // time_embed + xf_proj, and its SiLU
}

// output is the embedding after SiLU that every ResBlock reads (Model.embSilu).
func (t *timeEmbed) output() *tensor { return &t.embSilu }

func (t *timeEmbed) reserve(m *Model, a *arena) {
	B := m.B
	t.sin = a.stats(B * t.mc)
	t.h0, t.a0, t.h2 = a.take(B*t.E), a.take(B*t.E), a.take(B*t.E)
	t.emb, t.embSilu = a.take(B*t.E), a.take(B*t.E)
}

func (t *timeEmbed) forward(m *Model) {
	be, B := m.be, m.B
	be.TimestepEmbedding(t.sin, m.timesteps, B, t.mc, 10000)
	t.l0.forward(m, t.h0.v, t.sin, B)
	be.SiLUForward(t.a0.v, t.h0.v, B*t.E)
	t.l2.forward(m, t.h2.v, t.a0.v, B)
	be.AddForward(t.emb.v, t.h2.v, t.text.xfProj.v, B*t.E)
	be.SiLUForward(t.embSilu.v, t.emb.v, B*t.E)
}

func (t *timeEmbed) backward(m *Model) {
	be, B := m.be, m.B
	be.SiLUBackward(t.emb.g, t.embSilu.g, t.emb.v, B*t.E)
	be.Accumulate(t.h2.g, t.emb.g, B*t.E)
	be.Accumulate(t.text.xfProj.g, t.emb.g, B*t.E)
	t.l2.backward(m, t.a0.g, t.h2.g, t.a0.v, B)
	be.SiLUBackward(t.h0.g, t.a0.g, t.h0.v, B*t.E)
	t.l0.backward(m, nil, t.h0.g, t.sin, B)
}
