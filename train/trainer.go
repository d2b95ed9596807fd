package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/kediff/kediff/dashboard"
	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/dist"
	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/internal/limitedfile"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
)

// Files of a training checkpoint directory, besides config.json and
// model.safetensors (Save).
const (
	TrainConfigFile = "train_config.json"
	OptimizerFile   = "optimizer.safetensors" // AdamW exp_avg.NAME, exp_avg_sq.NAME (F32) and step (I64)
	EMAFile         = "ema.safetensors"       // EMA weights, state_dict names
	StateFile       = "state.json"            // step, loader position, RNG state (written last)
	VocabFile       = "vocab.txt"
	MetricsFile     = "metrics.jsonl"
	LossPlotFile    = "loss.png"       // the loss against step, raw and smoothed (package plots)
	DashboardFile   = "dashboard.html" // loss, grad norm, lr, throughput and the sample grids on one page (package dashboard)
)

// TrainConfig is the trainer's JSON config.
type TrainConfig struct {
	Comment string `json:"_comment,omitempty"`
	// Model is a ModelConfig JSON path (relative to the config file) or a
	// preset: "tiny" or "glide". ModelConfig, when set, is used instead.
	Model       string       `json:"model,omitempty"`
	ModelConfig *unet.Config `json:"model_config,omitempty"`
	// Vocab is a vocabulary file (relative to the config file); empty: build
	// one from the data (kediff vocab build) and keep it in the checkpoint.
	Vocab         string  `json:"vocab,omitempty"`
	VocabMinCount int     `json:"vocab_min_count,omitempty"`
	Steps         int     `json:"steps"`
	Batch         int     `json:"batch"`
	GradAccum     int     `json:"grad_accum"`
	LR            float64 `json:"lr"`
	Warmup        int     `json:"warmup"`
	Beta1         float64 `json:"beta1"`
	Beta2         float64 `json:"beta2"`
	Eps           float64 `json:"eps"`
	WeightDecay   float64 `json:"weight_decay"`
	GradClip      float64 `json:"grad_clip"`
	EMA           float64 `json:"ema"` // EMA decay; 0 disables
	WA            float64 `json:"w_a"`
	WL            float64 `json:"w_l"`
	// The noise schedule: schedule (scaled_linear, linear or cosine),
	// beta_start, beta_end, timesteps.
	diffusion.ScheduleConfig
	Experts         int `json:"experts"` // n; with Expert >= 0 t is drawn from block Expert only
	Expert          int `json:"expert"`  // -1: base (all timesteps)
	CheckpointEvery int `json:"checkpoint_every"`
	// Sample grids while training (package sample): every SampleEvery steps
	// (0: never) and at the last step, the prompts of SamplePrompts (a file,
	// one a line) through SampleDecoder (a vae_decoder), SampleSteps DDIM
	// steps at guidance SampleGuidance from seed SampleSeed, into
	// OUT/samples/step-NNNNNN.png. Paths are relative to the config file. An
	// expert's grid takes the base checkpoint's steps outside its block.
	SampleEvery    int     `json:"sample_every"`
	SamplePrompts  string  `json:"sample_prompts,omitempty"`
	SampleDecoder  string  `json:"sample_decoder,omitempty"`
	SampleSteps    int     `json:"sample_steps"`
	SampleGuidance float64 `json:"sample_guidance"`
	SampleSeed     uint64  `json:"sample_seed"`
	Seed           uint64  `json:"seed"`
	CFGDrop        float64 `json:"cfg_drop"`
	ShuffleBuffer  int     `json:"shuffle_buffer"`
	Prefetch       int     `json:"prefetch"`
	// BucketMB is the size of the gradient buckets a data-parallel job
	// all-reduces while the backward pass runs (DDP's bucket_cap_mb).
	BucketMB float64 `json:"bucket_mb"`
	// DataStreams > 1 splits the data into that many independent streams
	// (LoaderConfig.Streams), so that each rank of a data-parallel job
	// reads only its streams' shards; the batches then depend on
	// data_streams, not on the number of ranks, and a checkpoint resumes
	// on any number of ranks that divides it. 0 or 1: one stream that
	// every rank reads, keeping its slice (any number of ranks).
	DataStreams int `json:"data_streams"`
	// Backend is where the model trains (nil: kernels.CPU); not part of the
	// config file (kediff train --device).
	Backend kernels.Backend `json:"-"`
	// Comm joins the ranks of a data-parallel job (nil: one process): Batch
	// is the global batch, each rank trains on its slice and only rank 0
	// writes. Not part of the config file (kediff train finds the ranks).
	Comm dist.Comm `json:"-"`
}

