package plots

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// niceTicks puts about six labelled ticks at round values (1, 2 or 5
// times a power of ten) and unlabelled ones between, labelled as briefly as
// the spacing allows: "250", "0.35", "1.5e-04".
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return []plot.Tick{{Value: lo, Label: tickLabel(lo, 1, math.Abs(lo))}}
	}
	step := niceStep((hi - lo) / 6)
	minor := step / 5
	if m := step / math.Pow(10, math.Floor(math.Log10(step))); math.Abs(m-2) < 1e-9 {
		minor = step / 4
	}
	maxAbs := math.Max(math.Abs(lo), math.Abs(hi))
	var ticks []plot.Tick
	first := math.Ceil(lo/minor - 1e-9)
	for k := first; k*minor <= hi+minor*1e-9; k++ {
		v := k * minor
		if q := v / step; math.Abs(q-math.Round(q)) < 1e-6 {
			v = math.Round(q) * step
			ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v, step, maxAbs)})
		} else {
			ticks = append(ticks, plot.Tick{Value: v})
		}
		if len(ticks) > 200 {
			break
		}
	}
	return ticks
}

// niceStep is the one of 1, 2, 5 times a power of ten nearest x (in
// ratio).
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	best := p
	for _, m := range []float64{2, 5, 10} {
		if math.Abs(math.Log(m*p/x)) < math.Abs(math.Log(best/x)) {
			best = m * p
		}
	}
	return best
}

// tickLabel writes v, a multiple of step on an axis reaching maxAbs.
func tickLabel(v, step, maxAbs float64) string {
	if v == 0 || math.Abs(v) < step*1e-6 {
		return "0"
	}
	switch {
	case step >= 1 && maxAbs < 1e9:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case step < 1 && maxAbs >= 1e-3 && step >= 1e-6:
		return strconv.FormatFloat(v, 'f', int(math.Max(0, -math.Floor(math.Log10(step)+1e-9))), 64)
	}
	sig := int(math.Floor(math.Log10(maxAbs))-math.Floor(math.Log10(step))) + 1
	return strconv.FormatFloat(v, 'e', min(max(sig-1, 0), 14), 64)
}
