package inspect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kediff/kediff/shards"
	"github.com/parquet-go/parquet-go"
)

// MaxValues bounds the values a histogram keeps: up to this many rows every
// row's value is plotted; beyond, a uniform sample of this many (reservoir
// sampling with a fixed seed), so that memory does not grow with the rows.
const MaxValues = 1 << 20

// reservoir keeps the values of a histogram within MaxValues.
type reservoir struct {
	vals []float64
	seen int64
	rng  *rand.Rand
	max  int
}

func newReservoir(seed uint64, max int) *reservoir {
	return &reservoir{rng: rand.New(rand.NewPCG(seed, 0x6b656469)), max: max}
}

func (r *reservoir) add(v float64) {
	r.seen++
	if len(r.vals) < r.max {
		r.vals = append(r.vals, v)
		return
	}
	if j := r.rng.Int64N(r.seen); j < int64(r.max) {
		r.vals[j] = v
	}
}

// tally is what the pass over every row counts.
type tally struct {
	rows                                    int64
	captionLen, objects, keywords, coverage *reservoir
	sizes                                   map[[2]int32]int64
	sources                                 map[string]int64 // prompt_source
	withObjects, kept, dropped              int64
	withMask, withGenerated, withWords      int64
	textKnowledge, visualKnowledge, latents int64
}

func newTally(max int) *tally {
	return &tally{captionLen: newReservoir(1, max), objects: newReservoir(2, max),
		keywords: newReservoir(3, max), coverage: newReservoir(4, max),
		sizes: map[[2]int32]int64{}, sources: map[string]int64{}}
}

// add counts one row; cols says which columns its shard has.
func (t *tally) add(r *scanRow, cols *columns) {
	t.rows++
	if cols.has["caption"] {
		t.captionLen.add(float64(utf8.RuneCountInString(r.Caption)))
	}
	if cols.has["objects"] {
		t.objects.add(float64(len(r.Objects)))
		if len(r.Objects) > 0 {
			t.withObjects++
		}
		for _, o := range r.Objects {
			if o.Kept {
				t.kept++
			} else {
				t.dropped++
			}
		}
	}
	if len(r.Words) > 0 && cols.has["keyword"] {
		t.withWords++
		n := 0
		for _, k := range r.Keyword {
			if k {
				n++
			}
		}
		t.keywords.add(float64(n) / float64(len(r.Words)))
	}
	if rows, cols, ok := maskGrid(r.LossMask, r.LossMaskShape); ok {
		t.withMask++
		n := 0
		for _, b := range r.LossMask {
			if b != 0 {
				n++
			}
		}
		t.coverage.add(float64(n) / float64(rows*cols))
	}
	if cols.has["width"] && cols.has["height"] {
		t.sizes[[2]int32{r.Width, r.Height}]++
	}
	if cols.has["prompt_source"] {
		t.sources[r.PromptSource]++
	}
	if r.GeneratedCaption != nil {
		t.withGenerated++
	}
	if r.TextKnowledge {
		t.textKnowledge++
	}
	if r.VisualKnowledge {
		t.visualKnowledge++
	}
	if len(r.LatentShape) > 0 {
		t.latents++
	}
}

// scanRows calls fn for every row of every shard, in order, with the row's
// index in its shard. Only the columns of scanRow are read: image and latent
// bytes stay on the blob. r is reused: fn copies what it keeps.
func (s *source) scanRows(ctx context.Context, fn func(sh *shard, i int64, r *scanRow) error) error {
	buf := make([]parquet.Row, 64)
	var r scanRow
	for _, sh := range s.shards {
		f, err := s.open(ctx, sh, false)
		if err != nil {
			return fmt.Errorf("inspect: %s: %w", sh.url, err)
		}
		var i int64
		for _, rg := range f.RowGroups() {
			conv, err := parquet.Convert(sh.cols.scan, rg.Schema())
			if err != nil {
				return fmt.Errorf("inspect: %s: %w", sh.url, err)
			}
			rows := parquet.ConvertRowGroup(rg, conv).Rows()
			for {
				if err := ctx.Err(); err != nil {
					rows.Close()
					return err
				}
				n, rerr := shards.ReadRows(sh.url, func() (int, error) { return rows.ReadRows(buf) })
				for _, row := range buf[:n] {
					r = scanRow{}
					if err := sh.cols.scan.Reconstruct(&r, row); err != nil {
						rows.Close()
						return fmt.Errorf("inspect: %s row %d: %w", sh.url, i, err)
					}
					if err := fn(sh, i, &r); err != nil {
						rows.Close()
						return err
					}
					i++
				}
				if errors.Is(rerr, io.EOF) {
					break
				}
				if rerr != nil {
					rows.Close()
					return fmt.Errorf("inspect: %s is corrupt at row %d: %w", sh.url, i, rerr)
				}
			}
			rows.Close()
		}
	}
	return nil
}

