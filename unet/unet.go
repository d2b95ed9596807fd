package unet

import (
	"fmt"

	"github.com/kediff/kediff/kernels"
)

// layer is one step of the forward pass. reserve assigns its activations for
// batch size m.B (run twice, see arena); forward reads its inputs (pointers to
// earlier layers' outputs) and fills its own buffers; backward reads the
// gradient of its output, fully accumulated by the later layers, and
// accumulates into its inputs' gradients and its parameters'.
type layer interface {
	reserve(m *Model, a *arena)
	forward(m *Model)
	backward(m *Model)
	output() *tensor
}

// resBlock is GLIDE's ResBlock (unet.py):
//
//	in_layers:  GroupNorm+SiLU (0), conv3x3 cin->cout (2); with up/down the
//	            resampling (h_upd, x_upd: nearest 2x or 2x2 average) sits
//	            between the SiLU and the conv, and is applied to the skip too
//	emb_layers: SiLU (0), Linear(E, 2*cout or cout) (1)
//	out_layers: GroupNorm (0) [* (1+scale) + shift], SiLU (1), Dropout (2),
//	            conv3x3 cout->cout (3, zero-initialised)
//	skip_connection: identity, or conv1x1 cin->cout when the width changes
//
// Without use_scale_shift_norm the embedding is added before out_layers'
// GroupNorm+SiLU instead. The SiLU of emb_layers is shared by all blocks
// (Model.embSilu).
type resBlock struct {
	cin, cout, H, W, oh, ow int
	up, down, scaleShift    bool
	dropout                 float64
	index                   int // for dropout seeds

	in         *tensor
	gn1, gn2   groupNorm
	conv1      conv
	conv2      conv
	emb        linear
	skip       *conv
	n1, a1     tensor // GroupNorm, SiLU (B,cin,H,W)
	a1u, xu    tensor // resampled h and x (B,cin,oh,ow); aliases without up/down
	h1         tensor // conv1 (B,cout,oh,ow)
	scale      tensor // (B,cout) with scale-shift
	shift      tensor // (B,cout): the shift, or the added embedding
	hpe        tensor // h1 + emb without scale-shift
	n2, ss, a2 tensor // GroupNorm, scale-shift, SiLU
	d2         tensor // dropout (alias of a2 when dropout is 0)
	h2, sk     tensor // conv2, skip branch
	out        tensor
	seed       uint64
}

func newResBlock(m *Model, prefix string, in *tensor, cin, cout, H, W int, up, down bool) *resBlock {
	c := m.Config
	l := m.Params.Layout
	r := &resBlock{cin: cin, cout: cout, H: H, W: W, oh: H, ow: W, up: up, down: down,
		scaleShift: c.UseScaleShiftNorm, dropout: c.Dropout, in: in}
	switch {
	case up:
		r.oh, r.ow = 2*H, 2*W
	case down:
		r.oh, r.ow = H/2, W/2
	}
	G, E := c.NormGroups, c.TimeEmbedDim()
	r.gn1 = newGroupNorm(l, prefix+".in_layers.0", cin, H*W, G)
	r.conv1 = newConv(l, prefix+".in_layers.2", cin, cout, 3, 1, 1, r.oh, r.ow)
	embOut := cout
	if r.scaleShift {
		embOut = 2 * cout
	}
	r.emb = newLinear(l, prefix+".emb_layers.1", E, embOut)
	r.gn2 = newGroupNorm(l, prefix+".out_layers.0", cout, r.oh*r.ow, G)
	r.conv2 = newConv(l, prefix+".out_layers.3", cout, cout, 3, 1, 1, r.oh, r.ow)
	if cout != cin {
		s := newConv(l, prefix+".skip_connection", cin, cout, 1, 1, 0, r.oh, r.ow)
		r.skip = &s
	}
	r.index = len(m.layers)
	return r
}

func (r *resBlock) output() *tensor { return &r.out }

