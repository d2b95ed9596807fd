package unet

import (
	"fmt"
	"math"

	"github.com/kediff/kediff/kernels"
)

// Loss runs the model on in and returns the weighted eps-prediction loss of
// DESIGN.md 1.4, mean over all elements of W * (eps - eps_theta)^2, where
// weight (B, H*W) is W_l (1 + w_l on kept-object latent cells, else 1; nil
// means 1). With backward it also accumulates every parameter gradient
// (zero Params.Grad first).
func (m *Model) Loss(in *Batch, noise, weight []float32, backward bool) (float64, error) {
	c := m.Config
	if backward && m.NoGrad {
		return 0, fmt.Errorf("unet: loss: gradients asked of a model in NoGrad (inference) mode")
	}
	epsHat, err := m.Forward(in)
	if err != nil {
		return 0, err
	}
	B, HW := in.N(), c.ImageSize*c.ImageSize
	if len(noise) != len(epsHat) {
		return 0, fmt.Errorf("unet: loss: noise has %d values, want %d", len(noise), len(epsHat))
	}
	if weight != nil && len(weight) != B*HW {
		return 0, fmt.Errorf("unet: loss: loss weight has %d values, want %d = %d samples x %d latent cells", len(weight), B*HW, B, HW)
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
		m.be.Free(*buf)
		*buf = m.be.Alloc(len(host), kernels.ForStats)
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
