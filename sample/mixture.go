package sample

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
	"github.com/kediff/kediff/vae"
)

// Mixture routes each timestep to the checkpoint that denoises it
// (DESIGN.md 1.5): the expert whose block [N*T/n, (N+1)*T/n) holds t, else
// the base. Its checkpoints share one model config, vocabulary, noise
// schedule and text encoder (NewMixture checks all four).
type Mixture struct {
	Base     *Checkpoint   // nil: every timestep needs an expert
	Experts  []*Checkpoint // sorted by block
	Config   unet.Config
	Schedule diffusion.ScheduleConfig
	Vocab    *tokenizer.Tokenizer
}

// NewMixture checks that base (may be nil) and experts form one mixture:
// equal model configs, vocabularies, schedules and text-encoder tensors,
// expert blocks that do not overlap and, without a base, tile [0, T).
func NewMixture(base *Checkpoint, experts []*Checkpoint) (*Mixture, error) {
	if base == nil && len(experts) == 0 {
		return nil, errors.New("sample: no checkpoint: give a base (--base DIR), experts (--experts DIR,...) or both")
	}
	all := experts
	if base != nil {
		if base.Expert >= 0 {
			return nil, fmt.Errorf("sample: %s is %s, not a base model: pass it with the experts", base.Name, base.Role())
		}
		all = append([]*Checkpoint{base}, experts...)
	}
	for _, e := range experts {
		if e.Expert < 0 {
			return nil, fmt.Errorf("sample: %s is a base model (its %s names no expert), not an expert: pass it as the base", e.Name, StateFile)
		}
	}
	ref := all[0]
	for _, c := range all[1:] {
		if !reflect.DeepEqual(c.Config, ref.Config) {
			return nil, fmt.Errorf("sample: %s and %s have different model configs (%s): the experts of a mixture are fine-tuned from one base", ref.Name, c.Name, configDiff(ref.Config, c.Config))
		}
		if c.Schedule != ref.Schedule {
			return nil, fmt.Errorf("sample: %s and %s were trained on different noise schedules (%+v vs %+v)", ref.Name, c.Name, ref.Schedule, c.Schedule)
		}
		if d := vocabDiff(ref.Vocab, c.Vocab); d != "" {
			return nil, fmt.Errorf("sample: %s and %s have different vocabularies (%s)", ref.Name, c.Name, d)
		}
		var differ []string
		for name, h := range ref.text {
			if c.text[name] != h {
				differ = append(differ, name)
			}
		}
		for name := range c.text {
			if _, ok := ref.text[name]; !ok {
				differ = append(differ, name)
			}
		}
		if len(differ) > 0 {
			sort.Strings(differ)
			show := differ[:min(len(differ), 6)]
			more := ""
			if len(differ) > len(show) {
				more = ", ..."
			}
			return nil, fmt.Errorf("sample: the text encoder of %s differs from that of %s in %d of %d tensors (%s%s): experts share the frozen text encoder of the base they were fine-tuned from (kediff train expert N --base DIR)",
				c.Name, ref.Name, len(differ), len(ref.text), strings.Join(show, ", "), more)
		}
	}
	sorted := append([]*Checkpoint(nil), experts...)
	sort.SliceStable(sorted, func(i, j int) bool {
		li, _ := sorted[i].Block()
		lj, _ := sorted[j].Block()
		return li < lj
	})
	T := ref.Schedule.Timesteps
	next := 0
	var gaps []string
	gap := func(lo, hi int) {
		g := fmt.Sprintf("[%d, %d)", lo, hi)
		if len(sorted) > 0 {
			n := sorted[0].Experts
			var names []string
			for i := range n {
				if blo, bhi := diffusion.Block(i, n, T); blo >= lo && bhi <= hi {
					names = append(names, fmt.Sprint(i))
				}
			}
			if len(names) > 0 {
				g += fmt.Sprintf(" (expert %s of %d)", strings.Join(names, ", "), n)
			}
		}
		gaps = append(gaps, g)
	}
	for i, e := range sorted {
		lo, hi := e.Block()
		if i > 0 {
			plo, phi := sorted[i-1].Block()
			if lo < phi {
				what := "overlapping timesteps"
				if lo == plo && hi == phi {
					what = "the same block"
				}
				return nil, fmt.Errorf("sample: %s (%s) and %s (%s) claim %s [%d, %d); give one expert per block", sorted[i-1].Name, sorted[i-1].Role(), e.Name, e.Role(), what, lo, min(hi, phi))
			}
		}
		if lo > next {
			gap(next, lo)
		}
		next = hi
	}
	if next < T && len(sorted) > 0 {
		gap(next, T)
	}
	if len(gaps) > 0 && base == nil {
		return nil, fmt.Errorf("sample: no expert holds t in %s and no base model was given to fall back on: train the missing experts (kediff train expert N) or pass --base", strings.Join(gaps, ", "))
	}
	return &Mixture{Base: base, Experts: sorted, Config: ref.Config, Schedule: ref.Schedule, Vocab: ref.Vocab}, nil
}

// CheckDecoder reports a decoder that cannot take the U-Net's latents.
func (m *Mixture) CheckDecoder(dec *vae.Decoder) error {
	if ch := dec.LatentChannels(); ch >= 0 && ch != m.Config.OutChannels {
		return fmt.Errorf("sample: the decoder takes %d latent channels, but the U-Net makes %d (out_channels in %s)", ch, m.Config.OutChannels, unet.ConfigFile)
	}
	return nil
}

// For is the checkpoint that denoises timestep t.
func (m *Mixture) For(t int) *Checkpoint {
	for _, e := range m.Experts {
		if lo, hi := e.Block(); t >= lo && t < hi {
			return e
		}
	}
	return m.Base
}

// Describe lists the routing, one line per range of timesteps, for logs.
func (m *Mixture) Describe() []string {
	var out []string
	T := m.Schedule.Timesteps
	for t := 0; t < T; {
		c := m.For(t)
		end := t
		for end < T && m.For(end) == c {
			end++
		}
		role := fmt.Sprintf("expert %d of %d", c.Expert, c.Experts)
		if c == m.Base {
			role = "base"
			if len(m.Experts) > 0 {
				role = "base (no expert for this block)"
			}
		}
		out = append(out, fmt.Sprintf("t in [%d, %d): %s, %s", t, end, role, c.Name))
		t = end
	}
	return out
}