// DefaultTrainConfig is DESIGN.md's recipe: AdamW lr 0.9e-4, betas 0.9/0.999,
// weight decay 0.01, w_a 0.01, w_l 0.1, scaled_linear T=1000, CFG drop 0.1.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Model: "tiny", Steps: 1000, Batch: 8, GradAccum: 1, LR: 0.9e-4, Warmup: 100,
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, GradClip: 1, WA: 0.01, WL: 0.1,
		ScheduleConfig: diffusion.DefaultScheduleConfig(), Experts: 10, Expert: -1,
		CheckpointEvery: 100, Seed: 1, CFGDrop: 0.1, ShuffleBuffer: 256, Prefetch: 2, BucketMB: 25,
		SampleSteps: 25, SampleGuidance: sample.DefaultGuidance}
}

// MaxConfigBytes bounds a train config file (real ones are a few KB): a
// larger file is refused before it is read. encoding/json bounds nesting
// (10000 levels, a clear error) and JSON has no aliases to expand.
const MaxConfigBytes = 1 << 20

// ReadTrainConfig reads a TrainConfig over the defaults (unknown fields are
// errors) and resolves its model config.
func ReadTrainConfig(path string) (TrainConfig, error) {
	raw, err := limitedfile.Read(path, MaxConfigBytes, "a train config is a short JSON file (see train/configs)")
	if err != nil {
		return TrainConfig{}, fmt.Errorf("train: config: %w", err)
	}
	c := DefaultTrainConfig()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		if msg := err.Error(); strings.Contains(msg, `unknown field "rank"`) || strings.Contains(msg, `unknown field "world"`) {
			return c, fmt.Errorf("train: config %s: rank and world are no longer config fields: the ranks come from the launcher (mpirun, srun, torchrun); delete them", path)
		}
		return c, fmt.Errorf("train: config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if c.ModelConfig == nil {
		switch c.Model {
		case "tiny":
			mc := unet.TinyConfig()
			c.ModelConfig = &mc
		case "glide":
			mc := unet.GLIDEConfig()
			c.ModelConfig = &mc
		case "":
			return c, fmt.Errorf("train: config %s: set model (a model config path, \"tiny\" or \"glide\") or model_config", path)
		default:
			p := c.Model
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			mc, err := unet.ReadConfig(p)
			if err != nil {
				return c, err
			}
			c.ModelConfig = &mc
		}
	}
	for _, p := range []*string{&c.Vocab, &c.SamplePrompts, &c.SampleDecoder} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, c.Validate()
}

// Validate checks the config.
func (c *TrainConfig) Validate() error {
	switch {
	case c.ModelConfig == nil:
		return errors.New("train: config has no model")
	case c.Steps <= 0 || c.Batch <= 0:
		return fmt.Errorf("train: config: steps %d and batch %d must be positive", c.Steps, c.Batch)
	case c.Experts < 1:
		return fmt.Errorf("train: config: experts %d must be at least 1", c.Experts)
	case c.Expert >= c.Experts:
		return fmt.Errorf("train: expert %d out of range: experts are 0..%d", c.Expert, c.Experts-1)
	case c.Timesteps < c.Experts:
		return fmt.Errorf("train: %d timesteps cannot be split into %d experts", c.Timesteps, c.Experts)
	case c.BucketMB < 0:
		return fmt.Errorf("train: bucket_mb %g is negative", c.BucketMB)
	case c.DataStreams < 0 || (c.DataStreams > 1 && c.Batch%c.DataStreams != 0):
		return fmt.Errorf("train: data_streams %d must be 0 or a divisor of the batch %d (each stream gives batch/data_streams samples of every batch)", c.DataStreams, c.Batch)
	case c.SampleEvery < 0:
		return fmt.Errorf("train: sample_every %d is negative (0: no grids)", c.SampleEvery)
	case c.SampleEvery > 0 && (c.SamplePrompts == "" || c.SampleDecoder == ""):
		return fmt.Errorf("train: sample_every %d needs sample_prompts (a file of prompts) and sample_decoder (a vae_decoder ONNX)", c.SampleEvery)
	case c.SampleEvery > 0 && (c.SampleSteps < 1 || c.SampleSteps > c.Timesteps || c.SampleGuidance < 0):
		return fmt.Errorf("train: sample_steps %d (want 1 to %d) or sample_guidance %g (want >= 0) out of range", c.SampleSteps, c.Timesteps, c.SampleGuidance)
	}
	if c.GradAccum <= 0 {
		c.GradAccum = 1
	}
	return c.ModelConfig.Validate()
}

