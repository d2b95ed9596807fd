package inspect

import (
	"fmt"
	"html/template"
	"image/color"
	"maps"
	"slices"
	"strings"

	"github.com/kediff/kediff/pos"
	"github.com/kediff/kediff/shards"
)

// Page layout, in CSS pixels. The header (title, URL, summary, links and the
// legends, one line each) has a fixed height and the samples come right
// after it, so the first sample's overlay is always at overlayX, overlayY
// of the page, whatever the fonts: the screenshot test relies on it. The
// shard-wide part follows the samples.
const (
	pageMargin = 24
	headerH    = 200
	samplesGap = 16
	cardBorder = 1
	cardPad    = 12

	overlayX = pageMargin + cardBorder + cardPad
	overlayY = headerH + samplesGap + cardBorder + cardPad
)

// report is the page's data.
type report struct {
	URL            string
	Shards         []shardLine
	ManyShards     bool
	Totals         []kv
	Counts         []kv
	Notes          []string
	Charts         []chart
	Rejects        []rejectLine
	RejectNotes    []string
	SampleNote     string
	Headline       string
	Rows           int64
	Samples        []sampleView
	POS            []posLegend
	Kept, Dropped  string // CSS colours
	Mask, MaskText string
	CSS            template.CSS

	rejected int64
	absent   []string
}

type kv struct{ K, V string }

// maxShardLines is how many complete shards the shard table lists; the
// incomplete and inconsistent ones are always listed.
const maxShardLines = 100

type shardLine struct {
	ID, Rows, Rejects, Read, Status string
}

type rejectLine struct {
	Reason, Stages string
	Count, Stats   string
	Mismatch       bool
	Examples       []shards.Reject
}

type posLegend struct {
	Name, Token, Class, Description string
	Keyword                         bool
}

// sampleView is one sample card.
type sampleView struct {
	N                      int
	Key, Shard, Source     string
	Row                    int64
	Overlay                template.URL
	W, H                   int
	ImageNote              string
	Size                   string
	Caption, Prompt        string
	PromptSource           string
	Generated              string
	GeneratedNote          string
	Words                  []wordView
	WordsNote              string
	SpecialText            string
	SpecialNote            string
	Objects                []objectView
	ObjectsNote            string
	Mask                   string
	TextK, VisualK, Latent string
}

type wordView struct {
	Text, Class, Title string
	Keyword            bool
}

type objectView struct {
	Label, Score, Box string
	Kept              bool
}

