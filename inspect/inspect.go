// Package inspect writes one self-contained HTML report on kediff training
// shards, for looking at the data before training on it.
//
// For each shown sample the report has the stored image with every
// detection drawn (kept ones solid in KeptColor, dropped ones dashed in
// DroppedColor, each with its label and score) and the loss mask tinted on
// the latent grid (MaskColor), the original and generated captions, the final
// prompt with its source, the words coloured by POS class with the keywords
// marked, and the special text. For the shards: counts, histograms of
// caption length, objects per image, keyword ratio and loss-mask coverage,
// the image sizes, and the reject reasons with example rejects (from the
// NNNNN_rejects.parquet and NNNNN_stats.json files). Charts are drawn by
// package plots.
//
// Everything is inline (images as data: URIs, CSS in the page) and the page
// forbids itself any fetch (Content-Security-Policy default-src 'none'), so
// it opens from disk, offline, and can be mailed.
//
// The rows are streamed: one pass reads every column but the image and
// latent bytes, row group by row group, and a second reads only the shown
// samples' images. Memory does not grow with the rows (see MaxValues), and
// the report's size grows with the shown samples only.
//
//	sum, err := inspect.WriteFile(ctx, "out/sample", "report.html", inspect.Options{Sample: 50})
package inspect

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // stored images in any format preprocess keeps
	_ "image/jpeg"
	"image/png"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/kediff/kediff/shards"
	"gocloud.dev/blob"
	_ "golang.org/x/image/webp"
)

// DefaultSample is how many samples a report shows when Options.Sample is 0.
const DefaultSample = 50

// Options choose what the report shows.
type Options struct {
	// Keys are the samples to show, in this order. Each must be in the
	// shards. Empty: Sample samples spread evenly over the rows.
	Keys []string
	// Sample is how many samples to show when Keys is empty (0:
	// DefaultSample; negative: none).
	Sample int
	// PNGDir, if set, receives each shown sample's overlay as KEY.png (the
	// key with characters other than letters, digits, '.', '_' and '-'
	// replaced by '_'): the same pixels as in the report. A folder URL or path.
	PNGDir string
	// maxValues overrides MaxValues (tests).
	maxValues int
}

// Summary is what a report covered.
type Summary struct {
	Shards  int
	Rows    int64
	Rejects int64
	Shown   int
	// Absent names the columns the report could not show (no shard has them).
	Absent []string
	// PNGs lists the overlay files written to Options.PNGDir.
	PNGs []string
}

// WriteFile writes the report on shardURL to outURL (a path or blob URL). A
// failed report leaves no file behind.
func WriteFile(ctx context.Context, shardURL, outURL string, opt Options) (Summary, error) {
	u, err := shards.NormalizeURL(outURL)
	if err != nil {
		return Summary{}, fmt.Errorf("inspect: --output: %w", err)
	}
	dirURL, name, err := splitParent(u)
	if err != nil || name == "" {
		return Summary{}, fmt.Errorf("inspect: --output %s: want a file name (report.html)", outURL)
	}
	dir, err := shards.OpenDir(ctx, dirURL, true)
	if err != nil {
		return Summary{}, fmt.Errorf("inspect: --output %s: %w", outURL, err)
	}
	defer dir.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := dir.NewWriter(wctx, name, &blob.WriterOptions{ContentType: "text/html; charset=utf-8"})
	if err != nil {
		return Summary{}, fmt.Errorf("inspect: --output %s: %w", outURL, err)
	}
	sum, err := Write(ctx, shardURL, w, opt)
	if err != nil {
		cancel() // the blob write is abandoned: nothing appears
		w.Close()
		return sum, err
	}
	if err := w.Close(); err != nil {
		return sum, fmt.Errorf("inspect: write %s: %w", outURL, err)
	}
	return sum, nil
}