// Metrics is one line of metrics.jsonl.
type Metrics struct {
	Step        int     `json:"step"`
	Loss        float64 `json:"loss"`
	GradNorm    float64 `json:"grad_norm"`
	LR          float64 `json:"lr"`
	SamplesPerS float64 `json:"samples_per_s"`
	TMin        int     `json:"t_min"`
	TMax        int     `json:"t_max"`
	// CommS is the time this step waited on other ranks (data-parallel):
	// the gradient all-reduce not hidden behind the backward pass, and the
	// loss's. Rank 0's. (TMin and TMax cover every rank's samples.)
	CommS float64 `json:"comm_s,omitempty"`
}

// TrainState is state.json.
type TrainState struct {
	Step     int         `json:"step"`
	Loader   LoaderState `json:"loader"`
	Forwards uint64      `json:"forwards"` // model forward count (dropout masks)
	Seed     uint64      `json:"seed"`     // per-step randomness is a function of seed and step
	Expert   int         `json:"expert"`
	Experts  int         `json:"experts"`
	// Base is the base checkpoint an expert started from (its sample grids
	// take the base's steps outside the expert's block).
	Base string `json:"base,omitempty"`
}

// Trainer runs the training loop.
type Trainer struct {
	Cfg   TrainConfig
	Data  string
	Out   string
	Model *unet.Model
	Tok   *tokenizer.Tokenizer
	Diff  *diffusion.Schedule
	State TrainState
	EMA   []float32
	// OnStep, if set, is called after every step (progress bars); OnT with
	// the timesteps drawn for every micro-batch (tests).
	OnStep func(Metrics)
	OnT    func([]int)
	// OnGrid, if set, is called with each sample grid written.
	OnGrid func(step int, path string)
	frozen []kernels.View // not updated (expert: the text encoder)
	comm   dist.Comm
	// metrics is metrics.jsonl as written so far (rank 0): loss.png and
	// dashboard.html are drawn from it at every checkpoint.
	metrics []Metrics
	thumbs  dashboard.Thumbs // the dashboard's grid thumbnails, each made once
	grids   *grids
}