func (r *resBlock) reserve(m *Model, a *arena) {
	B := m.B
	nIn, nOut := B*r.cin*r.H*r.W, B*r.cout*r.oh*r.ow
	r.n1, r.a1 = a.take(nIn), a.take(nIn)
	r.a1u, r.xu = r.a1, *r.in
	if r.up || r.down {
		r.a1u, r.xu = a.take(B*r.cin*r.oh*r.ow), a.take(B*r.cin*r.oh*r.ow)
	}
	r.h1 = a.take(nOut)
	if r.scaleShift {
		r.scale = a.take(B * r.cout)
	}
	r.shift = a.take(B * r.cout)
	if !r.scaleShift {
		r.hpe = a.take(nOut)
	}
	r.n2 = a.take(nOut)
	if r.scaleShift {
		r.ss = a.take(nOut)
	}
	r.a2 = a.take(nOut)
	r.d2 = r.a2
	if r.dropout > 0 {
		r.d2 = a.take(nOut)
	}
	r.h2 = a.take(nOut)
	r.sk = r.xu
	if r.skip != nil {
		r.sk = a.take(nOut)
	}
	r.out = a.take(nOut)
	r.gn1.reserve(a, B)
	r.gn2.reserve(a, B)
}

// embHalves returns the emb_layers.1 weight and bias rows of the scale (first
// cout outputs, th.chunk order) and shift halves, from buf (Data or Grad).
func (r *resBlock) embHalves(buf []float32) (ws, bs, wt, bt []float32) {
	E := r.emb.C
	w := buf[r.emb.w.Offset : r.emb.w.Offset+r.emb.w.Size]
	b := buf[r.emb.b.Offset : r.emb.b.Offset+r.emb.b.Size]
	return w[:r.cout*E], b[:r.cout], w[r.cout*E:], b[r.cout:]
}

func (r *resBlock) dropP(m *Model) float64 {
	if !m.Train {
		return 0
	}
	return r.dropout
}

func (r *resBlock) forward(m *Model) {
	be, B := m.be, m.B
	nIn, ohw := B*r.cin*r.H*r.W, r.oh*r.ow
	nOut := B * r.cout * ohw
	r.gn1.forward(m, r.n1.v, r.in.v)
	be.SiLUForward(r.a1.v, r.n1.v, nIn)
	switch {
	case r.down:
		be.AvgPool2xForward(r.a1u.v, r.a1.v, B*r.cin, r.H, r.W)
		be.AvgPool2xForward(r.xu.v, r.in.v, B*r.cin, r.H, r.W)
	case r.up:
		be.UpsampleNearest2xForward(r.a1u.v, r.a1.v, B*r.cin, r.H, r.W)
		be.UpsampleNearest2xForward(r.xu.v, r.in.v, B*r.cin, r.H, r.W)
	}
	r.conv1.forward(m, r.h1.v, r.a1u.v)
	E := r.emb.C
	if r.scaleShift {
		ws, bs, wt, bt := r.embHalves(m.Params.Data)
		be.LinearForward(r.scale.v, m.embSilu.v, ws, bs, B, E, r.cout)
		be.LinearForward(r.shift.v, m.embSilu.v, wt, bt, B, E, r.cout)
		r.gn2.forward(m, r.n2.v, r.h1.v)
		be.ScaleShiftForward(r.ss.v, r.n2.v, r.scale.v, r.shift.v, B, r.cout, ohw)
		be.SiLUForward(r.a2.v, r.ss.v, nOut)
	} else {
		r.emb.forward(m, r.shift.v, m.embSilu.v, B)
		be.ScaleShiftForward(r.hpe.v, r.h1.v, nil, r.shift.v, B, r.cout, ohw)
		r.gn2.forward(m, r.n2.v, r.hpe.v)
		be.SiLUForward(r.a2.v, r.n2.v, nOut)
	}
	if r.dropout > 0 {
		r.seed = m.dropoutSeed(r.index)
		m.dropout(r.d2.v, r.a2.v, r.cout*ohw, r.dropP(m), r.seed, false)
	}
	r.conv2.forward(m, r.h2.v, r.d2.v)
	if r.skip != nil {
		r.skip.forward(m, r.sk.v, r.xu.v)
	}
	be.AddForward(r.out.v, r.sk.v, r.h2.v, nOut)
}

