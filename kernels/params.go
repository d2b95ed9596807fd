package kernels

import (
	"fmt"
	"math"
)

// View names one tensor inside a flat buffer: elements [Offset, Offset+Size)
// with the given shape (row-major, PyTorch layout).
type View struct {
	Name   string
	Offset int
	Size   int
	Shape  []int
}

// Layout assigns every named tensor of a model a slice of one flat buffer, in
// the order added. Names follow the module tree ("input_blocks.0.0.weight") so
// they map one to one onto a glide-text2im state_dict.
type Layout struct {
	views  []View
	byName map[string]int
	size   int
}

// Add appends a tensor of the given shape and returns its view. Adding a name
// twice panics: it would silently share or shadow parameters.
func (l *Layout) Add(name string, shape ...int) View {
	if l.byName == nil {
		l.byName = map[string]int{}
	}
	if _, dup := l.byName[name]; dup {
		panic(fmt.Sprintf("kernels: layout: parameter %q added twice", name))
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			panic(fmt.Sprintf("kernels: layout: parameter %q has shape %v", name, shape))
		}
		n *= d
	}
	v := View{Name: name, Offset: l.size, Size: n, Shape: append([]int(nil), shape...)}
	l.byName[name] = len(l.views)
	l.views = append(l.views, v)
	l.size += n
	return v
}

// Size is the total element count.
func (l *Layout) Size() int { return l.size }

// Views lists the tensors in buffer order. The slice must not be modified.
func (l *Layout) Views() []View { return l.views }

// Lookup finds a tensor by name.
func (l *Layout) Lookup(name string) (View, bool) {
	i, ok := l.byName[name]
	if !ok {
		return View{}, false
	}
	return l.views[i], true
}

// Params holds a model's parameters, gradients and AdamW moments as four flat
// buffers with one Layout (llm.c style): zeroing, clipping, the optimizer step
// and checkpointing are loops over one slice.
type Params struct {
	Layout *Layout
	Data   []float32 // parameter values
	Grad   []float32 // gradients, accumulated by the backward kernels
	M, V   []float32 // AdamW first and second moments
	Step   int       // AdamW steps taken (bias correction)
}

// NewParams allocates zeroed buffers for l on be (nil: host memory, one
// allocation with four views).
func NewParams(be Backend, l *Layout) *Params {
	n := l.Size()
	if be == nil {
		buf := make([]float32, 4*n)
		return &Params{Layout: l, Data: buf[:n:n], Grad: buf[n : 2*n : 2*n], M: buf[2*n : 3*n : 3*n], V: buf[3*n:]}
	}
	return &Params{Layout: l, Data: be.Alloc(n, ForParams), Grad: be.Alloc(n, ForGrads), M: be.Alloc(n, ForMoments), V: be.Alloc(n, ForMoments)}
}

// NewInferenceParams allocates the values alone, on be (nil: host memory): a
// model that only runs forward needs no gradients or AdamW moments (a
// quarter of the memory).
func NewInferenceParams(be Backend, l *Layout) *Params {
	if be == nil {
		return &Params{Layout: l, Data: make([]float32, l.Size())}
	}
	return &Params{Layout: l, Data: be.Alloc(l.Size(), ForParams)}
}

func (p *Params) view(name string) View {
	v, ok := p.Layout.Lookup(name)
	if !ok {
		panic(fmt.Sprintf("kernels: params: no parameter %q", name))
	}
	return v
}

// Get returns the values of a named tensor (a sub-slice of Data).
func (p *Params) Get(name string) []float32 {
	v := p.view(name)
	return p.Data[v.Offset : v.Offset+v.Size : v.Offset+v.Size]
}

// GradOf returns the gradient of a named tensor (a sub-slice of Grad).
func (p *Params) GradOf(name string) []float32 {
	v := p.view(name)
	return p.Grad[v.Offset : v.Offset+v.Size : v.Offset+v.Size]
}

// ZeroGrad clears all gradients before a backward pass.
func (p *Params) ZeroGrad() { clear(p.Grad) }

// ClipGradNorm clips all gradients together, as torch.nn.utils.clip_grad_norm_
// with norm_type 2, and returns the total norm before clipping.
func (p *Params) ClipGradNorm(maxNorm float64) float64 { return ClipGradNorm(p.Grad, maxNorm) }

