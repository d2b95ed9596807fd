package sample

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
)

// DefaultGuidance is the classifier-free guidance scale of the paper's best
// FID (DESIGN.md 1.1).
const DefaultGuidance = 2.1

// Options configure Run. The scheduler fields have diffusers' names.
type Options struct {
	Scheduler string  // "ddim" (default) or "ddpm"
	Steps     int     // num_inference_steps (default 50 for DDIM, T for DDPM)
	Eta       float64 // DDIM's eta (default 0)
	// Timesteps holds timestep_spacing, steps_offset and set_alpha_to_one
	// (zero value: diffusion.DefaultConfig()).
	Timesteps *diffusion.Config
	// Guidance is the classifier-free guidance scale s: 1 runs the
	// conditional pass alone, 0 the unconditional one's prediction
	// (DefaultOptions has DefaultGuidance).
	Guidance float64
	// Seed: image i (counted over the run) draws x_T and its step noise from
	// its own generator seeded by Seed + i, so an image does not depend on
	// the batch it falls in.
	Seed            uint64
	Batch           int // images per denoising batch (default 8)
	ImagesPerPrompt int // default 1
	// InitNoise, if set, is x_T for every image (images x C x H x W) instead
	// of the seeded draw.
	InitNoise []float32
	// KeepNoise records the noise added at every stochastic step in
	// Result.Batches (for --save-latents).
	KeepNoise bool
	// Progress, if set, is called after every denoising step of a batch.
	Progress func(Progress)
	// Warn, if set, receives warnings (e.g. prompts truncated to text_ctx).
	Warn func(string)
	// Backend runs the checkpoints read from folders (nil: kernels.CPU); a
	// model in memory runs where it is.
	Backend kernels.Backend
}

// Progress is the state after one denoising step of one batch.
type Progress struct {
	Batch, Batches int // 0-based batch index and count
	Step, Steps    int // steps done in this batch, of Steps
	T              int // the timestep just done
	Checkpoint     *Checkpoint
	Elapsed        time.Duration
}

// Image is one sample of a run.
type Image struct {
	Index   int // over the run, from 0
	Prompt  string
	Seed    uint64    // of its generator (Options.Seed + Index)
	X0      []float32 // the final latent, C x H x W
	Tokens  []int32   // the conditional input, text_ctx tokens
	Mask    []bool
	Dropped int // prompt tokens cut at text_ctx
}

// Batch is one denoising batch as the model saw it, for other
// implementations to rerun (--save-latents).
type Batch struct {
	Images []int     // image indices
	XT     []float32 // x_T, B x C x H x W
	// Tokens and Mask are the model's text input, 2B x text_ctx with the
	// unconditional half first (B x text_ctx at guidance 1).
	Tokens []int32
	Mask   []bool
	X0     []float32 // the final latents
	// Noise holds z of each stochastic step (NoiseSteps), B x C x H x W each,
	// with Options.KeepNoise.
	Noise      [][]float32
	NoiseSteps []int
}

// Segment is a run of consecutive timesteps on one checkpoint.
type Segment struct {
	Checkpoint *Checkpoint
	Timesteps  []int
}

// Result is what Run produced.
type Result struct {
	Images      []Image
	Batches     []Batch
	Timesteps   []int
	Segments    []Segment
	LatentShape [3]int
	Options     Options // with the defaults filled in
}

// Unconditional returns the text input of the unconditional half of
// classifier-free guidance: exactly what training feeds for a dropped text
// (train.Loader), text_ctx [PAD] tokens (id 0) with an all-false mask, no
// keyword flags and no keyword scaling.
func Unconditional(textCtx int) (tokens []int32, mask []bool) {
	tokens, mask, _ = tokenizer.Pad(nil, nil, textCtx)
	return tokens, mask
}

// DefaultOptions are DDIM with eta 0, 50 steps, diffusers' default spacing,
// guidance DefaultGuidance, seed 0, batches of 8, one image per prompt.
func DefaultOptions() Options {
	c := diffusion.DefaultConfig()
	return Options{Scheduler: "ddim", Steps: 50, Timesteps: &c, Guidance: DefaultGuidance, Batch: 8, ImagesPerPrompt: 1}
}

// defaults fills the zero values that have a default (not Guidance, whose
// zero is a valid scale).
func (o *Options) defaults(T int) error {
	if o.Scheduler == "" {
		o.Scheduler = "ddim"
	}
	if o.Steps == 0 {
		o.Steps = 50
		if o.Scheduler == "ddpm" {
			o.Steps = T
		}
	}
	if o.Timesteps == nil {
		c := diffusion.DefaultConfig()
		o.Timesteps = &c
	}
	if o.Batch == 0 {
		o.Batch = 8
	}
	if o.ImagesPerPrompt == 0 {
		o.ImagesPerPrompt = 1
	}
	switch {
	case o.Steps < 1 || o.Steps > T:
		return fmt.Errorf("sample: %d steps: want 1 to %d (the model's training timesteps)", o.Steps, T)
	case o.Guidance < 0 || math.IsNaN(o.Guidance) || math.IsInf(o.Guidance, 0):
		return fmt.Errorf("sample: guidance scale %g: want a finite value >= 0 (1 = no guidance)", o.Guidance)
	case o.Batch < 1:
		return fmt.Errorf("sample: batch %d: want at least 1", o.Batch)
	case o.ImagesPerPrompt < 1:
		return fmt.Errorf("sample: %d images per prompt: want at least 1", o.ImagesPerPrompt)
	}
	return nil
}