func (r *resBlock) backward(m *Model) {
	be, B := m.be, m.B
	nIn, ohw := B*r.cin*r.H*r.W, r.oh*r.ow
	nOut := B * r.cout * ohw
	be.Accumulate(r.h2.g, r.out.g, nOut)
	be.Accumulate(r.sk.g, r.out.g, nOut)
	if r.skip != nil {
		r.skip.backward(m, r.xu.g, r.sk.g, r.xu.v)
	}
	r.conv2.backward(m, r.d2.g, r.h2.g, r.d2.v)
	if r.dropout > 0 {
		m.dropout(r.a2.g, r.d2.g, r.cout*ohw, r.dropP(m), r.seed, true)
	}
	E := r.emb.C
	if r.scaleShift {
		be.SiLUBackward(r.ss.g, r.a2.g, r.ss.v, nOut)
		be.ScaleShiftBackward(r.n2.g, r.scale.g, r.shift.g, r.ss.g, r.n2.v, r.scale.v, B, r.cout, ohw)
		r.gn2.backward(m, r.h1.g, r.n2.g, r.h1.v)
		ws, _, wt, _ := r.embHalves(m.Params.Data)
		dws, dbs, dwt, dbt := r.embHalves(m.Params.Grad)
		be.LinearBackward(m.embSilu.g, dws, dbs, r.scale.g, m.embSilu.v, ws, B, E, r.cout)
		be.LinearBackward(m.embSilu.g, dwt, dbt, r.shift.g, m.embSilu.v, wt, B, E, r.cout)
	} else {
		be.SiLUBackward(r.n2.g, r.a2.g, r.n2.v, nOut)
		r.gn2.backward(m, r.hpe.g, r.n2.g, r.hpe.v)
		be.ScaleShiftBackward(r.h1.g, nil, r.shift.g, r.hpe.g, r.h1.v, nil, B, r.cout, ohw)
		r.emb.backward(m, m.embSilu.g, r.shift.g, m.embSilu.v, B)
	}
	r.conv1.backward(m, r.a1u.g, r.h1.g, r.a1u.v)
	switch {
	case r.down:
		be.AvgPool2xBackward(r.a1.g, r.a1u.g, B*r.cin, r.H, r.W)
		be.AvgPool2xBackward(r.in.g, r.xu.g, B*r.cin, r.H, r.W)
	case r.up:
		be.UpsampleNearest2xBackward(r.a1.g, r.a1u.g, B*r.cin, r.H, r.W)
		be.UpsampleNearest2xBackward(r.in.g, r.xu.g, B*r.cin, r.H, r.W)
	}
	be.SiLUBackward(r.n1.g, r.a1.g, r.n1.v, nIn)
	r.gn1.backward(m, r.in.g, r.n1.g, r.in.v)
}

// attnBlock is GLIDE's AttentionBlock with encoder_channels = xf_width:
//
//	norm:       GroupNorm (no SiLU)
//	qkv:        Conv1d(C, 3C, 1); per head h, channels [3h*ch, 3(h+1)*ch) are q, k, v
//	encoder_kv: Conv1d(xf_width, 2C, 1) on the text sequence; per head k then v
//	proj_out:   Conv1d(C, C, 1), zero-initialised
//
// QKVAttention concatenates the text keys/values before the image ones, so key
// j < L is text token j and key L+i is pixel i. The keyword scale s_j of
// DESIGN.md 1.3 multiplies the logits of key j (Model.keyScale).
type attnBlock struct {
	C, T, NH, ch, L, XW int

	in                *tensor
	norm              groupNorm
	qkv, proj         conv
	ekv               linear
	n, qkvc, qkvT     tensor // norm (B,C,T), qkv (B,3C,T), (B,NH,3,T,ch)
	qkvS              tensor // (3, B,NH,T,ch): q, image k, image v
	ekvc, ekvT, ekvS  tensor // (B,L,2C), (B,NH,2,L,ch), (2, B,NH,L,ch)
	K, V              tensor // (B,NH,L+T,ch)
	ao, aoT, pr, out  tensor // (B,NH,T,ch), (B,C,T), proj_out, x + proj_out
	att               []float32
	keyScale, keyMask []float32 // (B, L+T), filled by Model.Forward
}

func newAttnBlock(m *Model, prefix string, in *tensor, C, H, W int) *attnBlock {
	c := m.Config
	l := m.Params.Layout
	T := H * W
	b := &attnBlock{C: C, T: T, NH: C / c.NumHeadChannels, ch: c.NumHeadChannels, L: c.TextCtx, XW: c.XFWidth, in: in}
	b.norm = newGroupNorm(l, prefix+".norm", C, T, c.NormGroups)
	b.qkv = newConv1d(l, prefix+".qkv", C, 3*C, T)
	b.ekv = newLinear(l, prefix+".encoder_kv", c.XFWidth, 2*C, 1)
	b.proj = newConv1d(l, prefix+".proj_out", C, C, T)
	return b
}