// NewTrainer prepares a run writing its checkpoint to out. base, for an
// expert (Cfg.Expert >= 0), is the base checkpoint to start from; resume
// continues the checkpoint in out.
func NewTrainer(ctx context.Context, cfg TrainConfig, data, out, base string, resume bool) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Data: data, Out: out, comm: cfg.Comm}
	if t.comm == nil {
		t.comm = dist.Single()
	}
	if w := t.comm.Size(); cfg.Batch%w != 0 {
		return nil, fmt.Errorf("train: the global batch of %d samples does not split evenly into %d ranks: make batch a multiple of the world size (grad_accum multiplies the batch per step)", cfg.Batch, w)
	} else if cfg.DataStreams > 1 && cfg.DataStreams%w != 0 {
		return nil, fmt.Errorf("train: data_streams %d do not split evenly into %d ranks: run on a number of ranks that divides data_streams", cfg.DataStreams, w)
	}
	var err error
	if t.Diff, err = cfg.ScheduleConfig.New(); err != nil {
		return nil, err
	}
	switch {
	case resume:
		if err := t.loadCheckpoint(out); err != nil {
			return nil, err
		}
	case cfg.Expert >= 0:
		if base == "" {
			return nil, errors.New("train: an expert starts from the base checkpoint: give --base DIR")
		}
		if err := atomicfile.Recover(base); err != nil {
			return nil, fmt.Errorf("train: base checkpoint: %w", err)
		}
		if _, err := os.Stat(filepath.Join(base, unet.WeightsFile)); err != nil {
			return nil, fmt.Errorf("train: base checkpoint %s is missing (%v): run kediff train base first", base, err)
		}
		m, err := unet.Load(base, cfg.Backend)
		if err != nil {
			return nil, fmt.Errorf("train: base checkpoint %s: %w", base, err)
		}
		if !reflect.DeepEqual(m.Config, *cfg.ModelConfig) {
			return nil, fmt.Errorf("train: config/checkpoint mismatch: the train config's model %+v differs from the base checkpoint's %+v (%s)", *cfg.ModelConfig, m.Config, filepath.Join(base, unet.ConfigFile))
		}
		t.Model = m
		if t.Tok, err = tokenizer.ReadVocab(filepath.Join(base, VocabFile)); err != nil {
			return nil, fmt.Errorf("train: base checkpoint %s: %w", base, err)
		}
	default:
		if t.Model, err = unet.NewModel(*cfg.ModelConfig, cfg.Backend); err != nil {
			return nil, err
		}
		t.Model.Init(cfg.Seed)
		if err := t.setupVocab(ctx); err != nil {
			return nil, err
		}
	}
	if t.Tok.Size() > t.Model.Config.NVocab {
		return nil, fmt.Errorf("train: the vocabulary has %d tokens but the model's n_vocab is %d", t.Tok.Size(), t.Model.Config.NVocab)
	}
	if cfg.Expert >= 0 {
		for _, v := range t.Model.Params.Layout.Views() {
			if unet.IsTextEncoder(v.Name) {
				t.frozen = append(t.frozen, v)
			}
		}
	}
	if cfg.EMA > 0 && t.EMA == nil {
		be := t.Model.Backend()
		t.EMA = be.Alloc(len(t.Model.Params.Data), kernels.ForMoments)
		be.Accumulate(t.EMA, t.Model.Params.Data, len(t.EMA)) // a copy: EMA starts at the weights
	}
	t.Model.Train = true
	t.State.Seed, t.State.Expert, t.State.Experts = cfg.Seed, cfg.Expert, cfg.Experts
	if cfg.Expert >= 0 && base != "" {
		if t.State.Base, err = filepath.Abs(base); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if cfg.SampleEvery > 0 && t.comm.Rank() == 0 {
		if t.grids, err = newGrids(t); err != nil {
			return nil, err
		}
	}
	if err := t.syncStart(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close releases what the trainer holds besides memory (the sample grids'
// decoder).
func (t *Trainer) Close() error {
	if t.grids != nil {
		return t.grids.close()
	}
	return nil
}

func (t *Trainer) setupVocab(ctx context.Context) error {
	var err error
	if t.Cfg.Vocab != "" {
		t.Tok, err = tokenizer.ReadVocab(t.Cfg.Vocab)
		return err
	}
	t.Tok, err = BuildVocabFromData(ctx, t.Data, t.Cfg.VocabMinCount, t.Model.Config.NVocab)
	return err
}

// BuildVocabFromData builds a vocabulary from the prompts and special texts
// of the shards under data (see VocabBuilder.Build).
func BuildVocabFromData(ctx context.Context, data string, minCount, maxSize int) (*tokenizer.Tokenizer, error) {
	urls, err := ShardURLs(ctx, data)
	if err != nil {
		return nil, err
	}
	vb := tokenizer.NewVocabBuilder()
	l := &Loader{}
	for _, u := range urls {
		err := l.readShardText(ctx, u, func(r *textRow) {
			vb.Add(r.Prompt)
			for _, w := range r.Words {
				vb.Add(w)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return vb.Build(minCount, maxSize)
}

// lr is the learning rate of step (1-based): linear warm-up, then constant.
func (t *Trainer) lr(step int) float64 {
	if t.Cfg.Warmup > 0 && step < t.Cfg.Warmup {
		return t.Cfg.LR * float64(step) / float64(t.Cfg.Warmup)
	}
	return t.Cfg.LR
}

// Run trains until Cfg.Steps, checkpointing every CheckpointEvery steps and
// at the end. A non-finite loss stops the run with an error naming the step,
// after saving a checkpoint of the state before it.
//
// In a data-parallel job (Cfg.Comm with more than one rank) every rank runs
// this loop on its slice of each global batch; the gradients are averaged
// over the ranks before clipping, so every rank takes the same optimizer
// step, and only rank 0 writes metrics, grids and checkpoints.
func (t *Trainer) Run(ctx context.Context) error {
	c := t.Cfg
	mc := t.Model.Config
	rank, world := t.comm.Rank(), t.comm.Size()
	lead := rank == 0
	distributed := !dist.IsSingle(t.comm) // NCCL in a world of one still reduces
	if lead {
		if err := os.MkdirAll(t.Out, 0o755); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := t.loadMetrics(); err != nil {
			return err
		}
	}
	B := c.Batch / world // this rank's samples of each global batch
	first := rank * B    // the index of its first one
	S := max(c.DataStreams, 1)
	loader, err := NewLoader(ctx, LoaderConfig{Data: t.Data, Batch: c.Batch, SliceLo: first, SliceHi: first + B,
		Streams: c.DataStreams, StreamLo: rank * S / world, StreamHi: (rank + 1) * S / world,
		LatentSize: mc.ImageSize, LatentChans: mc.InChannels, TextCtx: mc.TextCtx, Seed: c.Seed,
		ShuffleBuffer: c.ShuffleBuffer, Prefetch: c.Prefetch, CFGDrop: c.CFGDrop, WA: c.WA, WL: c.WL}, t.Tok, t.State.Loader)
	if err != nil {
		return err
	}
	defer loader.Close()
	T := t.Diff.Steps()
	lo, hi := 0, T
	if c.Expert >= 0 {
		lo, hi = diffusion.Block(c.Expert, c.Experts, T)
	}
	p := t.Model.Params
	be := t.Model.Backend()
	n := mc.InChannels * mc.ImageSize * mc.ImageSize
	noise := make([]float32, B*n)
	xt := make([]float32, B*n)
	ts := make([]int, B)
	tsf := make([]float32, B)
	var reducer *gradReducer
	if distributed && commTakes(t.comm, be) && onHost(be) {
		reducer = newGradReducer(t.comm, p.Grad, c.BucketMB)
	}
	defer func() { t.Model.GradsReady = nil }()
	pcg := rand.NewPCG(0, 0)
	rng := rand.New(pcg)
	for t.State.Step < c.Steps {
		step := t.State.Step + 1
		start := time.Now()
		t.Model.ZeroGrad()
		var lossSum float64
		var commWait time.Duration
		tmin, tmax := hi, lo
		var pos LoaderState
		for micro := range c.GradAccum {
			tb, err := loader.Next(ctx)
			if err != nil {
				return err
			}
			pos = tb.State
			// Each sample's timestep and noise come from its own stream,
			// keyed by step, micro-batch and its index in the global batch:
			// the same numbers however the batch is split across ranks.
			for b := range B {
				pcg.Seed(c.Seed^0x747261696e^uint64(c.Expert+1)<<48, mix64(uint64(step)*64+uint64(micro))^mix64(uint64(first+b+1)))
				ts[b] = lo + rng.IntN(hi-lo)
				tsf[b] = float32(ts[b])
				tmin, tmax = min(tmin, ts[b]), max(tmax, ts[b])
				for i := range noise[b*n : (b+1)*n] {
					noise[b*n+i] = float32(rng.NormFloat64())
				}
			}
			if t.OnT != nil {
				t.OnT(append([]int(nil), ts...))
			}
			t.Diff.QSample(xt, tb.Latents, noise, ts)
			w := tb.Weight
			if c.GradAccum > 1 {
				for i := range w {
					w[i] /= float32(c.GradAccum)
				}
			}
			t.Model.Seed, t.Model.SampleOffset = c.Seed, first
			last := micro == c.GradAccum-1
			if reducer != nil && last {
				reducer.start()
				t.Model.GradsReady = reducer.ready
			}
			loss, err := t.Model.Loss(&unet.Batch{X: xt, Timesteps: tsf, Tokens: tb.Tokens, Mask: tb.Mask, WA: tb.WA, Keyword: tb.Keyword}, noise, w, true)
			t.Model.GradsReady = nil
			if reducer != nil && last {
				w := time.Now()
				rerr := reducer.finish()
				commWait += time.Since(w)
				if err == nil && rerr != nil {
					return fmt.Errorf("train: step %d: gradient all-reduce: %w", step, rerr)
				}
			}
			if err != nil {
				return fmt.Errorf("train: step %d: %w", step, err)
			}
			lossSum += loss
		}
		if distributed {
			w := time.Now()
			if reducer == nil {
				if err := allReduceMeanBuf(t.comm, be, p.Grad); err != nil {
					return fmt.Errorf("train: step %d: gradient all-reduce: %w", step, err)
				}
			}
			// The mean loss over the ranks (a NaN on any rank reaches all),
			// and every rank's timestep range in its own slots.
			l := make([]float32, 1+2*world)
			l[0], l[1+2*rank], l[2+2*rank] = float32(lossSum), float32(tmin), float32(tmax)
			if err := hostComm(t.comm).AllReduceSum(l); err != nil {
				return fmt.Errorf("train: step %d: loss all-reduce: %w", step, err)
			}
			lossSum = float64(l[0]) / float64(world)
			for r := range world {
				tmin, tmax = min(tmin, int(l[1+2*r])), max(tmax, int(l[2+2*r]))
			}
			if len(pos.Streams) > 0 {
				if err := mergeStreams(hostComm(t.comm), pos.Streams); err != nil {
					return fmt.Errorf("train: step %d: data positions: %w", step, err)
				}
			}
			commWait += time.Since(w)
		}
		if math.IsNaN(lossSum) || math.IsInf(lossSum, 0) {
			if !lead {
				return fmt.Errorf("train: step %d: loss is %v (not finite); rank 0 saves the checkpoint of step %d", step, lossSum, t.State.Step)
			}
			if err := t.Save(); err != nil {
				return fmt.Errorf("train: step %d: loss is %v; saving the checkpoint failed too: %w", step, lossSum, err)
			}
			return fmt.Errorf("train: step %d: loss is %v (not finite); stopped, checkpoint of step %d saved in %s", step, lossSum, t.State.Step, t.Out)
		}
		for _, v := range t.frozen {
			be.Zero(p.Grad[v.Offset : v.Offset+v.Size])
		}
		clip := c.GradClip
		if clip <= 0 {
			clip = math.Inf(1)
		}
		gn := be.ClipGradNorm(p.Grad, clip)
		lr := t.lr(step)
		if !math.IsNaN(gn) && !math.IsInf(gn, 0) {
			p.Step++
			acfg := kernels.AdamWConfig{LR: lr, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
			if len(t.frozen) == 0 {
				be.AdamWUpdate(p.Data, p.Grad, p.M, p.V, acfg, p.Step)
			} else {
				for _, v := range t.Model.Params.Layout.Views() {
					if unet.IsTextEncoder(v.Name) {
						continue
					}
					s, e := v.Offset, v.Offset+v.Size
					be.AdamWUpdate(p.Data[s:e], p.Grad[s:e], p.M[s:e], p.V[s:e], acfg, p.Step)
				}
			}
			if t.EMA != nil {
				be.EMAUpdate(t.EMA, p.Data, c.EMA)
			}
		}
		t.State.Step = step
		t.State.Loader = pos
		t.State.Forwards = t.Model.Forwards
		loss := lossSum // with grad_accum the weights were scaled by 1/grad_accum: the sum is the mean
		m := Metrics{Step: step, Loss: loss, GradNorm: gn, LR: lr, SamplesPerS: float64(c.Batch*c.GradAccum) / time.Since(start).Seconds(), TMin: tmin, TMax: tmax, CommS: commWait.Seconds()}
		if lead {
			if err := t.appendMetrics(m); err != nil {
				return err
			}
		}
		if t.OnStep != nil {
			t.OnStep(m)
		}
		if t.grids != nil && (step%c.SampleEvery == 0 || step == c.Steps) {
			path, err := t.grids.draw(ctx, step)
			if err != nil {
				return err
			}
			if t.OnGrid != nil {
				t.OnGrid(step, path)
			}
		}
		if lead && ((c.CheckpointEvery > 0 && step%c.CheckpointEvery == 0) || step == c.Steps) {
			if err := t.Save(); err != nil {
				return fmt.Errorf("train: step %d: save the checkpoint in %s (the previous checkpoint there, if any, is kept whole; --resume continues from it): %w", step, t.Out, err)
			}
		}
	}
	return nil
}

func (t *Trainer) loadMetrics() error {
	path := filepath.Join(t.Out, MetricsFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var keep bytes.Buffer
	t.metrics = t.metrics[:0]
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m Metrics
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Step > t.State.Step {
			continue
		}
		keep.Write(sc.Bytes())
		keep.WriteByte('\n')
		t.metrics = append(t.metrics, m)
	}
	return os.WriteFile(path, keep.Bytes(), 0o644)
}

func (t *Trainer) appendMetrics(m Metrics) error {
	f, err := os.OpenFile(filepath.Join(t.Out, MetricsFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	line, _ := json.Marshal(m)
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	t.metrics = append(t.metrics, m)
	return err
}

// Save writes the checkpoint into Out: config.json, model.safetensors,
// optimizer.safetensors, ema.safetensors (with EMA), vocab.txt,
// train_config.json, loss.png, dashboard.html and, last, state.json. All of
// them are written to temporary files first and renamed into place only once
// every one is written (atomicfile.Batch), so a save that fails (a full
// disk) leaves the previous checkpoint whole, never new weights beside an
// old optimizer state; a process killed between the renames leaves a
// journal that the next reader of the folder finishes. The two pictures are drawn from the metrics the
// trainer holds and the grids in OUT/samples (each read once per process),
// so they cost little at each checkpoint.
func (t *Trainer) Save() error {
	dir := t.Out
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var b atomicfile.Batch
	defer b.Discard()
	m := t.Model
	cfgJSON, _ := json.MarshalIndent(m.Config, "", "  ")
	if err := b.AddBytes(filepath.Join(dir, unet.ConfigFile), append(cfgJSON, '\n')); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt", "model": "glide-text2im Text2ImUNet (kediff)"}
	enc, err := safetensors.Encode(m.StateDict(), meta)
	if err != nil {
		return err
	}
	if err := b.AddBytes(filepath.Join(dir, unet.WeightsFile), enc); err != nil {
		return err
	}
	p := m.Params
	be := m.Backend()
	mh, vh := make([]float32, len(p.M)), make([]float32, len(p.V))
	be.CopyToHost(mh, p.M)
	be.CopyToHost(vh, p.V)
	opt := map[string]safetensors.Tensor{}
	for _, v := range p.Layout.Views() {
		opt["exp_avg."+v.Name] = safetensors.F32(v.Shape, mh[v.Offset:v.Offset+v.Size])
		opt["exp_avg_sq."+v.Name] = safetensors.F32(v.Shape, vh[v.Offset:v.Offset+v.Size])
	}
	stepB := make([]byte, 8)
	binary.LittleEndian.PutUint64(stepB, uint64(p.Step))
	opt["step"] = safetensors.Tensor{DType: "I64", Shape: []int{}, Data: stepB}
	if enc, err = safetensors.Encode(opt, map[string]string{"optimizer": "AdamW"}); err != nil {
		return err
	}
	if err := b.AddBytes(filepath.Join(dir, OptimizerFile), enc); err != nil {
		return err
	}
	if t.EMA != nil {
		eh := make([]float32, len(t.EMA))
		be.CopyToHost(eh, t.EMA)
		ema := map[string]safetensors.Tensor{}
		for _, v := range p.Layout.Views() {
			ema[v.Name] = safetensors.F32(v.Shape, eh[v.Offset:v.Offset+v.Size])
		}
		if enc, err = safetensors.Encode(ema, meta); err != nil {
			return err
		}
		if err := b.AddBytes(filepath.Join(dir, EMAFile), enc); err != nil {
			return err
		}
	}
	if err := b.Add(filepath.Join(dir, VocabFile), t.Tok.WriteVocab); err != nil {
		return err
	}
	tc, _ := json.MarshalIndent(t.Cfg, "", "  ")
	if err := b.AddBytes(filepath.Join(dir, TrainConfigFile), append(tc, '\n')); err != nil {
		return err
	}
	if len(t.metrics) > 0 {
		loss, err := PlotLoss(t.metrics, 640, 360)
		if err != nil {
			return err
		}
		if err := b.AddBytes(filepath.Join(dir, LossPlotFile), loss); err != nil {
			return err
		}
	}
	run := t.dashboardRun()
	if err := b.Add(filepath.Join(dir, DashboardFile), func(w io.Writer) error {
		return dashboard.Write(w, []dashboard.Run{run}, dashboard.Options{Thumbs: &t.thumbs})
	}); err != nil {
		return fmt.Errorf("train: %s: %w", DashboardFile, err)
	}
	st, _ := json.MarshalIndent(t.State, "", "  ")
	if err := b.AddBytes(filepath.Join(dir, StateFile), append(st, '\n')); err != nil {
		return err
	}
	return b.Commit()
}

// loadCheckpoint restores a run from dir (resume).
func (t *Trainer) loadCheckpoint(dir string) error {
	if err := atomicfile.Recover(dir); err != nil { // a save killed mid-commit
		return fmt.Errorf("train: resume: %w", err)
	}
	raw, err := limitedfile.Read(filepath.Join(dir, StateFile), unet.MaxJSONBytes, "a checkpoint's state.json is a short JSON file")
	if err != nil {
		return fmt.Errorf("train: resume: no checkpoint in %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &t.State); err != nil {
		return fmt.Errorf("train: resume: %s: %w", filepath.Join(dir, StateFile), err)
	}
	m, err := unet.Load(dir, t.Cfg.Backend)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	be := m.Backend()
	if !reflect.DeepEqual(m.Config, *t.Cfg.ModelConfig) {
		return fmt.Errorf("train: config/checkpoint mismatch: the train config's model %+v differs from the checkpoint's %+v (%s)", *t.Cfg.ModelConfig, m.Config, filepath.Join(dir, unet.ConfigFile))
	}
	if t.State.Expert != t.Cfg.Expert || t.State.Experts != t.Cfg.Experts {
		return fmt.Errorf("train: config/checkpoint mismatch: the checkpoint in %s trains expert %d of %d, the config expert %d of %d", dir, t.State.Expert, t.State.Experts, t.Cfg.Expert, t.Cfg.Experts)
	}
	if t.State.Seed != t.Cfg.Seed {
		return fmt.Errorf("train: config/checkpoint mismatch: checkpoint seed %d, config seed %d", t.State.Seed, t.Cfg.Seed)
	}
	opt, _, err := safetensors.ReadFile(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	p := m.Params
	for _, v := range p.Layout.Views() {
		for _, kv := range []struct {
			name string
			dst  []float32
		}{{"exp_avg." + v.Name, p.M}, {"exp_avg_sq." + v.Name, p.V}} {
			ten, ok := opt[kv.name]
			if !ok {
				return fmt.Errorf("train: resume: %s lacks %s", OptimizerFile, kv.name)
			}
			vals, err := ten.Float32s()
			if err != nil || len(vals) != v.Size {
				return fmt.Errorf("train: resume: %s: bad tensor %s", OptimizerFile, kv.name)
			}
			be.CopyToDevice(kv.dst[v.Offset:v.Offset+v.Size], vals)
		}
	}
	steps, err := opt["step"].Ints()
	if err != nil || len(steps) != 1 {
		return fmt.Errorf("train: resume: %s: bad step", OptimizerFile)
	}
	p.Step = int(steps[0])
	m.Forwards = t.State.Forwards
	if t.Cfg.EMA > 0 {
		ema, _, err := safetensors.ReadFile(filepath.Join(dir, EMAFile))
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		t.EMA = be.Alloc(len(p.Data), kernels.ForMoments)
		for _, v := range p.Layout.Views() {
			vals, err := ema[v.Name].Float32s()
			if err != nil || len(vals) != v.Size {
				return fmt.Errorf("train: resume: %s: bad tensor %s", EMAFile, v.Name)
			}
			be.CopyToDevice(t.EMA[v.Offset:v.Offset+v.Size], vals)
		}
	}
	t.Model = m
	if t.Tok, err = tokenizer.ReadVocab(filepath.Join(dir, VocabFile)); err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	return nil
}

// dashboardRun is this run as package dashboard shows it.
func (t *Trainer) dashboardRun() dashboard.Run {
	return dashboard.Run{Name: dashboard.RunName(t.Out), Dir: t.Out, Note: dashboard.Note(t.Cfg.Expert, t.Cfg.Experts), Steps: dashboardSteps(t.metrics)}
}

func dashboardSteps(ms []Metrics) []dashboard.Step {
	out := make([]dashboard.Step, len(ms))
	for i, m := range ms {
		out[i] = dashboard.Step{Step: m.Step, Loss: m.Loss, GradNorm: m.GradNorm, LR: m.LR, SamplesPerS: m.SamplesPerS, CommS: m.CommS}
	}
	return out
}

// PlotLoss draws the loss of metrics against the step as a w×h PNG
// (loss.png): a titled chart with labelled axes, the raw loss faint and
// its smoothed curve (dashboard.DefaultSmooth) over it.
func PlotLoss(metrics []Metrics, w, h int) ([]byte, error) {
	c := dashboard.LossChart([]dashboard.Run{{Steps: dashboardSteps(metrics)}}, dashboard.DefaultSmooth)
	return c.PNG(w, h)
}
