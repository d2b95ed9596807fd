package repro

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kediff/kediff/train"
)

// variant is one trained model (a base) or mixture (experts) that the
// report compares.
type variant struct {
	Name  string
	Group string // "knowledge", "w_a", "w_l" or "experts"
	Data  knowledge
	WA    float64
	WL    float64
	// Experts > 0: n experts fine-tuned from the base variant BaseOf,
	// ExpertSteps/n steps each; 0: a base model trained for Steps.
	Experts int
	BaseOf  string
}

// variants lists every model of the run: the knowledge sets at the paper's
// w_a and w_l, the sweeps of w_a and w_l on the full knowledge set (the
// paper's values are the "all" variant itself), and the expert counts from
// the "all" base.
func (r *run) variants() []variant {
	c := r.cfg
	vs := []variant{{Name: "noise-floor", Group: "floor"}}
	for _, k := range knowledgeSets {
		vs = append(vs, variant{Name: k.Name, Group: "knowledge", Data: k, WA: c.WA, WL: c.WL})
	}
	all := knowledgeSets[len(knowledgeSets)-1]
	for _, w := range c.Sweep {
		if w != c.WA {
			vs = append(vs, variant{Name: "all-wa-" + fmtW(w), Group: "w_a", Data: all, WA: w, WL: c.WL})
		}
	}
	for _, w := range c.Sweep {
		if w != c.WL {
			vs = append(vs, variant{Name: "all-wl-" + fmtW(w), Group: "w_l", Data: all, WA: c.WA, WL: w})
		}
	}
	for _, n := range c.Experts {
		vs = append(vs, variant{Name: "experts-" + strconv.Itoa(n), Group: "experts", Data: all, WA: c.WA, WL: c.WL, Experts: n, BaseOf: "all"})
	}
	return vs
}

func fmtW(w float64) string { return strconv.FormatFloat(w, 'g', -1, 64) }

// trainConfig is the run's training config for a model of variant v.
func (r *run) trainConfig(v variant) (train.TrainConfig, error) {
	cfg, err := train.ReadTrainConfig(r.repo(r.cfg.Train))
	if err != nil {
		return cfg, err
	}
	cfg.Steps, cfg.WA, cfg.WL = r.cfg.Steps, v.WA, v.WL
	cfg.Vocab = r.path("vocab.txt")
	cfg.SampleEvery = 0
	cfg.Backend = r.opt.Backend
	cfg.CheckpointEvery = max(cfg.CheckpointEvery, 1)
	return cfg, nil
}

// vocab builds one vocabulary from the full knowledge set's shards (its
// prompts hold every word the other sets have, plus appended labels and
// generated captions), so that every variant tokenises alike.
func (r *run) vocab(ctx context.Context, allData string) error {
	p := r.path("vocab.txt")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	cfg, err := train.ReadTrainConfig(r.repo(r.cfg.Train))
	if err != nil {
		return err
	}
	tok, err := train.BuildVocabFromData(ctx, allData, cfg.VocabMinCount, cfg.ModelConfig.NVocab)
	if err != nil {
		return err
	}
	return tok.WriteVocabFile(p)
}

// trainModels trains variant v: a base model, or its n experts from the
// base (which must be trained first). Finished models are skipped; a
// partial one resumes from its last checkpoint.
func (r *run) trainModels(ctx context.Context, v variant, data string) error {
	if v.Group == "floor" {
		return nil
	}
	cfg, err := r.trainConfig(v)
	if err != nil {
		return err
	}
	if v.Experts == 0 {
		return r.trainOne(ctx, cfg, data, r.modelDir(v.Name), "", v.Name)
	}
	cfg.Experts = v.Experts
	cfg.Steps = r.cfg.ExpertSteps / v.Experts
	for i := range v.Experts {
		cfg.Expert = i
		name := fmt.Sprintf("%s/%d", v.Name, i)
		if err := r.trainOne(ctx, cfg, data, r.expertDir(v.Name, i), r.modelDir(v.BaseOf), name); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) modelDir(name string) string { return r.path("models", name) }
func (r *run) expertDir(name string, i int) string {
	return r.path("models", name, fmt.Sprintf("expert-%d", i))
}

func (r *run) trainOne(ctx context.Context, cfg train.TrainConfig, data, out, base, name string) error {
	step, err := trainedSteps(out)
	if err != nil {
		return err
	}
	if step >= cfg.Steps {
		return nil
	}
	t, err := train.NewTrainer(ctx, cfg, data, out, base, step > 0)
	if err != nil {
		return fmt.Errorf("repro: train %s: %w", name, err)
	}
	defer t.Close()
	start := r.now()
	var last train.Metrics
	t.OnStep = func(m train.Metrics) { last = m }
	if err := t.Run(ctx); err != nil {
		return fmt.Errorf("repro: train %s: %w", name, err)
	}
	done := cfg.Steps - step
	r.logf("train %s: %d steps, final loss %.4f, %.1f samples/s, %s", name, cfg.Steps, last.Loss,
		float64(done*cfg.Batch*max(1, cfg.GradAccum))/time.Since(start).Seconds(), r.since(start))
	return nil
}

// trainedSteps reads the step a checkpoint folder has reached (0 when there
// is none yet).
func trainedSteps(dir string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var st train.TrainState
	if err := json.Unmarshal(raw, &st); err != nil {
		return 0, fmt.Errorf("repro: %s/state.json: %w", dir, err)
	}
	return st.Step, nil
}
