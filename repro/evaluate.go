package repro

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/kediff/kediff/eval/fid"
	"github.com/kediff/kediff/eval/geneval"
	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/vae"
)

// Interval is a point estimate with its 95% confidence interval.
type Interval struct {
	Value, Lo, Hi float64
}

// ScaleResult is one variant at one guidance scale.
type ScaleResult struct {
	Guidance float64 `json:"guidance"`
	Images   int     `json:"images"`
	// Overall is GenEval's overall score (mean of the category rates);
	// Categories the rate per category; both with bootstrap intervals over
	// prompts (each prompt's images of every seed resampled together).
	Overall    Interval                      `json:"overall"`
	Categories map[geneval.Category]Interval `json:"categories"`
	// PerSeed is the overall score of each seed's images alone.
	PerSeed []float64 `json:"per_seed"`
	// FD is the Fréchet distance between the generated images' features and
	// the held-out renders', with a bootstrap interval over prompts.
	FD       Interval `json:"fd"`
	Unparsed int      `json:"unparsed"`
	Failed   int      `json:"failed"`
}

// VariantResult is everything measured for one variant.
type VariantResult struct {
	Name    string        `json:"name"`
	Group   string        `json:"group"`
	Scales  []ScaleResult `json:"scales"`
	Grid    string        `json:"grid"`    // the sample grid, relative to the run folder
	Seconds float64       `json:"seconds"` // sampling and evaluation time
}

// evaluator holds what every variant's evaluation shares.
type evaluator struct {
	checker *geneval.Checker
	feats   *fid.Extractor
	dec     *vae.Decoder
	held    heldOut
	ref     fid.Stats
	refN    int
}

func (r *run) newEvaluator(held heldOut) (*evaluator, error) {
	e := &evaluator{held: held}
	var err error
	if e.checker, err = geneval.Open(r.repo(r.cfg.Detector), geneval.Options{}, r.onnxOptions()); err != nil {
		return nil, err
	}
	if e.feats, err = fid.NewExtractor(r.repo(r.cfg.Features), fid.ExtractorOptions{Session: r.onnxOptions()}); err != nil {
		e.close()
		return nil, err
	}
	if e.dec, err = vae.OpenDecoder(r.repo(r.cfg.Decoder), vae.Options{Session: r.onnxOptions()}); err != nil {
		e.close()
		return nil, err
	}
	f, err := e.feats.Features(held.Refs)
	if err != nil {
		e.close()
		return nil, err
	}
	if e.ref, err = fid.ComputeStats(f, len(held.Refs), e.feats.Dim()); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *evaluator) close() {
	if e.checker != nil {
		e.checker.Close()
	}
	if e.feats != nil {
		e.feats.Close()
	}
	if e.dec != nil {
		e.dec.Close()
	}
}

// mixture opens the checkpoints of variant v for sampling.
func (r *run) mixture(v variant) (*sample.Mixture, error) {
	if v.Experts == 0 {
		b, err := sample.OpenCheckpoint(r.modelDir(v.Name))
		if err != nil {
			return nil, err
		}
		return sample.NewMixture(b, nil)
	}
	var cks []*sample.Checkpoint
	for i := range v.Experts {
		c, err := sample.OpenCheckpoint(r.expertDir(v.Name, i))
		if err != nil {
			return nil, err
		}
		cks = append(cks, c)
	}
	return sample.NewMixture(nil, cks)
}