// Run samples ImagesPerPrompt images for every prompt from the mixture:
// prompt -> text encoder (once) -> the denoising loop, each step on the
// checkpoint whose block holds its timestep, with classifier-free guidance
// -> final latents. Checkpoint folders are read one at a time, when their
// first step comes, and all batches take their steps before the next one is
// read, so memory holds one model however many experts there are. Decoding
// the latents is DecodeImages' job.
func Run(ctx context.Context, mix *Mixture, prompts []string, opt Options) (*Result, error) {
	T := mix.Schedule.Timesteps
	if err := opt.defaults(T); err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, errors.New("sample: no prompts")
	}
	schedule, err := mix.Schedule.New()
	if err != nil {
		return nil, err
	}
	sched, err := diffusion.New(opt.Scheduler, schedule, *opt.Timesteps, opt.Eta)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	if err := sched.SetTimesteps(opt.Steps); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	c := mix.Config
	L, C, S := c.TextCtx, c.OutChannels, c.ImageSize
	if c.InChannels != c.OutChannels {
		return nil, fmt.Errorf("sample: the model takes %d latent channels and predicts %d: a sampler needs eps of the latent's shape", c.InChannels, c.OutChannels)
	}
	n := C * S * S
	res := &Result{Timesteps: sched.Timesteps(), LatentShape: [3]int{C, S, S}, Options: opt}

	// images, their generators and x_T
	N := len(prompts) * opt.ImagesPerPrompt
	if opt.InitNoise != nil && len(opt.InitNoise) != N*n {
		return nil, fmt.Errorf("sample: the initial noise has %d values, want %d = %d images x %d x %d x %d", len(opt.InitNoise), N*n, N, C, S, S)
	}
	rngs := make([]*rand.Rand, N)
	for i := range N {
		p := prompts[i/opt.ImagesPerPrompt]
		img := Image{Index: i, Prompt: p, Seed: opt.Seed + uint64(i)}
		ids := mix.Vocab.Encode(p)
		if len(ids) > L {
			img.Dropped = len(ids) - L
			if opt.Warn != nil && i%opt.ImagesPerPrompt == 0 {
				opt.Warn(fmt.Sprintf("prompt %d (%.40q): %d tokens, text_ctx is %d: the last %d are dropped", i/opt.ImagesPerPrompt+1, p, len(ids), L, img.Dropped))
			}
		}
		img.Tokens, img.Mask, _ = tokenizer.Pad(ids, nil, L)
		rngs[i] = rand.New(rand.NewPCG(img.Seed, noiseStream))
		res.Images = append(res.Images, img)
	}
	guided := opt.Guidance != 1
	uTok, uMask := Unconditional(L)
	for lo := 0; lo < N; lo += opt.Batch {
		hi := min(lo+opt.Batch, N)
		b := Batch{XT: make([]float32, 0, (hi-lo)*n)}
		for i := lo; i < hi; i++ {
			b.Images = append(b.Images, i)
			if opt.InitNoise != nil {
				b.XT = append(b.XT, opt.InitNoise[i*n:(i+1)*n]...)
			} else {
				for range n {
					b.XT = append(b.XT, float32(rngs[i].NormFloat64()))
				}
			}
		}
		if guided {
			for range b.Images {
				b.Tokens, b.Mask = append(b.Tokens, uTok...), append(b.Mask, uMask...)
			}
		}
		for _, i := range b.Images {
			b.Tokens, b.Mask = append(b.Tokens, res.Images[i].Tokens...), append(b.Mask, res.Images[i].Mask...)
		}
		b.X0 = append([]float32(nil), b.XT...)
		res.Batches = append(res.Batches, b)
	}

	// the route: consecutive timesteps on one checkpoint form a segment
	for _, t := range res.Timesteps {
		ck := mix.For(t)
		if k := len(res.Segments); k > 0 && res.Segments[k-1].Checkpoint == ck {
			res.Segments[k-1].Timesteps = append(res.Segments[k-1].Timesteps, t)
			continue
		}
		res.Segments = append(res.Segments, Segment{Checkpoint: ck, Timesteps: []int{t}})
	}

	l := loop{res: res, sched: sched, rngs: rngs, opt: opt, guided: guided, start: time.Now(), done: make([]int, len(res.Batches))}
	for _, seg := range res.Segments {
		m, err := l.segment(ctx, seg)
		seg.Checkpoint.release(m) // after segment returned: its frame held the model
		m = nil
		if err != nil {
			return nil, err
		}
	}
	for _, b := range res.Batches {
		for k, i := range b.Images {
			res.Images[i].X0 = b.X0[k*n : (k+1)*n]
		}
	}
	return res, nil
}