func (b *attnBlock) output() *tensor { return &b.out }

func (b *attnBlock) shape(B int) kernels.AttentionShape {
	return kernels.AttentionShape{B: B, NH: b.NH, Nq: b.T, Nk: b.L + b.T, D: b.ch}
}

func (b *attnBlock) reserve(m *Model, a *arena) {
	B := m.B
	n := B * b.C * b.T
	b.n, b.qkvc, b.qkvT, b.qkvS = a.take(n), a.take(3*n), a.take(3*n), a.take(3*n)
	e := B * b.L * b.C
	b.ekvc, b.ekvT, b.ekvS = a.take(2*e), a.take(2*e), a.take(2*e)
	b.K, b.V = a.take(n+e), a.take(n+e)
	b.ao, b.aoT, b.pr, b.out = a.take(n), a.take(n), a.take(n), a.take(n)
	b.norm.reserve(a, B)
	s := b.shape(B)
	b.att = a.stats(s.B * s.NH * s.Nq * s.Nk)
	m.scratchN = max(m.scratchN, s.B*s.NH*s.Nq*s.Nk)
	b.keyScale = a.stats(B * (b.L + b.T))
	b.keyMask = nil
	if m.Config.AttentionMaskPadding {
		b.keyMask = a.stats(B * (b.L + b.T))
	}
}

func (b *attnBlock) forward(m *Model) {
	be, B := m.be, m.B
	n, e, BH := B*b.C*b.T, B*b.L*b.C, B*b.NH
	b.norm.forward(m, b.n.v, b.in.v)
	b.qkv.forward(m, b.qkvc.v, b.n.v)
	be.Permute0213(b.qkvT.v, b.qkvc.v, BH*3, b.ch, b.T, 1)
	be.Permute0213(b.qkvS.v, b.qkvT.v, 1, BH, 3, b.T*b.ch)
	b.ekv.forward(m, b.ekvc.v, m.xfOut.v, B*b.L)
	be.Permute0213(b.ekvT.v, b.ekvc.v, B, b.L, 2*b.NH, b.ch)
	be.Permute0213(b.ekvS.v, b.ekvT.v, 1, BH, 2, b.L*b.ch)
	be.ConcatChannelsForward(b.K.v, b.ekvS.v[:e], b.qkvS.v[n:2*n], BH, b.L, b.T, b.ch)
	be.ConcatChannelsForward(b.V.v, b.ekvS.v[e:], b.qkvS.v[2*n:], BH, b.L, b.T, b.ch)
	be.AttentionForward(b.ao.v, b.att, b.qkvS.v[:n], b.K.v, b.V.v, b.keyScale, b.keyMask, b.shape(B))
	be.Permute0213(b.aoT.v, b.ao.v, BH, b.T, b.ch, 1)
	b.proj.forward(m, b.pr.v, b.aoT.v)
	be.AddForward(b.out.v, b.in.v, b.pr.v, n)
}

func (b *attnBlock) backward(m *Model) {
	be, B := m.be, m.B
	n, e, BH := B*b.C*b.T, B*b.L*b.C, B*b.NH
	be.Accumulate(b.in.g, b.out.g, n)
	be.Accumulate(b.pr.g, b.out.g, n)
	b.proj.backward(m, b.aoT.g, b.pr.g, b.aoT.v)
	be.Permute0213Backward(b.ao.g, b.aoT.g, BH, b.T, b.ch, 1)
	s := b.shape(B)
	be.AttentionBackward(b.qkvS.g[:n], b.K.g, b.V.g, m.scratch[:s.B*s.NH*s.Nq*s.Nk], b.ao.g, b.att, b.qkvS.v[:n], b.K.v, b.V.v, b.keyScale, s)
	be.ConcatChannelsBackward(b.ekvS.g[:e], b.qkvS.g[n:2*n], b.K.g, BH, b.L, b.T, b.ch)
	be.ConcatChannelsBackward(b.ekvS.g[e:], b.qkvS.g[2*n:], b.V.g, BH, b.L, b.T, b.ch)
	be.Permute0213Backward(b.ekvT.g, b.ekvS.g, 1, BH, 2, b.L*b.ch)
	be.Permute0213Backward(b.ekvc.g, b.ekvT.g, B, b.L, 2*b.NH, b.ch)
	b.ekv.backward(m, m.xfOut.g, b.ekvc.g, m.xfOut.v, B*b.L)
	be.Permute0213Backward(b.qkvT.g, b.qkvS.g, 1, BH, 3, b.T*b.ch)
	be.Permute0213Backward(b.qkvc.g, b.qkvT.g, BH*3, b.ch, b.T, 1)
	b.qkv.backward(m, b.n.g, b.qkvc.g, b.n.v)
	b.norm.backward(m, b.in.g, b.n.g, b.in.v)
}