// readImages reads the images of the picks, shard by shard in row order,
// opening each shard once (range reads of its page index and of the image
// pages that hold the picked rows; no other column is touched).
func (s *source) readImages(ctx context.Context, picks []*pick) error {
	order := slices.Clone(picks)
	slices.SortFunc(order, func(a, b *pick) int { return cmp.Compare(a.global, b.global) })
	var cur *shard
	var f *parquet.File
	for _, p := range order {
		if p.shard != cur {
			cur = p.shard
			var err error
			if f, err = s.open(ctx, cur, true); err != nil {
				return fmt.Errorf("inspect: %s: %w", cur.url, err)
			}
		}
		img, err := readImage(f, cur, p.index)
		if err != nil {
			return err
		}
		p.image = img
	}
	return nil
}

// readImage reads the image of row i of sh from its open file f.
func readImage(f *parquet.File, sh *shard, i int64) (shards.Image, error) {
	var img shards.Image
	start := int64(0)
	for _, rg := range f.RowGroups() {
		n := rg.NumRows()
		if i >= start+n {
			start += n
			continue
		}
		conv, err := parquet.Convert(sh.cols.image, rg.Schema())
		if err != nil {
			return img, fmt.Errorf("inspect: %s: %w", sh.url, err)
		}
		rows := parquet.ConvertRowGroup(rg, conv).Rows()
		defer rows.Close()
		if err := rows.SeekToRow(i - start); err != nil {
			return img, fmt.Errorf("inspect: %s: seek to row %d: %w", sh.url, i, err)
		}
		buf := make([]parquet.Row, 1)
		if k, err := shards.ReadRows(sh.url, func() (int, error) { return rows.ReadRows(buf) }); k != 1 {
			return img, fmt.Errorf("inspect: %s: read row %d: %v", sh.url, i, err)
		}
		var r imageRow
		if err := sh.cols.image.Reconstruct(&r, buf[0]); err != nil {
			return img, fmt.Errorf("inspect: %s row %d: %w", sh.url, i, err)
		}
		r.Image.Bytes = slices.Clone(r.Image.Bytes)
		return r.Image, nil
	}
	return img, fmt.Errorf("inspect: %s has no row %d", sh.url, i)
}

// spread picks n of total rows evenly: the middle row of each of n equal
// parts, so the same shard always gives the same samples.
func spread(total int64, n int) []int64 {
	if n <= 0 || total <= 0 {
		return nil
	}
	if int64(n) >= total {
		out := make([]int64, total)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = (int64(2*i+1) * total) / int64(2*n)
	}
	return out
}

// rejectTally is the rejects of all shards by reason.
type rejectTally struct {
	reasons map[string]*reasonTally
	// problems are rejects files that could not be read.
	problems []string
}

type reasonTally struct {
	reason   string
	stages   map[string]int64
	count    int64 // rows in the rejects files
	stats    int64 // from the stats files
	examples []shards.Reject
}

// maxExamples is how many rejects the report shows of each reason.
const maxExamples = 3

func (t *rejectTally) get(reason string) *reasonTally {
	rt := t.reasons[reason]
	if rt == nil {
		rt = &reasonTally{reason: reason, stages: map[string]int64{}}
		t.reasons[reason] = rt
	}
	return rt
}

// readRejects reads every shard's NNNNN_rejects.parquet, counting by reason
// and keeping the first few of each, and adds the stats files' counts.
func (s *source) readRejects(ctx context.Context) *rejectTally {
	t := &rejectTally{reasons: map[string]*reasonTally{}}
	for _, sh := range s.shards {
		if sh.stats != nil {
			for reason, n := range sh.stats.Reasons {
				t.get(reason).stats += n
			}
		}
		if err := s.readShardRejects(ctx, sh, t); err != nil {
			t.problems = append(t.problems, err.Error())
		}
	}
	return t
}

func (s *source) readShardRejects(ctx context.Context, sh *shard, t *rejectTally) error {
	name := shards.RejectsName(sh.id)
	attrs, err := s.dir.Attributes(ctx, name)
	if err != nil {
		if sh.stats != nil && sh.stats.Rejected > 0 {
			return fmt.Errorf("%s: missing (its stats count %d rejects)", name, sh.stats.Rejected)
		}
		return nil
	}
	f, err := shards.OpenParquet(shardReader(ctx, s.dir, name), attrs.Size, false)
	if err != nil {
		return fmt.Errorf("%s: not a readable Parquet file: %v", name, err)
	}
	for _, rg := range f.RowGroups() {
		r := parquet.NewGenericRowGroupReader[shards.Reject](rg)
		buf := make([]shards.Reject, 64)
		for {
			n, rerr := shards.ReadRows(name, func() (int, error) { return r.Read(buf) })
			for _, rej := range buf[:n] {
				rt := t.get(rej.Reason)
				rt.count++
				rt.stages[rej.Stage]++
				if len(rt.examples) < maxExamples {
					rej.Caption = cut(rej.Caption, 200)
					rej.Detail = cut(rej.Detail, 300)
					rt.examples = append(rt.examples, rej)
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				r.Close()
				return fmt.Errorf("%s: %v", name, rerr)
			}
		}
		r.Close()
	}
	return nil
}

// cut shortens s to at most n bytes on a rune boundary, with an ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n]) + "…"
}