// generator returns the function that draws one image per held-out prompt
// for variant v at a guidance scale and seed: the variant's models through
// DDIM, or, for the noise floor, random latents through the decoder (what
// an untrained generator gives; the checker's detector fires on such noise,
// so this row says what alignment score means nothing).
func (r *run) generator(ctx context.Context, e *evaluator, v variant) (func(g float64, seed uint64) ([]*image.RGBA, error), error) {
	if v.Group == "floor" {
		return func(_ float64, seed uint64) ([]*image.RGBA, error) {
			rng := rand.New(rand.NewPCG(seed, 77))
			lat := make([]vae.Latent, len(e.held.Prompts))
			for k := range lat {
				d := make([]float32, 4*(r.cfg.ImageSize/8)*(r.cfg.ImageSize/8))
				for i := range d {
					d[i] = float32(rng.NormFloat64())
				}
				lat[k] = vae.Latent{Data: d, Shape: [3]int{4, r.cfg.ImageSize / 8, r.cfg.ImageSize / 8}}
			}
			return e.dec.Decode(lat)
		}, nil
	}
	mix, err := r.mixture(v)
	if err != nil {
		return nil, fmt.Errorf("repro: %s: %w", v.Name, err)
	}
	return func(g float64, seed uint64) ([]*image.RGBA, error) {
		out, err := sample.Run(ctx, mix, e.held.Prompts, sample.Options{Scheduler: "ddim", Steps: r.cfg.SampleSteps, Guidance: g,
			Seed: seed, Batch: 16, ImagesPerPrompt: 1, Backend: r.opt.Backend})
		if err != nil {
			return nil, err
		}
		return sample.DecodeImages(e.dec, out)
	}, nil
}

// evaluate samples variant v on the held-out prompts at every guidance
// scale and seed and scores the images (cached in results/NAME.json).
func (r *run) evaluate(ctx context.Context, e *evaluator, v variant) (VariantResult, error) {
	cache := r.path("results", v.Name+".json")
	var res VariantResult
	if raw, err := os.ReadFile(cache); err == nil && json.Unmarshal(raw, &res) == nil && len(res.Scales) == len(r.cfg.Guidance) {
		return res, nil
	}
	start := r.now()
	generate, err := r.generator(ctx, e, v)
	if err != nil {
		return res, err
	}
	res = VariantResult{Name: v.Name, Group: v.Group}
	prompts := e.held.Prompts
	for _, g := range r.cfg.Guidance {
		var imgs []image.Image
		var owner []int // prompt index of each image
		var seedOf []int
		for s := range r.cfg.Seeds {
			dec, err := generate(g, uint64(s)*1_000_003)
			if err != nil {
				return res, fmt.Errorf("repro: sample %s at guidance %g: %w", v.Name, g, err)
			}
			for i, m := range dec {
				imgs = append(imgs, m)
				owner = append(owner, i)
				seedOf = append(seedOf, s)
			}
			if s == 0 && g == r.cfg.GridGuidance {
				n := min(r.cfg.GridPrompts, len(dec))
				grid := make([]image.Image, n)
				for i := range grid {
					grid[i] = dec[i]
				}
				res.Grid = filepath.Join("grids", v.Name+".png")
				if err := writePNG(r.path(res.Grid), sample.Grid(grid, n)); err != nil {
					return res, err
				}
			}
		}
		sr, err := e.score(imgs, prompts, owner, seedOf, r.cfg.Seeds, r.cfg.Bootstrap)
		if err != nil {
			return res, fmt.Errorf("repro: evaluate %s at guidance %g: %w", v.Name, g, err)
		}
		sr.Guidance = g
		res.Scales = append(res.Scales, sr)
	}
	res.Seconds = r.now().Sub(start).Seconds()
	raw, _ := json.MarshalIndent(res, "", "  ")
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return res, err
	}
	if err := atomicfile.WriteBytes(cache, raw); err != nil {
		return res, err
	}
	best := res.Scales[0]
	r.logf("evaluate %s: overall %.3f, FD %.2f at guidance %g (%d images per scale), %s", v.Name, best.Overall.Value, best.FD.Value, best.Guidance, best.Images, r.since(start))
	return res, nil
}

