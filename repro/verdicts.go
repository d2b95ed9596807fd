package repro

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// comparison is one of the paper's directions: variant A should beat B.
type comparison struct {
	claim string
	a, b  string
}

// verdicts states, for each of the paper's directions, whether it held at
// the report scale, in alignment and in fidelity, and at how many guidance
// scales the point estimates went the paper's way.
func (r *run) verdicts(by map[string]VariantResult) []string {
	cs := []comparison{
		{"textual and visual knowledge together beat textual alone", "all", "textual"},
		{"textual and visual knowledge together beat visual alone", "all", "visual"},
		{"textual knowledge beats no knowledge", "textual", "baseline"},
		{"object knowledge beats no knowledge", "object", "baseline"},
		{"visual knowledge (objects + captions) beats no knowledge", "visual", "baseline"},
		{"all knowledge beats no knowledge", "all", "baseline"},
	}
	if n := r.cfg.Experts; len(n) >= 2 {
		most, one := "experts-"+strconv.Itoa(n[len(n)-1]), "experts-"+strconv.Itoa(n[0])
		cs = append(cs, comparison{fmt.Sprintf("%d experts beat %d at equal inference cost", n[len(n)-1], n[0]), most, one})
		for i := 1; i < len(n); i++ {
			cs = append(cs, comparison{fmt.Sprintf("%d experts beat %d", n[i], n[i-1]), "experts-" + strconv.Itoa(n[i]), "experts-" + strconv.Itoa(n[i-1])})
		}
	}
	floor, hasFloor := r.scaleAt(by["noise-floor"], r.cfg.ReportScale)
	atFloor := func(iv Interval) bool { return hasFloor && iv.Lo <= floor.Overall.Hi }
	var out []string
	for _, c := range cs {
		a, okA := by[c.a]
		b, okB := by[c.b]
		if !okA || !okB {
			continue
		}
		sa, okA := r.scaleAt(a, r.cfg.ReportScale)
		sb, okB := r.scaleAt(b, r.cfg.ReportScale)
		if !okA || !okB {
			continue
		}
		align := judge(sa.Overall, sb.Overall, true)
		if atFloor(sa.Overall) && atFloor(sb.Overall) {
			align = "not measurable: both at the noise floor, " + align
		}
		fid := judge(sa.FD, sb.FD, false)
		wins, winsFD := 0, 0
		for i := range a.Scales {
			if i < len(b.Scales) {
				if a.Scales[i].Overall.Value > b.Scales[i].Overall.Value {
					wins++
				}
				if a.Scales[i].FD.Value < b.Scales[i].FD.Value {
					winsFD++
				}
			}
		}
		out = append(out, fmt.Sprintf("**%s** (`%s` vs `%s`, guidance %g): alignment %s (%.3f vs %.3f); fidelity %s (Fréchet distance %.2f vs %.2f). Over all %d scales: better alignment at %d, better fidelity at %d.",
			c.claim, c.a, c.b, r.cfg.ReportScale, align, sa.Overall.Value, sb.Overall.Value, fid, sa.FD.Value, sb.FD.Value, len(a.Scales), wins, winsFD))
	}
	return out
}

// summary says in plain words what the run can and cannot show: whether
// the models' alignment rises above the noise floor at all, and whether
// their fidelity does.
func (r *run) summary(by map[string]VariantResult) []string {
	floor, ok := r.scaleAt(by["noise-floor"], r.cfg.ReportScale)
	if !ok {
		return nil
	}
	var above, models []string
	bestFD, worstFD := math.Inf(1), 0.0
	for _, v := range r.variants() {
		if v.Group == "floor" {
			continue
		}
		s, ok := r.scaleAt(by[v.Name], r.cfg.ReportScale)
		if !ok {
			continue
		}
		models = append(models, v.Name)
		if s.Overall.Lo > floor.Overall.Hi {
			above = append(above, v.Name)
		}
		bestFD, worstFD = math.Min(bestFD, s.FD.Value), math.Max(worstFD, s.FD.Value)
	}
	var out []string
	if len(above) == 0 {
		out = append(out, fmt.Sprintf("**Alignment is at the noise floor for every model.** At guidance %g no model's alignment interval lies above that of random latents decoded (%.3f [%.3f, %.3f]): the tiny U-Net, trained %d steps on one machine, does not yet draw shapes that the checker tells apart from noise (the sample grids above show what it draws), so the alignment comparisons below can neither confirm nor refute the paper.",
			r.cfg.ReportScale, floor.Overall.Value, floor.Overall.Lo, floor.Overall.Hi, r.cfg.Steps))
	} else {
		out = append(out, fmt.Sprintf("Alignment rises above the noise floor (%.3f [%.3f, %.3f]) for %d of %d models: %s.", floor.Overall.Value, floor.Overall.Lo, floor.Overall.Hi, len(above), len(models), strings.Join(above, ", ")))
	}
	out = append(out, fmt.Sprintf("**Fidelity separates the models from noise** (Fréchet distance %.2f to %.2f against %.2f for random latents at guidance %g), so the fidelity comparisons below are measurements, within their intervals.", bestFD, worstFD, floor.FD.Value, r.cfg.ReportScale))
	return out
}

// judge compares a with b, higher better (or lower when higherBetter is
// false): "holds", "points the paper's way" or "does not hold".
func judge(a, b Interval, higherBetter bool) string {
	better := a.Value > b.Value
	separate := a.Lo > b.Hi
	if !higherBetter {
		better, separate = a.Value < b.Value, a.Hi < b.Lo
	}
	switch {
	case better && separate:
		return "holds"
	case better:
		return "points the paper's way (intervals overlap)"
	}
	return strings.TrimSpace("does not hold")
}
