package train

import (
	"fmt"
	"math"

	"github.com/kediff/kediff/kernels"
)

// Diffusion is the DDPM forward process of DESIGN.md 1.1: betas, alphas and
// their cumulative products, in float64.
type Diffusion struct {
	Betas          []float64
	AlphasCumprod  []float64 // abar_t = prod_{s<=t} (1 - beta_s)
	SqrtAbar       []float64
	SqrtOneMinAbar []float64
}

// NewDiffusion builds a schedule: "scaled_linear" (Stable Diffusion's,
// beta_t = linspace(sqrt(start), sqrt(end), T)^2, the default with start
// 0.00085 and end 0.012) or "linear" (linspace(start, end, T)).
func NewDiffusion(schedule string, T int, start, end float64) (*Diffusion, error) {
	if T < 2 {
		return nil, fmt.Errorf("train: diffusion: %d steps, want at least 2", T)
	}
	betas := make([]float64, T)
	for i := range betas {
		f := float64(i) / float64(T-1)
		switch schedule {
		case "scaled_linear":
			b := math.Sqrt(start) + f*(math.Sqrt(end)-math.Sqrt(start))
			betas[i] = b * b
		case "linear":
			betas[i] = start + f*(end-start)
		default:
			return nil, fmt.Errorf("train: diffusion: unknown beta schedule %q (want scaled_linear or linear)", schedule)
		}
	}
	d := &Diffusion{Betas: betas, AlphasCumprod: make([]float64, T), SqrtAbar: make([]float64, T), SqrtOneMinAbar: make([]float64, T)}
	prod := 1.0
	for i, b := range betas {
		prod *= 1 - b
		d.AlphasCumprod[i] = prod
		d.SqrtAbar[i] = math.Sqrt(prod)
		d.SqrtOneMinAbar[i] = math.Sqrt(1 - prod)
	}
	return d, nil
}

// DefaultDiffusion is the scaled_linear schedule with T = 1000.
func DefaultDiffusion() *Diffusion {
	d, _ := NewDiffusion("scaled_linear", 1000, 0.00085, 0.012)
	return d
}

// Steps is T.
func (d *Diffusion) Steps() int { return len(d.Betas) }

// QSample writes z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) noise into out for
// each sample b at timestep t[b]; z0, noise and out are (B, n) with n =
// len(z0)/B. The coefficients are rounded to float32 first, as a float32
// PyTorch computation of the same formula would.
func (d *Diffusion) QSample(out, z0, noise []float32, t []int) {
	n := len(z0) / len(t)
	for b, ti := range t {
		a, s := float32(d.SqrtAbar[ti]), float32(d.SqrtOneMinAbar[ti])
		for i := b * n; i < (b+1)*n; i++ {
			out[i] = a*z0[i] + s*noise[i]
		}
	}
}

// Loss runs the model on in and returns the weighted eps-prediction loss of
// DESIGN.md 1.4, mean over all elements of W * (eps - eps_theta)^2, where
// weight (B, H*W) is W_l (1 + w_l on kept-object latent cells, else 1; nil
// means 1). With backward it also accumulates every parameter gradient
// (zero Params.Grad first).
func (m *Model) Loss(in *Batch, noise, weight []float32, backward bool) (float64, error) {
	c := m.Config
	epsHat, err := m.Forward(in)
	if err != nil {
		return 0, err
	}
	B, HW := in.N(), c.ImageSize*c.ImageSize
	if len(noise) != len(epsHat) {
		return 0, fmt.Errorf("train: loss: noise has %d values, want %d", len(noise), len(epsHat))
	}
	if weight != nil && len(weight) != B*HW {
		return 0, fmt.Errorf("train: loss: loss weight has %d values, want %d = %d samples x %d latent cells", len(weight), B*HW, B, HW)
	}
	noiseDev := m.stageInput(&m.noiseBuf, noise)
	var wDev []float32
	if weight != nil {
		wDev = m.stageInput(&m.weightBuf, weight)
	}
	loss := m.be.WeightedMSEForward(epsHat, noiseDev, wDev, B, c.OutChannels, HW)
	if backward {
		m.be.Zero(m.grad)
		m.be.WeightedMSEBackward(m.out.out.g, epsHat, noiseDev, wDev, 1, B, c.OutChannels, HW)
		m.backward()
	}
	return loss, nil
}

// stageInput copies host data into a backend buffer kept for reuse.
func (m *Model) stageInput(buf *[]float32, host []float32) []float32 {
	if len(*buf) != len(host) {
		*buf = m.be.Alloc(len(host))
	}
	m.be.CopyToDevice(*buf, host)
	return *buf
}

// OptimConfig is one training step's optimiser settings.
type OptimConfig struct {
	AdamW    kernels.AdamWConfig
	GradClip float64 // max global gradient norm; 0 disables clipping
}

// DefaultOptim is DESIGN.md 1.5's AdamW (lr 0.9e-4, betas 0.9/0.999, weight
// decay 0.01) with gradient clipping at 1.
func DefaultOptim() OptimConfig {
	return OptimConfig{AdamW: kernels.AdamWConfig{LR: 0.9e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, GradClip: 1}
}

// TrainStep computes the loss and gradients on one batch, clips the global
// gradient norm and applies one AdamW update to every parameter. It returns
// the loss and the gradient norm before clipping; a non-finite norm skips
// the update.
func (m *Model) TrainStep(in *Batch, noise, weight []float32, opt OptimConfig) (loss, gradNorm float64, err error) {
	p := m.Params
	m.be.Zero(p.Grad)
	loss, err = m.Loss(in, noise, weight, true)
	if err != nil {
		return 0, 0, err
	}
	if opt.GradClip > 0 {
		gradNorm = m.be.ClipGradNorm(p.Grad, opt.GradClip)
	} else {
		gradNorm = m.be.ClipGradNorm(p.Grad, math.Inf(1))
	}
	if math.IsNaN(gradNorm) || math.IsInf(gradNorm, 0) {
		return loss, gradNorm, nil
	}
	p.Step++
	m.be.AdamWUpdate(p.Data, p.Grad, p.M, p.V, opt.AdamW, p.Step)
	return loss, gradNorm, nil
}