// newReport lays out the shard-wide part of the page.
func newReport(src *source, t *tally, rej *rejectTally, opt Options, shown int) (*report, error) {
	rep := &report{URL: src.url, ManyShards: len(src.shards) > 1,
		Kept: cssColor(KeptColor), Dropped: cssColor(DroppedColor), Mask: cssColor(MaskColor),
		MaskText: fmt.Sprintf("%s at %d/255", cssColor(MaskColor), MaskAlpha)}
	rep.CSS = template.CSS(fmt.Sprintf(css, pageMargin, cardBorder, cardPad, headerH, samplesGap) + posCSS())

	var read, written, statsRej int64
	allStats := true
	omitted := 0
	for i, sh := range src.shards {
		line := shardLine{ID: sh.id, Rows: fmt.Sprint(sh.rows), Read: "–", Rejects: "–", Status: "complete"}
		if sh.stats != nil {
			line.Read, line.Rejects = fmt.Sprint(sh.stats.Read), fmt.Sprint(sh.stats.Rejected)
			read += sh.stats.Read
			written += sh.stats.Written
			statsRej += sh.stats.Rejected
			if sh.stats.Written != sh.rows {
				line.Status = fmt.Sprintf("stats say %d rows", sh.stats.Written)
			}
		} else {
			allStats = false
			line.Status = "no stats file (incomplete)"
		}
		if i >= maxShardLines && line.Status == "complete" {
			omitted++
			continue
		}
		rep.Shards = append(rep.Shards, line)
	}
	if omitted > 0 {
		rep.Shards = append(rep.Shards, shardLine{ID: "…", Status: fmt.Sprintf("%d more complete shards", omitted)})
	}
	var rejRows int64
	for _, rt := range rej.reasons {
		rejRows += rt.count
	}
	rep.rejected = max(rejRows, statsRej)

	rows := t.rows
	rep.Rows = rows
	rep.Totals = []kv{
		{"shards", fmt.Sprint(len(src.shards))},
		{"rows", fmt.Sprint(rows)},
		{"rejected", fmt.Sprintf("%d (rejects files), %d (stats files)", rejRows, statsRej)},
	}
	if allStats && read > 0 {
		rep.Totals = append(rep.Totals, kv{"read (stats)", fmt.Sprintf("%d = %d written + %d rejected", read, written, statsRej)})
	}
	has := func(name string) bool {
		return slices.ContainsFunc(src.shards, func(sh *shard) bool { return sh.cols.has[name] })
	}
	count := func(name string, n int64, what string) kv {
		if !has(name) {
			return kv{what, "column absent"}
		}
		return kv{what, fmt.Sprintf("%d (%s)", n, percent(n, rows))}
	}
	rep.Counts = []kv{
		count("words", t.withWords, "rows with words (POS stage)"),
		count("text_knowledge", t.textKnowledge, "text_knowledge (special text)"),
		count("objects", t.withObjects, "rows with detections"),
		count("visual_knowledge", t.visualKnowledge, "visual_knowledge (detector ran)"),
		count("loss_mask", t.withMask, "rows with a loss mask"),
		count("generated_caption", t.withGenerated, "rows with a generated caption"),
		count("latent", t.latents, "rows with a latent"),
	}
	if has("objects") {
		rep.Counts = append(rep.Counts, kv{"detections", fmt.Sprintf("%d kept, %d dropped", t.kept, t.dropped)})
	}
	if has("prompt_source") {
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(t.sources)) {
			name := s
			if name == "" {
				name = `""`
			}
			parts = append(parts, fmt.Sprintf("%s %d (%s)", name, t.sources[s], percent(t.sources[s], rows)))
		}
		rep.Counts = append(rep.Counts, kv{"prompt_source", strings.Join(parts, ", ")})
	}

	// What the report cannot show, and why.
	for _, c := range optionalColumns {
		if !has(c.name) {
			rep.absent = append(rep.absent, c.name)
			rep.Notes = append(rep.Notes, fmt.Sprintf("No shard has the %s column: %s cannot be shown.", c.name, c.what))
		} else if n := countMissing(src, c.name); n > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d shards lack the %s column (%s).", n, len(src.shards), c.name, c.what))
		}
	}
	for _, sh := range src.shards {
		for _, c := range sh.cols.odd {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Shard %s has a %s column of another type than kediff writes: left out.", sh.id, c))
		}
	}
	if has("objects") && t.visualKnowledge == 0 && t.withObjects == 0 && rows > 0 {
		rep.Notes = append(rep.Notes, "No row has detections: the detect stage did not run (or found nothing).")
	}
	if has("loss_mask") && t.withMask == 0 && rows > 0 {
		rep.Notes = append(rep.Notes, "No row has a loss mask: the detect stage did not run, or kept no object.")
	}
	if has("generated_caption") && t.withGenerated == 0 && rows > 0 {
		rep.Notes = append(rep.Notes, "No row has a generated caption: the captioner did not run.")
	}
	if len(src.incomplete) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Shards without a stats file (a run still going, or killed; kediff preprocess redoes them): %s.",
			listSome(src.incomplete, 20)))
	}
	if rows == 0 {
		rep.Notes = append(rep.Notes, "The shards have no rows: every sample was rejected (see the reasons below), or the input was empty.")
	}

	var err error
	if rep.Charts, err = charts(t, rej); err != nil {
		return nil, err
	}
	for _, rt := range rej.sorted() {
		l := rejectLine{Reason: rt.reason, Count: fmt.Sprint(rt.count), Stats: fmt.Sprint(rt.stats),
			Mismatch: rt.count != rt.stats && allStats, Examples: rt.examples}
		var stages []string
		for _, s := range slices.Sorted(maps.Keys(rt.stages)) {
			stages = append(stages, fmt.Sprintf("%s %d", s, rt.stages[s]))
		}
		l.Stages = strings.Join(stages, ", ")
		rep.Rejects = append(rep.Rejects, l)
	}
	rep.RejectNotes = rej.problems

	switch {
	case len(opt.Keys) > 0:
		rep.SampleNote = fmt.Sprintf("The %d samples asked for by key.", len(opt.Keys))
	case int64(shown) == rows:
		rep.SampleNote = fmt.Sprintf("All %d rows.", rows)
	default:
		rep.SampleNote = fmt.Sprintf("%d of %d rows, spread evenly over the shards (the middle row of each of %d equal parts); "+
			"--sample N shows more or fewer, --keys K,... given ones.", shown, rows, shown)
	}
	rep.Headline = fmt.Sprintf("%s · %s · %d rejected", plural(len(src.shards), "shard"), plural(int(rows), "row"), rep.rejected)
	if len(rep.absent) > 0 {
		rep.Headline += " · absent columns: " + strings.Join(rep.absent, ", ")
	}
	if len(rep.Notes) > 0 {
		rep.Headline += fmt.Sprintf(" · %d notes under Shards", len(rep.Notes))
	}
	for _, c := range pos.Classes {
		rep.POS = append(rep.POS, posLegend{Name: c.Name, Token: c.Token, Class: "pos-" + c.Name,
			Description: c.Description, Keyword: c.Keyword})
	}
	return rep, nil
}