// convLayer is a plain convolution: input_blocks.0.0 (in_channels -> ch) and,
// without resblock_updown, Downsample's op (3x3, stride 2).
type convLayer struct {
	in          *tensor
	c           conv
	out         tensor
	noInputGrad bool // the network input: no gradient wanted
}

func (l *convLayer) output() *tensor { return &l.out }
func (l *convLayer) reserve(m *Model, a *arena) {
	l.out = a.take(m.B * l.c.outSize())
}
func (l *convLayer) forward(m *Model) { l.c.forward(m, l.out.v, l.in.v) }
func (l *convLayer) backward(m *Model) {
	var din []float32
	if !l.noInputGrad {
		din = l.in.g
	}
	l.c.backward(m, din, l.out.g, l.in.v)
}

// upsampleLayer is GLIDE's Upsample with a conv (resblock_updown false):
// nearest 2x, then conv3x3.
type upsampleLayer struct {
	in      *tensor
	C, H, W int
	c       conv
	up, out tensor
}

func (l *upsampleLayer) output() *tensor { return &l.out }
func (l *upsampleLayer) reserve(m *Model, a *arena) {
	l.up = a.take(m.B * l.C * 4 * l.H * l.W)
	l.out = a.take(m.B * l.c.outSize())
}
func (l *upsampleLayer) forward(m *Model) {
	m.be.UpsampleNearest2xForward(l.up.v, l.in.v, m.B*l.C, l.H, l.W)
	l.c.forward(m, l.out.v, l.up.v)
}
func (l *upsampleLayer) backward(m *Model) {
	l.c.backward(m, l.up.g, l.out.g, l.up.v)
	m.be.UpsampleNearest2xBackward(l.in.g, l.up.g, m.B*l.C, l.H, l.W)
}

// concatLayer is th.cat([h, hs.pop()], dim=1) before each output block.
type concatLayer struct {
	a, b       *tensor
	C1, C2, HW int
	out        tensor
}

func (l *concatLayer) output() *tensor { return &l.out }
func (l *concatLayer) reserve(m *Model, a *arena) {
	l.out = a.take(m.B * (l.C1 + l.C2) * l.HW)
}
func (l *concatLayer) forward(m *Model) {
	m.be.ConcatChannelsForward(l.out.v, l.a.v, l.b.v, m.B, l.C1, l.C2, l.HW)
}
func (l *concatLayer) backward(m *Model) {
	m.be.ConcatChannelsBackward(l.a.g, l.b.g, l.out.g, m.B, l.C1, l.C2, l.HW)
}

// outLayer is GLIDE's `out`: GroupNorm+SiLU (0), Identity (1), conv3x3
// ch -> out_channels (2, zero-initialised).
type outLayer struct {
	in    *tensor
	C, HW int
	norm  groupNorm
	c     conv
	n, a  tensor
	out   tensor
}

func (l *outLayer) output() *tensor { return &l.out }
func (l *outLayer) reserve(m *Model, a *arena) {
	l.n, l.a = a.take(m.B*l.C*l.HW), a.take(m.B*l.C*l.HW)
	l.out = a.take(m.B * l.c.outSize())
	l.norm.reserve(a, m.B)
}
func (l *outLayer) forward(m *Model) {
	l.norm.forward(m, l.n.v, l.in.v)
	m.be.SiLUForward(l.a.v, l.n.v, m.B*l.C*l.HW)
	l.c.forward(m, l.out.v, l.a.v)
}
func (l *outLayer) backward(m *Model) {
	l.c.backward(m, l.a.g, l.out.g, l.a.v)
	m.be.SiLUBackward(l.n.g, l.a.g, l.n.v, m.B*l.C*l.HW)
	l.norm.backward(m, l.in.g, l.n.g, l.in.v)
}

