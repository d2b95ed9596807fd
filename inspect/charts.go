package inspect

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"slices"

	"github.com/kediff/kediff/plots"
)

// Chart size in pixels (one CSS pixel each).
const chartW, chartH = 560, 320

// maxSizeBars is how many image sizes get a bar of their own; the rest
// share one ("other").
const maxSizeBars = 12

type chart struct {
	Title string
	Src   template.URL
	W, H  int
}

// charts draws the shard-wide distributions.
func charts(t *tally, rej *rejectTally) ([]chart, error) {
	var out []chart
	add := func(title string, png []byte, err error) error {
		if err != nil {
			return fmt.Errorf("inspect: chart %q: %w", title, err)
		}
		out = append(out, chart{Title: title, Src: dataURL("image/png", png), W: chartW, H: chartH})
		return nil
	}
	hists := []struct {
		title, x string
		r        *reservoir
		integer  bool
	}{
		{"Caption length", "caption length (characters)", t.captionLen, true},
		{"Objects per image", "detections per image (kept and dropped)", t.objects, true},
		{"Keyword ratio", "keywords / words of the prompt", t.keywords, false},
		{"Loss-mask coverage", "weighted latent cells / all cells (rows with a mask)", t.coverage, false},
	}
	for _, h := range hists {
		title := h.title + sampledNote(h.r)
		bins := 20
		if h.integer {
			bins = integerBins(h.r.vals)
		}
		png, err := plots.Histogram{Title: title, XLabel: h.x, YLabel: "samples", Values: h.r.vals, Bins: bins}.PNG(chartW, chartH)
		if err := add(title, png, err); err != nil {
			return nil, err
		}
	}

	labels, values := sizeBars(t.sizes)
	png, err := plots.Bars{Title: "Image sizes", XLabel: "stored width x height (pixels)", YLabel: "samples",
		Labels: labels, Values: values}.PNG(chartW, chartH)
	if err := add("Image sizes", png, err); err != nil {
		return nil, err
	}

	labels, values = nil, nil
	for _, rt := range rej.sorted() {
		labels = append(labels, rt.reason)
		values = append(values, float64(max(rt.count, rt.stats)))
	}
	png, err = plots.Bars{Title: "Reject reasons", XLabel: "reason", YLabel: "rejected samples",
		Labels: labels, Values: values}.PNG(chartW, chartH)
	if err := add("Reject reasons", png, err); err != nil {
		return nil, err
	}
	return out, nil
}

// sampledNote says when a histogram shows a sample of the rows.
func sampledNote(r *reservoir) string {
	if r.seen <= int64(len(r.vals)) {
		return ""
	}
	return fmt.Sprintf(" (a uniform sample of %d of %d rows)", len(r.vals), r.seen)
}

// integerBins gives integer values a bin each (at most 50).
func integerBins(vals []float64) int {
	if len(vals) == 0 {
		return 1
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	return int(min(max(hi-lo+1, 1), 50))
}

// sizeBars are the most common image sizes, most common first (ties by
// size), the rest added up as "other".
func sizeBars(sizes map[[2]int32]int64) ([]string, []float64) {
	type sz struct {
		wh [2]int32
		n  int64
	}
	var all []sz
	for wh, n := range sizes {
		all = append(all, sz{wh, n})
	}
	slices.SortFunc(all, func(a, b sz) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		if c := cmp.Compare(a.wh[0], b.wh[0]); c != 0 {
			return c
		}
		return cmp.Compare(a.wh[1], b.wh[1])
	})
	var labels []string
	var values []float64
	var other int64
	for i, s := range all {
		if i >= maxSizeBars && len(all) > maxSizeBars+1 {
			other += s.n
			continue
		}
		labels = append(labels, fmt.Sprintf("%dx%d", s.wh[0], s.wh[1]))
		values = append(values, float64(s.n))
	}
	if other > 0 {
		labels = append(labels, fmt.Sprintf("other (%d sizes)", len(all)-maxSizeBars))
		values = append(values, float64(other))
	}
	return labels, values
}

// sorted lists the reasons by count, most first (ties by name).
func (t *rejectTally) sorted() []*reasonTally {
	var out []*reasonTally
	for _, rt := range t.reasons {
		out = append(out, rt)
	}
	slices.SortFunc(out, func(a, b *reasonTally) int {
		if c := cmp.Compare(max(b.count, b.stats), max(a.count, a.stats)); c != 0 {
			return c
		}
		return cmp.Compare(a.reason, b.reason)
	})
	return out
}

func dataURL(mime string, data []byte) template.URL {
	return template.URL("data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data))
}

// percent formats a fraction as "12.5%".
func percent(n, of int64) string {
	if of == 0 {
		return "–"
	}
	p := 100 * float64(n) / float64(of)
	if p != 0 && math.Abs(p) < 0.1 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", p)
}