func countMissing(src *source, name string) int {
	n := 0
	for _, sh := range src.shards {
		if !sh.cols.has[name] {
			n++
		}
	}
	return n
}

// newSampleView reads a sample's image, draws its overlay and lays out its
// card from its row and image. It returns the overlay's PNG bytes (nil
// when there is no image).
func newSampleView(n int, p *pick) (sampleView, []byte) {
	r, cols := &p.row, p.shard.cols
	sv := sampleView{N: n, Key: r.Key, Shard: p.shard.id, Row: p.index, Source: r.Source,
		Caption: r.Caption, Prompt: r.Prompt, PromptSource: r.PromptSource}
	img := p.image
	var overlay []byte
	switch {
	case len(img.Bytes) == 0:
		sv.ImageNote = "no image stored in this row"
	default:
		png, size, err := overlayPNG(img, r)
		if err != nil {
			sv.ImageNote = fmt.Sprintf("the stored image (%s, %d bytes) does not decode: %v", img.Path, len(img.Bytes), err)
			break
		}
		overlay = png
		sv.Overlay = dataURL("image/png", png)
		sv.W, sv.H = size.X, size.Y
	}
	if cols.has["width"] {
		sv.Size = fmt.Sprintf("%d×%d stored", r.Width, r.Height)
		if r.OriginalWidth != 0 && (r.OriginalWidth != r.Width || r.OriginalHeight != r.Height) {
			sv.Size += fmt.Sprintf(", %d×%d original", r.OriginalWidth, r.OriginalHeight)
		}
		if sv.W != 0 && sv.W != int(r.Width) {
			sv.Size += fmt.Sprintf(", shown at %d×%d", sv.W, sv.H)
		}
	}
	switch {
	case !cols.has["generated_caption"]:
		sv.GeneratedNote = "column absent"
	case r.GeneratedCaption == nil:
		sv.GeneratedNote = "none (the captioner did not run on this sample)"
	default:
		sv.Generated = *r.GeneratedCaption
	}
	switch {
	case !cols.has["words"]:
		sv.WordsNote = "column absent"
	case len(r.Words) == 0:
		sv.WordsNote = "none"
	default:
		if len(r.POS) != len(r.Words) || len(r.Keyword) != len(r.Words) {
			sv.WordsNote = fmt.Sprintf("%d words but %d POS classes and %d keyword flags: shown uncoloured", len(r.Words), len(r.POS), len(r.Keyword))
		}
		for i, w := range r.Words {
			wv := wordView{Text: w, Class: "pos-unknown"}
			if sv.WordsNote == "" {
				wv.Class, wv.Keyword = "pos-"+r.POS[i], r.Keyword[i]
				if !slices.ContainsFunc(pos.Classes, func(c pos.Class) bool { return c.Name == r.POS[i] }) {
					wv.Class = "pos-unknown"
				}
				wv.Title = r.POS[i]
				if i < len(r.POSRaw) {
					wv.Title += " (" + r.POSRaw[i] + ")"
				}
				if wv.Keyword {
					wv.Title += ", keyword"
				}
			}
			sv.Words = append(sv.Words, wv)
		}
	}
	switch {
	case !cols.has["special_text"]:
		sv.SpecialNote = "column absent"
	case r.SpecialText == "":
		sv.SpecialNote = "none (not selected for textual knowledge)"
	default:
		sv.SpecialText = r.SpecialText
	}
	switch {
	case !cols.has["objects"]:
		sv.ObjectsNote = "column absent"
	case len(r.Objects) == 0 && r.VisualKnowledge:
		sv.ObjectsNote = "none found"
	case len(r.Objects) == 0:
		sv.ObjectsNote = "none (the detector did not run on this sample)"
	}
	for _, o := range r.Objects {
		l := o.Label
		if o.LabelZh != "" && o.LabelZh != o.Label {
			l += " / " + o.LabelZh
		}
		sv.Objects = append(sv.Objects, objectView{Label: l, Score: fmt.Sprintf("%.2f", o.Score), Kept: o.Kept,
			Box: fmt.Sprintf("%.3f, %.3f – %.3f, %.3f", o.X0, o.Y0, o.X1, o.Y1)})
	}
	switch rows, cols2, ok := maskGrid(r.LossMask, r.LossMaskShape); {
	case !cols.has["loss_mask"]:
		sv.Mask = "column absent"
	case ok:
		k := 0
		for _, b := range r.LossMask {
			if b != 0 {
				k++
			}
		}
		sv.Mask = fmt.Sprintf("%d of %d×%d cells weighted (%s)", k, rows, cols2, percent(int64(k), int64(rows*cols2)))
	case len(r.LossMask) > 0:
		sv.Mask = fmt.Sprintf("%d bytes that do not fit its shape %v: not drawn", len(r.LossMask), r.LossMaskShape)
	default:
		sv.Mask = "none"
	}
	sv.TextK, sv.VisualK = yesNo(r.TextKnowledge), yesNo(r.VisualKnowledge)
	switch {
	case !cols.has["latent"]:
		sv.Latent = "column absent"
	case len(r.LatentShape) > 0:
		sv.Latent = fmt.Sprintf("%v", r.LatentShape)
		if r.LatentDType != nil {
			sv.Latent += " " + *r.LatentDType
		}
	default:
		sv.Latent = "none"
	}
	return sv, overlay
}