// loop is the state of Run's denoising loop across segments.
type loop struct {
	res    *Result
	sched  diffusion.Scheduler
	rngs   []*rand.Rand
	opt    Options
	guided bool
	text   [][]float32 // per batch: the text encodings, in the model's row order
	start  time.Time
	done   []int // steps taken per batch
}

// segment runs a segment's timesteps for every batch on its checkpoint,
// which it reads first (encoding the prompts if no model did yet), and
// returns the model for the caller to release.
func (l *loop) segment(ctx context.Context, seg Segment) (*unet.Model, error) {
	ck := seg.Checkpoint
	m, err := ck.load(l.opt.Backend)
	if err != nil {
		return nil, err
	}
	defer inference(m)()
	if l.text == nil {
		if l.text, err = encodeText(m, l.res.Batches); err != nil {
			return m, err
		}
	}
	for bi := range l.res.Batches {
		for _, t := range seg.Timesteps {
			if err := ctx.Err(); err != nil {
				return m, err
			}
			if err := denoise(m, l.sched, &l.res.Batches[bi], l.text[bi], l.rngs, t, l.opt, l.guided); err != nil {
				return m, fmt.Errorf("sample: step %d of %d (t=%d) on %s (%s), batch %d: %w; nothing written", l.done[bi]+1, len(l.res.Timesteps), t, ck.Name, ck.Role(), bi+1, err)
			}
			l.done[bi]++
			if l.opt.Progress != nil {
				l.opt.Progress(Progress{Batch: bi, Batches: len(l.res.Batches), Step: l.done[bi], Steps: len(l.res.Timesteps), T: t, Checkpoint: ck, Elapsed: time.Since(l.start)})
			}
		}
	}
	return m, nil
}

// noiseStream is the PCG stream of every image's generator ("kediffs").
const noiseStream = 0x6b656469666673

// inference puts a model in evaluation mode (no dropout) for sampling and
// returns what puts it back; sampling also leaves its dropout counter as it
// was, so that a trainer that draws grids stays bit-identical on resume.
func inference(m *unet.Model) (restore func()) {
	train, forwards := m.Train, m.Forwards
	m.Train = false
	return func() { m.Train, m.Forwards = train, forwards }
}

// encodeText runs the text encoder once per batch on exactly the rows the
// U-Net will see ([unconditional x B; prompts] with guidance), so the
// encodings need no rearranging and the model keeps one batch size.
func encodeText(m *unet.Model, batches []Batch) ([][]float32, error) {
	out := make([][]float32, len(batches))
	for bi, b := range batches {
		xf, err := m.EncodeText(b.Tokens, b.Mask)
		if err != nil {
			return nil, err
		}
		out[bi] = xf
	}
	return out, nil
}

// denoise takes one step of batch b at timestep t on model m: one batched
// forward of both guidance halves, eps = eps_uncond + s (eps_cond -
// eps_uncond), then the scheduler's update with each image's own noise.
func denoise(m *unet.Model, sched diffusion.Scheduler, b *Batch, xf []float32, rngs []*rand.Rand, t int, opt Options, guided bool) error {
	B := len(b.Images)
	n := len(b.X0) / B
	rows := B
	if guided {
		rows = 2 * B
	}
	in := &unet.Batch{Timesteps: make([]float32, rows), Tokens: b.Tokens, Mask: b.Mask}
	for i := range in.Timesteps {
		in.Timesteps[i] = float32(t)
	}
	in.X = b.X0
	if guided {
		in.X = append(append(make([]float32, 0, 2*B*n), b.X0...), b.X0...)
	}
	dev, err := m.ForwardEncoded(in, xf)
	if err != nil {
		return err
	}
	out := m.Host(dev)
	if i := firstNonFinite(out); i >= 0 {
		half := "conditional"
		if guided && i < B*n {
			half = "unconditional"
		}
		return fmt.Errorf("the model's eps is not finite (%v, %s half, image %d)", out[i], half, b.Images[(i/n)%B])
	}
	eps := out
	if guided {
		s := float32(opt.Guidance)
		eps = make([]float32, B*n)
		for i := range eps {
			u, c := out[i], out[B*n+i]
			eps[i] = u + s*(c-u)
		}
	}
	u, err := sched.Update(t)
	if err != nil {
		return err
	}
	var noise []float32
	if u.Sigma != 0 {
		noise = make([]float32, 0, B*n)
		for _, i := range b.Images {
			for range n {
				noise = append(noise, float32(rngs[i].NormFloat64()))
			}
		}
		if opt.KeepNoise {
			b.Noise = append(b.Noise, noise)
			b.NoiseSteps = append(b.NoiseSteps, t)
		}
	}
	diffusion.Apply(u, b.X0, nil, eps, b.X0, noise)
	if i := firstNonFinite(b.X0); i >= 0 {
		return fmt.Errorf("the latent became %v (image %d)", b.X0[i], b.Images[i/n])
	}
	return nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}
