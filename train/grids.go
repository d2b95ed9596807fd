package train

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/internal/promptfile"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/vae"
)

// GridDir is the folder of a checkpoint directory that holds the sample
// grids drawn while training (step-NNNNNN.png).
const GridDir = "samples"

// grids draws sample grids of the model in training (TrainConfig's
// sample_* fields).
type grids struct {
	t       *Trainer
	prompts []string
	dec     *vae.Decoder
}

func newGrids(t *Trainer) (*grids, error) {
	c := t.Cfg
	f, err := os.Open(c.SamplePrompts)
	if err != nil {
		return nil, fmt.Errorf("train: sample_prompts: %w", err)
	}
	defer f.Close()
	g := &grids{t: t}
	err = promptfile.Each(context.Background(), f, c.SamplePrompts, "", "", func(_, p string) error {
		if strings.TrimSpace(p) != "" {
			g.prompts = append(g.prompts, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("train: sample_prompts: %w", err)
	}
	if len(g.prompts) == 0 {
		return nil, fmt.Errorf("train: sample_prompts %s holds no prompts", c.SamplePrompts)
	}
	if g.dec, err = vae.OpenDecoder(c.SampleDecoder, vae.Options{}); err != nil {
		return nil, fmt.Errorf("train: sample_decoder: %w", err)
	}
	if ch := g.dec.LatentChannels(); ch >= 0 && ch != t.Model.Config.OutChannels {
		g.dec.Close()
		return nil, fmt.Errorf("train: sample_decoder %s takes %d latent channels, the model makes %d", c.SampleDecoder, ch, t.Model.Config.OutChannels)
	}
	if c.Expert >= 0 && t.State.Base == "" {
		g.dec.Close()
		return nil, fmt.Errorf("train: an expert's sample grids need its base checkpoint for the other timesteps: give --base DIR")
	}
	return g, nil
}

func (g *grids) close() error { return g.dec.Close() }

// draw samples the grid prompts with the model as it is after step and
// writes OUT/samples/step-NNNNNN.png. The model is put back as it was
// (training mode, dropout counter), so drawing does not change training.
func (g *grids) draw(ctx context.Context, step int) (string, error) {
	t, c := g.t, g.t.Cfg
	name := fmt.Sprintf("the model in training (%s, step %d)", t.Out, step)
	var base *sample.Checkpoint
	var experts []*sample.Checkpoint
	self := sample.InMemory(name, t.Model, t.Tok, c.ScheduleConfig, c.Expert, c.Experts)
	if c.Expert < 0 {
		base = self
	} else {
		var err error
		if base, err = sample.OpenCheckpoint(t.State.Base); err != nil {
			return "", fmt.Errorf("train: sample grid: %w", err)
		}
		experts = []*sample.Checkpoint{self}
	}
	mix, err := sample.NewMixture(base, experts)
	if err != nil {
		return "", fmt.Errorf("train: sample grid: %w", err)
	}
	opt := sample.DefaultOptions()
	opt.Steps, opt.Guidance, opt.Seed = c.SampleSteps, c.SampleGuidance, c.SampleSeed
	res, err := sample.Run(ctx, mix, g.prompts, opt)
	if err != nil {
		return "", fmt.Errorf("train: sample grid at step %d: %w", step, err)
	}
	imgs, err := sample.DecodeImages(g.dec, res)
	if err != nil {
		return "", fmt.Errorf("train: sample grid at step %d: %w", step, err)
	}
	tiles := make([]image.Image, len(imgs))
	for i, im := range imgs {
		tiles[i] = im
	}
	cols := min(len(tiles), 8)
	png, err := sample.EncodePNG(sample.Grid(tiles, cols), []sample.Text{
		{Key: "prompts", Value: strings.Join(g.prompts, "\n")},
		{Key: "step", Value: strconv.Itoa(step)},
		{Key: "parameters", Value: fmt.Sprintf("Steps: %d, Sampler: ddim, CFG scale: %g, Seed: %d (image i: seed + i)", c.SampleSteps, c.SampleGuidance, c.SampleSeed)},
	})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(t.Out, GridDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("step-%06d.png", step))
	if err := atomicfile.WriteBytes(path, png); err != nil {
		return "", fmt.Errorf("train: %w", err)
	}
	return path, nil
}