// AdamWStep advances the step counter and applies one AdamW update to all
// parameters with the same hyper-parameters.
func (p *Params) AdamWStep(cfg AdamWConfig) {
	p.Step++
	AdamWUpdate(p.Data, p.Grad, p.M, p.V, cfg, p.Step)
}

// AdamWConfig holds torch.optim.AdamW's hyper-parameters. DESIGN.md 1.5 uses
// LR 0.9e-4, Beta1 0.9, Beta2 0.999, WeightDecay 0.01; PyTorch's Eps is 1e-8.
type AdamWConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
}

// AdamWUpdate applies one step (step >= 1) of torch.optim.AdamW, PyTorch 1.13
// single-tensor semantics, elementwise over params/grads/m/v:
//
//	p  = p * (1 - lr*wd)                       (decoupled weight decay)
//	m  = b1*m + (1-b1)*g
//	v  = b2*v + (1-b2)*g*g
//	p -= lr/(1-b1^step) * m / (sqrt(v)/sqrt(1-b2^step) + eps)
//
// Call it per View to give parameter groups different settings.
func AdamWUpdate[F Float](params, grads, m, v []F, cfg AdamWConfig, step int) {
	bc1 := 1 - math.Pow(cfg.Beta1, float64(step))
	bc2 := 1 - math.Pow(cfg.Beta2, float64(step))
	decay := F(1 - cfg.LR*cfg.WeightDecay)
	b1, b2 := F(cfg.Beta1), F(cfg.Beta2)
	stepSize := F(cfg.LR / bc1)
	bc2Sqrt := F(math.Sqrt(bc2))
	eps := F(cfg.Eps)
	if p32, g32, ok := f32s(params, grads); ok { // simd.c, the same float32 operations
		m32, v32 := any(m).([]float32), any(v).([]float32)
		c := &[6]float32{float32(b1), float32(b2), float32(decay), float32(stepSize), float32(bc2Sqrt), float32(eps)}
		elementwise(len(params), func(lo, hi int) { simdAdamW(p32, g32, m32, v32, c, lo, hi) })
		return
	}
	elementwise(len(params), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := grads[i]
			mi := b1*m[i] + (1-b1)*g
			vi := b2*v[i] + (1-b2)*g*g
			m[i], v[i] = mi, vi
			denom := F(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			params[i] = params[i]*decay - stepSize*(mi/denom)
		}
	})
}

// EMAUpdate moves ema towards params: ema = decay*ema + (1-decay)*params,
// in float32 elementwise (the trainer's exponential moving average).
func EMAUpdate[F Float](ema, params []F, decay float64) {
	d := F(decay)
	elementwise(len(params), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ema[i] = d*ema[i] + (1-d)*params[i]
		}
	})
}

// ClipGradNorm computes the global L2 norm of grads (float64 accumulation) and,
// when maxNorm/(norm+1e-6) < 1, scales grads by that factor, exactly as
// torch.nn.utils.clip_grad_norm_. It returns the norm before clipping. A
// non-finite norm leaves grads untouched so the caller can skip the step.
func ClipGradNorm[F Float](grads []F, maxNorm float64) float64 {
	chunks := 64
	part := make([]float64, chunks)
	n := len(grads)
	// Fixed chunking (not per thread) keeps the sum deterministic.
	parallelFor(chunks, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			if g32, _, ok := f32s(grads, grads); ok { // simd.c
				part[c] = simdSumSq(g32, c*n/chunks, (c+1)*n/chunks)
				continue
			}
			var s float64
			for _, g := range grads[c*n/chunks : (c+1)*n/chunks] {
				s += float64(g) * float64(g)
			}
			part[c] = s
		}
	})
	var ss float64
	for _, s := range part {
		ss += s
	}
	norm := math.Sqrt(ss)
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 && !math.IsNaN(norm) && !math.IsInf(norm, 0) {
		c := F(coef)
		if g32, _, ok := f32s(grads, grads); ok { // simd.c
			elementwise(n, func(lo, hi int) { simdScale(g32[lo:hi], float32(c)) })
			return norm
		}
		elementwise(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				grads[i] *= c
			}
		})
	}
	return norm
}