// listSome joins the first n of ss, saying how many more there are.
func listSome(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ss[:n], ", "), len(ss)-n)
}

// plural is "1 shard", "2 shards".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cssColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// posColors are the words' background colours by POS class: stronger for
// the keyword classes, pale for the rest.
var posColors = map[string]string{
	"noun": "#ffb3b3", "verb": "#b3f0c0", "adjective": "#b3d4ff", "numeral": "#ffd9a8",
	"quantifier": "#e0c2ff", "pronoun": "#fff09e", "adverb": "#dfeedd", "preposition": "#e3ecf7",
	"conjunction": "#f5e1e0", "particle": "#ece3f0", "locality": "#f7f0d8", "time": "#dcf1f1",
	"punctuation": "#ededed", "other": "#f4f4f4",
}

func posCSS() string {
	var b strings.Builder
	for _, c := range pos.Classes {
		col := posColors[c.Name]
		if col == "" {
			col = "#f4f4f4"
		}
		fmt.Fprintf(&b, ".pos-%s{background:%s}\n", c.Name, col)
	}
	b.WriteString(".pos-unknown{background:#fff;outline:1px dashed #999}\n")
	return b.String()
}

const css = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;color:#1d1d1f;background:#fff}
header{height:%[4]dpx;overflow:hidden;padding:10px %[1]dpx 0;border-bottom:1px solid #ddd;background:#fafafa}
header h1{font-size:20px;line-height:30px;height:30px;margin:0;white-space:nowrap;overflow:hidden}
header .line{height:22px;line-height:22px;margin:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
header .legend{height:22px;line-height:22px;margin:0;padding:0;font-size:13px;white-space:nowrap;overflow:hidden}
header .legend.words{height:44px;white-space:normal}
.legend li{display:inline-block;margin:0 12px 0 0;list-style:none}
.legend span.sw{display:inline-block;width:14px;height:14px;vertical-align:-2px;margin-right:4px;border:1px solid #333}
main{padding:%[5]dpx %[1]dpx 40px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:0 0 4px;word-break:break-all}
.url{font-family:ui-monospace,Menlo,Consolas,monospace;color:#555}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}
.num{text-align:right;font-variant-numeric:tabular-nums}
.notes li{color:#8a5a00}
.bad{color:#b00020;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts img{border:1px solid #eee}
.ex{font-size:12px;color:#444}
.ex code{font-size:12px}
.sample{display:flex;gap:16px;align-items:flex-start;border:%[2]dpx solid #ccc;padding:%[3]dpx;margin:0 0 16px}
.sample>img.overlay{display:block;flex:none;margin:0}
.sample .noimg{width:256px;height:256px;flex:none;background:#f3f3f3;color:#8a5a00;padding:12px}
.info{min-width:0;flex:1}
.info dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
.info dt{color:#666}
.info dd{margin:0;word-break:break-word}
.none{color:#999;font-style:italic}
.words span{padding:1px 1px;margin:0 1px 0 0;border-radius:2px;white-space:pre-wrap}
.words span.kw,.legend span.kw{font-weight:700;text-decoration:underline;text-decoration-thickness:2px}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.kept{color:#007a1f;font-weight:600}
.dropped{color:#b0008a}
.src{font-size:12px;color:#666;word-break:break-all}
`

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kediff inspect: {{.URL}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<header>
<h1>kediff inspect</h1>
<p class="line url" title="{{.URL}}">{{.URL}}</p>
<p class="line" title="{{.Headline}}">{{.Headline}}</p>
<nav class="line"><a href="#samples">samples</a><a href="#shards">shards and notes</a><a href="#charts">distributions</a><a href="#rejects">rejects</a></nav>
<p class="line" title="{{.SampleNote}}">Samples: {{.SampleNote}}</p>
<ul class="legend">
<li><span class="sw" style="background:{{.Kept}}"></span>kept detection (solid)</li>
<li><span class="sw" style="background:{{.Dropped}}"></span>dropped detection (dashed)</li>
<li><span class="sw" style="background:{{.Mask}};opacity:.45"></span>loss-mask cell ({{.MaskText}} over the image, on the latent grid)</li>
<li>keywords: <span class="kw">bold, underlined</span></li>
</ul>
<ul class="legend words">{{range .POS}}<li><span class="{{.Class}}{{if .Keyword}} kw{{end}}" title="{{.Description}}">{{.Name}} {{.Token}}</span></li>{{end}}<li><span class="pos-unknown">unknown class</span></li></ul>
</header>
<main>
<section id="samples">
{{range .Samples}}
<div class="sample" id="s{{.N}}">
{{if .Overlay}}<img class="overlay" src="{{.Overlay}}" width="{{.W}}" height="{{.H}}" alt="overlay of {{.Key}}">{{else}}<div class="noimg">{{.ImageNote}}</div>{{end}}
<div class="info">
<h3>{{.Key}}</h3>
<p class="src">shard {{.Shard}}, row {{.Row}}{{if .Source}} · {{.Source}}{{end}}</p>
<dl>
<dt>size</dt><dd>{{if .Size}}{{.Size}}{{else}}<span class="none">width/height absent</span>{{end}}</dd>
<dt>caption</dt><dd>{{.Caption}}</dd>
<dt>generated</dt><dd>{{if .GeneratedNote}}<span class="none">{{.GeneratedNote}}</span>{{else}}{{.Generated}}{{end}}</dd>
<dt>prompt</dt><dd>{{.Prompt}} <span class="src">(source: {{.PromptSource}})</span></dd>
<dt>words</dt><dd class="words">{{range .Words}}<span class="{{.Class}}{{if .Keyword}} kw{{end}}"{{if .Title}} title="{{.Title}}"{{end}}>{{.Text}}</span>{{end}}{{if .WordsNote}} <span class="none">{{.WordsNote}}</span>{{end}}</dd>
<dt>special text</dt><dd>{{if .SpecialNote}}<span class="none">{{.SpecialNote}}</span>{{else}}<span class="mono">{{.SpecialText}}</span>{{end}}</dd>
<dt>objects</dt><dd>{{if .ObjectsNote}}<span class="none">{{.ObjectsNote}}</span>{{end}}{{range .Objects}}<div class="{{if .Kept}}kept{{else}}dropped{{end}}">{{if .Kept}}kept{{else}}dropped{{end}}: {{.Label}} {{.Score}} <span class="src">[{{.Box}}]</span></div>{{end}}</dd>
<dt>loss mask</dt><dd>{{.Mask}}</dd>
<dt>knowledge</dt><dd>text {{.TextK}}, visual {{.VisualK}}</dd>
<dt>latent</dt><dd>{{.Latent}}</dd>
</dl>
</div>
</div>
{{else}}<p class="none">No samples shown{{if not .Rows}}: the shards have no rows{{end}}.</p>
{{end}}
</section>

<h2 id="shards">Shards</h2>
<table>{{range .Totals}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}
{{range .Counts}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table>
{{if .Notes}}<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .ManyShards}}<table><tr><th>shard</th><th>rows</th><th>rejects</th><th>read</th><th>status</th></tr>
{{range .Shards}}<tr><td>{{.ID}}</td><td class="num">{{.Rows}}</td><td class="num">{{.Rejects}}</td><td class="num">{{.Read}}</td><td>{{.Status}}</td></tr>
{{end}}</table>{{end}}

<h2 id="charts">Distributions</h2>
<div class="charts">{{range .Charts}}<img src="{{.Src}}" width="{{.W}}" height="{{.H}}" alt="{{.Title}}" title="{{.Title}}">{{end}}</div>

<h2 id="rejects">Rejects</h2>
{{if .Rejects}}<table><tr><th>reason</th><th>stage</th><th>rejects files</th><th>stats files</th><th>examples (key, source, detail)</th></tr>
{{range .Rejects}}<tr><td class="mono">{{.Reason}}</td><td>{{.Stages}}</td><td class="num">{{.Count}}</td><td class="num{{if .Mismatch}} bad{{end}}">{{.Stats}}</td>
<td class="ex">{{range .Examples}}<div><code>{{.Key}}</code> <span class="src">{{.Source}}</span>{{if .Detail}}: {{.Detail}}{{end}}</div>{{end}}</td></tr>
{{end}}</table>{{else}}<p class="none">No rejects.</p>{{end}}
{{range .RejectNotes}}<p class="bad">{{.}}</p>{{end}}
</main>
</body>
</html>
`))