// Write writes the report on the shards at shardURL (a folder of
// NNNNN.parquet files, or one of them) to w.
func Write(ctx context.Context, shardURL string, w io.Writer, opt Options) (Summary, error) {
	src, err := openSource(ctx, shardURL)
	if err != nil {
		return Summary{}, err
	}
	defer src.close()
	maxValues := MaxValues
	if opt.maxValues > 0 {
		maxValues = opt.maxValues
	}

	// Which rows to show: by key, or spread over all rows.
	total := src.rows()
	var picks []*pick
	byIndex := map[int64]*pick{}
	byKey := map[string][]*pick{}
	if len(opt.Keys) > 0 {
		for _, k := range opt.Keys {
			p := &pick{key: k}
			picks = append(picks, p)
			byKey[k] = append(byKey[k], p)
		}
	} else {
		n := opt.Sample
		if n == 0 {
			n = DefaultSample
		}
		for _, i := range spread(total, n) {
			p := &pick{global: i}
			picks = append(picks, p)
			byIndex[i] = p
		}
	}

	t := newTally(maxValues)
	var firstKeys []string
	err = src.scanRows(ctx, func(sh *shard, i int64, r *scanRow) error {
		t.add(r, sh.cols)
		if len(firstKeys) < 3 {
			firstKeys = append(firstKeys, r.Key)
		}
		var ps []*pick
		if p := byIndex[sh.first+i]; p != nil {
			ps = append(ps, p)
		}
		for _, p := range byKey[r.Key] {
			if p.shard == nil {
				ps = append(ps, p)
			}
		}
		for _, p := range ps {
			p.shard, p.index, p.global = sh, i, sh.first+i
			p.row = *r
			p.row.LossMask = slices.Clone(r.LossMask)
		}
		if len(ps) > 0 {
			// A key seen once is not looked for again.
			delete(byKey, r.Key)
		}
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	if err := missingKeys(src, picks, firstKeys, total); err != nil {
		return Summary{}, err
	}

	if err := src.readImages(ctx, picks); err != nil {
		return Summary{}, err
	}
	rej := src.readRejects(ctx)
	rep, err := newReport(src, t, rej, opt, len(picks))
	if err != nil {
		return Summary{}, err
	}

	var pngDir *blob.Bucket
	if opt.PNGDir != "" {
		if pngDir, err = shards.OpenDir(ctx, opt.PNGDir, true); err != nil {
			return Summary{}, fmt.Errorf("inspect: --png %s: %w", opt.PNGDir, err)
		}
		defer pngDir.Close()
	}
	sum := Summary{Shards: len(src.shards), Rows: t.rows, Rejects: rep.rejected, Absent: rep.absent}
	used := map[string]bool{}
	for n, p := range picks {
		sv, overlay := newSampleView(n, p)
		p.image = shards.Image{}
		if pngDir != nil && overlay != nil {
			name := pngName(p.row.Key, used)
			if err := pngDir.WriteAll(ctx, name, overlay, &blob.WriterOptions{ContentType: "image/png"}); err != nil {
				return Summary{}, fmt.Errorf("inspect: --png %s: write %s: %w", opt.PNGDir, name, err)
			}
			sum.PNGs = append(sum.PNGs, name)
		}
		rep.Samples = append(rep.Samples, sv)
	}
	sum.Shown = len(rep.Samples)
	if err := page.Execute(w, rep); err != nil {
		return Summary{}, fmt.Errorf("inspect: write report: %w", err)
	}
	return sum, nil
}

// pick is one sample to show.
type pick struct {
	key    string // asked for by key
	global int64
	shard  *shard // nil until found
	index  int64  // in its shard
	row    scanRow
	image  shards.Image
}

// missingKeys names the --keys that no shard has.
func missingKeys(src *source, picks []*pick, firstKeys []string, total int64) error {
	var missing []string
	for _, p := range picks {
		if p.shard == nil && p.key != "" {
			missing = append(missing, fmt.Sprintf("%q", p.key))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	what := "key"
	if len(missing) > 1 {
		what = "keys"
	}
	example := "it has no rows"
	if len(firstKeys) > 0 {
		example = "its keys look like " + strings.Join(quoteAll(firstKeys), ", ")
	}
	return fmt.Errorf("inspect: %s %s not in %s (%d rows in %d shards; %s); run without --keys to see a spread of samples with their keys, or list them with: duckdb -c \"SELECT key FROM '%s'\"",
		what, strings.Join(missing, ", "), src.url, total, len(src.shards), example, duckdbGlob(src))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// duckdbGlob is a DuckDB path for the shards' rows.
func duckdbGlob(src *source) string {
	p := strings.TrimPrefix(src.dirURL, "file://")
	if u, err := url.Parse(src.dirURL); err == nil && u.Scheme == "file" {
		p = u.Path // unescaped, as DuckDB wants a path
	}
	if len(src.shards) == 1 {
		return strings.TrimRight(p, "/") + "/" + src.shards[0].name
	}
	return strings.TrimRight(p, "/") + "/*[0-9].parquet"
}

// overlayPNG decodes a stored image and draws its overlay as PNG bytes.
func overlayPNG(img shards.Image, r *scanRow) ([]byte, image.Point, error) {
	m, _, err := image.Decode(bytes.NewReader(img.Bytes))
	if err != nil {
		return nil, image.Point{}, err
	}
	o := drawOverlay(m, r.LossMask, r.LossMaskShape, r.Objects)
	var buf bytes.Buffer
	if err := png.Encode(&buf, o); err != nil {
		return nil, image.Point{}, err
	}
	return buf.Bytes(), o.Bounds().Size(), nil
}

// pngName is a sample's overlay file name: its key made safe as a file name,
// unique among the names used so far.
func pngName(key string, used map[string]bool) string {
	b := []byte(key)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	base := strings.TrimLeft(string(b), ".")
	if base == "" {
		base = "_"
	}
	name := base + ".png"
	for n := 2; used[name]; n++ {
		name = fmt.Sprintf("%s-%d.png", base, n)
	}
	used[name] = true
	return name
}
