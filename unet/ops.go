package unet

import "github.com/kediff/kediff/kernels"

// tensor is an activation and its gradient: views at the same offset of the
// model's activation and activation-gradient buffers.
type tensor struct{ v, g []float32 }

// arena hands out activation memory for one batch size. It runs twice over
// the layers: once with nil buffers to count, once to assign views.
type arena struct {
	nAct, nStat     int
	act, grad, stat []float32
}

// take reserves n activations with gradients (none in NoGrad mode, where
// the arena has no gradient buffer).
func (a *arena) take(n int) tensor {
	var t tensor
	if a.act != nil {
		t.v = a.act[a.nAct : a.nAct+n : a.nAct+n]
		if a.grad != nil {
			t.g = a.grad[a.nAct : a.nAct+n : a.nAct+n]
		}
	}
	a.nAct += n
	return t
}

// stats reserves n values without gradient (norm statistics, attention
// probabilities, per-call inputs).
func (a *arena) stats(n int) []float32 {
	var s []float32
	if a.stat != nil {
		s = a.stat[a.nStat : a.nStat+n : a.nStat+n]
	}
	a.nStat += n
	return s
}

// sub is elements [lo, hi) of both views.
func (t tensor) sub(lo, hi int) tensor {
	if t.v == nil {
		return tensor{}
	}
	if t.g == nil {
		return tensor{v: t.v[lo:hi:hi]}
	}
	return tensor{t.v[lo:hi:hi], t.g[lo:hi:hi]}
}

// groupNorm is GLIDE's normalization(C): nn.GroupNorm(groups, C, eps=1e-5),
// the optional swish applied by the caller.
type groupNorm struct {
	w, b       kernels.View
	C, HW, G   int
	mean, rstd []float32
}

func newGroupNorm(l *kernels.Layout, prefix string, C, HW, G int) groupNorm {
	return groupNorm{w: l.Add(prefix+".weight", C), b: l.Add(prefix+".bias", C), C: C, HW: HW, G: G}
}

func (n *groupNorm) reserve(a *arena, B int) {
	n.mean, n.rstd = a.stats(B*n.G), a.stats(B*n.G)
}

func (n *groupNorm) forward(m *Model, out, in []float32) {
	m.be.GroupNormForward(out, n.mean, n.rstd, in, m.p(n.w), m.p(n.b), m.B, n.C, n.HW, n.G, 1e-5)
}

func (n *groupNorm) backward(m *Model, din, dout, in []float32) {
	m.be.GroupNormBackward(din, m.dp(n.w), m.dp(n.b), dout, in, m.p(n.w), n.mean, n.rstd, m.B, n.C, n.HW, n.G)
}

// layerNorm is nn.LayerNorm(C) (eps 1e-5) over rows.
type layerNorm struct {
	w, b       kernels.View
	C          int
	mean, rstd []float32
}

func newLayerNorm(l *kernels.Layout, prefix string, C int) layerNorm {
	return layerNorm{w: l.Add(prefix+".weight", C), b: l.Add(prefix+".bias", C), C: C}
}

func (n *layerNorm) reserve(a *arena, rows int) {
	n.mean, n.rstd = a.stats(rows), a.stats(rows)
}

func (n *layerNorm) forward(m *Model, out, in []float32, rows int) {
	m.be.LayerNormForward(out, n.mean, n.rstd, in, m.p(n.w), m.p(n.b), rows, n.C, 1e-5)
}

func (n *layerNorm) backward(m *Model, din, dout, in []float32, rows int) {
	m.be.LayerNormBackward(din, m.dp(n.w), m.dp(n.b), dout, in, m.p(n.w), n.mean, n.rstd, rows, n.C)
}

// linear is nn.Linear(C, OC): weight (OC, C), bias (OC). A kernel-1 nn.Conv1d
// applied to a (N, C) sequence is the same product with weight (OC, C, 1).
type linear struct {
	w, b  kernels.View
	C, OC int
}

func newLinear(l *kernels.Layout, prefix string, C, OC int, extra ...int) linear {
	return linear{w: l.Add(prefix+".weight", append([]int{OC, C}, extra...)...), b: l.Add(prefix+".bias", OC), C: C, OC: OC}
}

func (f *linear) forward(m *Model, out, in []float32, rows int) {
	m.be.LinearForward(out, in, m.p(f.w), m.p(f.b), rows, f.C, f.OC)
}

func (f *linear) backward(m *Model, din, dout, in []float32, rows int) {
	m.be.LinearBackward(din, m.dp(f.w), m.dp(f.b), dout, in, m.p(f.w), rows, f.C, f.OC)
}

// conv is nn.Conv2d(C, OC, K, stride, padding) (or a kernel-1 Conv1d with W=1).
type conv struct {
	w, b kernels.View
	s    kernels.ConvShape
}

func newConv(l *kernels.Layout, prefix string, C, OC, K, stride, pad, H, W int) conv {
	return conv{
		w: l.Add(prefix+".weight", OC, C, K, K),
		b: l.Add(prefix+".bias", OC),
		s: kernels.ConvShape{C: C, H: H, W: W, OC: OC, K: K, Stride: stride, Pad: pad},
	}
}

// newConv1d is nn.Conv1d(C, OC, 1) over (B, C, T): weight (OC, C, 1).
func newConv1d(l *kernels.Layout, prefix string, C, OC, T int) conv {
	return conv{
		w: l.Add(prefix+".weight", OC, C, 1),
		b: l.Add(prefix+".bias", OC),
		s: kernels.ConvShape{C: C, H: T, W: 1, OC: OC, K: 1, Stride: 1, Pad: 0},
	}
}

// outSize is the per-sample output element count.
func (c *conv) outSize() int { return c.s.OC * c.s.OH() * c.s.OW() }

func (c *conv) forward(m *Model, out, in []float32) {
	s := c.s
	s.B = m.B
	m.be.Conv2DForward(out, in, m.p(c.w), m.p(c.b), s)
}

func (c *conv) backward(m *Model, din, dout, in []float32) {
	s := c.s
	s.B = m.B
	m.be.Conv2DBackward(din, m.dp(c.w), m.dp(c.b), dout, in, m.p(c.w), s)
}