// score checks and featurises one scale's images and bootstraps over
// prompts: each resample draws len(prompts) prompts with replacement and
// takes all their images (every seed).
func (e *evaluator) score(imgs []image.Image, prompts []string, owner, seedOf []int, seeds, B int) (ScaleResult, error) {
	texts := make([]string, len(imgs))
	for i, p := range owner {
		texts[i] = prompts[p]
	}
	checks, err := e.checker.Check(imgs, texts)
	if err != nil {
		return ScaleResult{}, err
	}
	f, err := e.feats.Features(imgs)
	if err != nil {
		return ScaleResult{}, err
	}
	D := e.feats.Dim()
	byPrompt := make([][]int, len(prompts))
	for i, p := range owner {
		byPrompt[p] = append(byPrompt[p], i)
	}
	all := make([]int, len(imgs))
	for i := range all {
		all[i] = i
	}
	fd := func(idx []int) (float64, error) {
		rows := make([]float32, 0, len(idx)*D)
		for _, i := range idx {
			rows = append(rows, f[i*D:(i+1)*D]...)
		}
		st, err := fid.ComputeStats(rows, len(idx), D)
		if err != nil {
			return 0, err
		}
		return fid.FrechetDistanceFunc(st, e.ref, func(string) {})
	}
	pick := func(idx []int) []geneval.Result {
		out := make([]geneval.Result, len(idx))
		for k, i := range idx {
			out[k] = checks[i]
		}
		return out
	}

	rep := geneval.Summarise(checks)
	sr := ScaleResult{Images: len(imgs), Unparsed: rep.Unparsed, Failed: rep.Failed, Categories: map[geneval.Category]Interval{}}
	point, err := fd(all)
	if err != nil {
		return sr, err
	}
	for s := range seeds {
		var idx []int
		for i, si := range seedOf {
			if si == s {
				idx = append(idx, i)
			}
		}
		sr.PerSeed = append(sr.PerSeed, geneval.Summarise(pick(idx)).Overall())
	}

	// The Fréchet distance needs a matrix square root per resample, so it
	// takes at most 200 of the B resamples.
	rng := rand.New(rand.NewPCG(uint64(len(imgs)), 15))
	var overall, fds []float64
	cats := map[geneval.Category][]float64{}
	for b := range B {
		var idx []int
		for range len(prompts) {
			idx = append(idx, byPrompt[rng.IntN(len(prompts))]...)
		}
		r := geneval.Summarise(pick(idx))
		overall = append(overall, r.Overall())
		for _, c := range geneval.Categories {
			cats[c] = append(cats[c], r.Categories[c].Rate())
		}
		if b < 200 {
			v, err := fd(idx)
			if err != nil {
				return sr, err
			}
			fds = append(fds, v)
		}
	}
	sr.Overall = interval(rep.Overall(), overall)
	for _, c := range geneval.Categories {
		if rep.Categories[c].Total > 0 {
			sr.Categories[c] = interval(rep.Categories[c].Rate(), cats[c])
		}
	}
	sr.FD = interval(point, fds)
	return sr, nil
}

// interval is the point estimate with the 2.5th and 97.5th percentiles of
// the bootstrap values (NaNs, from resamples without a category's prompts,
// left out).
func interval(point float64, boot []float64) Interval {
	var v []float64
	for _, x := range boot {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Interval{point, math.NaN(), math.NaN()}
	}
	sort.Float64s(v)
	q := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return Interval{point, q(0.025), q(0.975)}
}

func writePNG(path string, m image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, m) })
}

// MarshalJSON writes [value, lo, hi], with null for NaN (JSON has no NaN).
func (iv Interval) MarshalJSON() ([]byte, error) {
	var out [3]*float64
	for i, v := range []float64{iv.Value, iv.Lo, iv.Hi} {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[i] = &v
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (iv *Interval) UnmarshalJSON(b []byte) error {
	var in [3]*float64
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	v := [3]float64{math.NaN(), math.NaN(), math.NaN()}
	for i, p := range in {
		if p != nil {
			v[i] = *p
		}
	}
	iv.Value, iv.Lo, iv.Hi = v[0], v[1], v[2]
	return nil
}