// buildUNet adds the U-Net's layers after the text encoder and time
// embedding, following UNetModel.__init__: input_blocks over channel_mult,
// middle_block, output_blocks in reverse, out. Channel counts in the comments
// are for TinyConfig (model_channels 16, channel_mult 1,2, one ResBlock per
// level, attention at ds 2).
func (m *Model) buildUNet() {
	c := m.Config
	l := m.Params.Layout
	mc, res := c.ModelChannels, c.ImageSize
	add := func(ly layer) *tensor { m.push(ly); return ly.output() }

	// input_blocks.0: conv in_channels -> ch (4 -> 16)
	ch := c.ChannelMult[0] * mc
	h := add(&convLayer{in: &m.x, noInputGrad: true,
		c: newConv(l, "input_blocks.0.0", c.InChannels, ch, 3, 1, 1, res, res)})
	hs := []*tensor{h}
	chans := []int{ch}
	block, ds := 1, 1
	for level, mult := range c.ChannelMult {
		for range c.NumResBlocks {
			// ResBlock ch -> mult*mc (16 -> 16, then 16 -> 32 at level 1)
			p := fmt.Sprintf("input_blocks.%d", block)
			h = add(newResBlock(m, p+".0", h, ch, mult*mc, res, res, false, false))
			ch = mult * mc
			if c.hasAttention(ds) { // ds 2: 32 channels, 2 heads of 16
				h = add(newAttnBlock(m, p+".1", h, ch, res, res))
			}
			hs, chans = append(hs, h), append(chans, ch)
			block++
		}
		if level != len(c.ChannelMult)-1 {
			// downsample, channels unchanged (16 at 8x8 -> 16 at 4x4)
			p := fmt.Sprintf("input_blocks.%d.0", block)
			if c.ResblockUpdown {
				h = add(newResBlock(m, p, h, ch, ch, res, res, false, true))
			} else {
				h = add(&convLayer{in: h, c: newConv(l, p+".op", ch, ch, 3, 2, 1, res, res)})
			}
			res /= 2
			ds *= 2
			hs, chans = append(hs, h), append(chans, ch)
			block++
		}
	}

	// middle_block: ResBlock, AttentionBlock, ResBlock (32 channels at 4x4)
	h = add(newResBlock(m, "middle_block.0", h, ch, ch, res, res, false, false))
	h = add(newAttnBlock(m, "middle_block.1", h, ch, res, res))
	h = add(newResBlock(m, "middle_block.2", h, ch, ch, res, res, false, false))

	block = 0
	for level := len(c.ChannelMult) - 1; level >= 0; level-- {
		mult := c.ChannelMult[level]
		for i := 0; i <= c.NumResBlocks; i++ {
			// concat the skip: (32+32 -> 32), (32+16 -> 32) at level 1;
			// (32+16 -> 16), (16+16 -> 16) at level 0
			ich := chans[len(chans)-1]
			skip := hs[len(hs)-1]
			hs, chans = hs[:len(hs)-1], chans[:len(chans)-1]
			h = add(&concatLayer{a: h, b: skip, C1: ch, C2: ich, HW: res * res})
			p := fmt.Sprintf("output_blocks.%d", block)
			h = add(newResBlock(m, p+".0", h, ch+ich, mult*mc, res, res, false, false))
			ch = mult * mc
			j := 1
			if c.hasAttention(ds) {
				h = add(newAttnBlock(m, fmt.Sprintf("%s.%d", p, j), h, ch, res, res))
				j++
			}
			if level > 0 && i == c.NumResBlocks {
				// upsample, channels unchanged (32 at 4x4 -> 32 at 8x8)
				q := fmt.Sprintf("%s.%d", p, j)
				if c.ResblockUpdown {
					h = add(newResBlock(m, q, h, ch, ch, res, res, true, false))
				} else {
					h = add(&upsampleLayer{in: h, C: ch, H: res, W: res,
						c: newConv(l, q+".conv", ch, ch, 3, 1, 1, 2*res, 2*res)})
				}
				res *= 2
				ds /= 2
			}
			block++
		}
	}

	// out: GroupNorm+SiLU, conv ch -> out_channels (16 -> 4)
	m.out = &outLayer{in: h, C: ch, HW: res * res,
		norm: newGroupNorm(l, "out.0", ch, res*res, c.NormGroups),
		c:    newConv(l, "out.2", ch, c.OutChannels, 3, 1, 1, res, res)}
	add(m.out)
}
