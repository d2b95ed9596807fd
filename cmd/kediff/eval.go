package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kediff/kediff/eval/clipscore"
	"github.com/kediff/kediff/eval/fid"
	"github.com/kediff/kediff/eval/geneval"
	"github.com/kediff/kediff/eval/imageset"
	"github.com/kediff/kediff/onnx"
)

func init() {
	register("eval", "score image sets: FID, CLIP score, GenEval-style attribute binding", runEval)
}

// evalMetrics are eval's subcommands, in the order its usage lists them.
var evalMetrics = []struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string) error
}{
	{"fid", "A B --model inception.onnx", "Fréchet Inception Distance between two image sets or .npz statistics", runEvalFID},
	{"clip-score", "SET --image-model I.onnx --text-model T.onnx --tokenizer FILE", "mean CLIP score of images against their prompts", runEvalCLIPScore},
	{"binding", "SET [--detector shapes_yolov8.onnx]", "GenEval-style scores of synth-domain images against their prompts", runEvalBinding},
}

const evalSets = "A set is a kediff sample folder, kediff Parquet shards, WebDataset tars, Parquet files with image bytes or a folder of images (with .txt prompts)."

func evalUsage() {
	fmt.Fprintf(os.Stderr, "usage: kediff eval <metric> [args] [flags]\n\nmetrics:\n")
	for _, m := range evalMetrics {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n  %-11s   kediff eval %s %s\n", m.name, m.summary, "", m.name, m.args)
	}
	fmt.Fprintf(os.Stderr, "\n%s\nRun \"kediff eval <metric> -h\" for a metric's flags.\n", evalSets)
}

func runEval(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		evalUsage()
		return flag.ErrHelp
	}
	for _, m := range evalMetrics {
		if m.name == args[0] {
			return m.run(ctx, args[1:])
		}
	}
	evalUsage()
	return fmt.Errorf("unknown metric %q; want fid, clip-score or binding", args[0])
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments ("eval fid A B --model m"), which flag.Parse alone
// stops at, and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// sessionFlags are the onnxruntime flags every metric takes.
func sessionFlags(fs *flag.FlagSet) func() onnx.SessionOptions {
	threads := fs.Int("threads", 0, "onnxruntime intra-op threads (0: one per core)")
	cuda := fs.Bool("cuda", false, "use the CUDA execution provider (needs a GPU build of onnxruntime)")
	library := fs.String("onnxruntime", "", "onnxruntime shared library (default: $"+onnx.EnvLibrary+", then "+onnx.DefaultLibrary+", then the system's)")
	return func() onnx.SessionOptions {
		return onnx.SessionOptions{Library: *library, IntraOpThreads: *threads, UseCUDA: *cuda}
	}
}

func newEvalFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("eval "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff eval %s %s [flags]\n\n%s\n\nflags:\n", name, args, evalSets)
		fs.PrintDefaults()
	}
	return fs
}

// printJSON writes v as indented JSON to w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if err := printJSON(f, v); err != nil {
		f.Close()
		return fmt.Errorf("--output %s: %w", path, err)
	}
	return f.Close()
}

// finite gives v for JSON, nil (null) when it is NaN or infinite.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// batches streams set in batches of n images with their keys and prompts,
// so that a metric holds one batch of decoded images at a time. prompts,
// when not nil, replace the set's own prompts in order.
func batches(ctx context.Context, set *imageset.Set, n int, prompts []string, fn func(keys []string, imgs []image.Image, prompts []string) error) (int, error) {
	var keys, ps []string
	var imgs []image.Image
	count := 0
	flush := func() error {
		if len(imgs) == 0 {
			return nil
		}
		err := fn(keys, imgs, ps)
		keys, imgs, ps = keys[:0], imgs[:0], ps[:0]
		if err != nil {
			return fmt.Errorf("%s: %w", set.URL(), err)
		}
		return nil
	}
	err := set.Each(ctx, func(it imageset.Item) error {
		p := it.Prompt
		if prompts != nil {
			if count >= len(prompts) {
				return fmt.Errorf("%s has more images than the %d prompts given; give one prompt per line, in set order", set.URL(), len(prompts))
			}
			p = prompts[count]
		}
		count++
		keys, imgs, ps = append(keys, it.Key), append(imgs, it.Image), append(ps, p)
		if len(imgs) == n {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil && prompts != nil && count != len(prompts) {
		err = fmt.Errorf("%s has %d images but %d prompts were given; give one prompt per line, in set order", set.URL(), count, len(prompts))
	}
	return count, err
}

// readPrompts reads a file of one prompt per line.
func readPrompts(file string) ([]string, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--prompts: %w", err)
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if text == "" {
		return nil, fmt.Errorf("--prompts %s is empty; give one prompt per line, in set order", file)
	}
	return strings.Split(text, "\n"), nil
}

// ---- fid ----

// fidSide is one side of an FID: a set or an .npz file, and its statistics.
type fidSide struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`             // "npz" or the set's kind
	Images int    `json:"images,omitempty"` // 0 for .npz files
	Cached bool   `json:"cached,omitempty"` // statistics from --stats-cache
	Stats  string `json:"stats,omitempty"`  // the .npz written by --save-stats
	stats  fid.Stats
}

// fidCacheVersion names the way features and statistics are computed; a
// change to either must change it, so that old cache entries are not used.
const fidCacheVersion = "kediff fid stats v1"

func runEvalFID(ctx context.Context, args []string) error {
	fs := newEvalFlags("fid", "A B --model inception.onnx")
	model := fs.String("model", "", "feature network in pytorch-fid's layout (InceptionV3 pool3 exported to ONNX); needed unless A and B are both .npz")
	batch := fs.Int("batch", 32, "images per model run")
	saveStats := fs.String("save-stats", "", "folder to write each set's statistics to as NAME.npz (pytorch-fid's mu and sigma)")
	cache := fs.String("stats-cache", "", "folder of cached statistics, reused while a set's listing and the model are unchanged")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	session := sessionFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("need two image sets or .npz files, A and B; got %d arguments", len(pos))
	}
	if *batch <= 0 {
		return fmt.Errorf("--batch %d: want a positive batch size", *batch)
	}
	var ext *fid.Extractor
	var modelHash string
	defer func() {
		if ext != nil {
			ext.Close()
		}
	}()
	extractor := func(set string) (*fid.Extractor, string, error) {
		if ext != nil {
			return ext, modelHash, nil
		}
		if *model == "" {
			return nil, "", fmt.Errorf("%s is an image set: give --model inception.onnx to compute its statistics, or its .npz", set)
		}
		h, err := onnx.FileSHA256(*model)
		if err != nil {
			return nil, "", fmt.Errorf("--model: %w", err)
		}
		e, err := fid.NewExtractor(*model, fid.ExtractorOptions{Batch: *batch, Session: session()})
		if err != nil {
			return nil, "", err
		}
		ext, modelHash = e, h
		return ext, modelHash, nil
	}

	sides := make([]*fidSide, 2)
	for i, src := range pos {
		side, err := fidStats(ctx, src, extractor, *cache)
		if err != nil {
			return fmt.Errorf("set %c (%s): %w", 'A'+i, src, err)
		}
		sides[i] = side
	}
	if *saveStats != "" {
		if err := os.MkdirAll(*saveStats, 0o755); err != nil {
			return fmt.Errorf("--save-stats: %w", err)
		}
		names := [2]string{statsName(pos[0]), statsName(pos[1])}
		if names[0] == names[1] {
			names[0], names[1] = "a-"+names[0], "b-"+names[1]
		}
		for i, s := range sides {
			s.Stats = filepath.Join(*saveStats, names[i]+".npz")
			if err := fid.WriteNPZFile(s.Stats, s.stats); err != nil {
				return fmt.Errorf("--save-stats: %w", err)
			}
		}
	}
	d, err := fid.FrechetDistanceFunc(sides[0].stats, sides[1].stats, func(msg string) {
		fmt.Fprintf(os.Stderr, "kediff eval fid: warning: %s\n", msg)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(os.Stdout, struct {
			Metric string   `json:"metric"`
			FID    float64  `json:"fid"`
			Model  string   `json:"model,omitempty"`
			A      *fidSide `json:"a"`
			B      *fidSide `json:"b"`
		}{"fid", d, *model, sides[0], sides[1]})
	}
	fmt.Printf("FID %.6f\n", d)
	for i, s := range sides {
		line := fmt.Sprintf("  %c: %s (%s", 'A'+i, s.Source, s.Kind)
		if s.Images > 0 {
			line += fmt.Sprintf(", %d images", s.Images)
		}
		if s.Cached {
			line += ", statistics from the cache"
		}
		line += ")"
		if s.Stats != "" {
			line += " -> " + s.Stats
		}
		fmt.Println(line)
	}
	return nil
}

// isNPZ reports whether src names a statistics file rather than a set.
func isNPZ(src string) bool { return strings.HasSuffix(strings.ToLower(src), ".npz") }

// fidStats reads an .npz or computes (or takes from the cache) a set's
// statistics.
func fidStats(ctx context.Context, src string, extractor func(string) (*fid.Extractor, string, error), cacheDir string) (*fidSide, error) {
	if isNPZ(src) {
		s, err := fid.ReadNPZFile(src)
		if err != nil {
			return nil, err
		}
		return &fidSide{Source: src, Kind: "npz", stats: s}, nil
	}
	set, err := imageset.Open(ctx, src)
	if err != nil {
		return nil, err
	}
	side := &fidSide{Source: src, Kind: set.Kind().String()}
	e, modelHash, err := extractor(src)
	if err != nil {
		return nil, err
	}
	var entry string
	if cacheDir != "" {
		fp, err := set.Fingerprint(ctx)
		if err != nil {
			return nil, err
		}
		key := sha256.Sum256([]byte(fidCacheVersion + "\n" + fp + "\n" + modelHash))
		entry = filepath.Join(cacheDir, hex.EncodeToString(key[:16]))
		if s, n, ok := readCached(entry); ok {
			side.stats, side.Images, side.Cached = s, n, true
			return side, nil
		}
	}
	var feats []float32
	n, err := batches(ctx, set, e.Batch(), nil, func(_ []string, imgs []image.Image, _ []string) error {
		f, err := e.Features(imgs)
		feats = append(feats, f...)
		return err
	})
	if err != nil {
		return nil, err
	}
	s, err := fid.ComputeStats(feats, n, e.Dim())
	if err != nil {
		return nil, err
	}
	side.stats, side.Images = s, n
	if entry != "" {
		if err := writeCached(entry, s, src); err != nil {
			return nil, fmt.Errorf("--stats-cache: %w", err)
		}
	}
	return side, nil
}

// A cache entry is KEY.npz with KEY.json beside it, written second: an
// entry without its .json is incomplete and ignored.
type cacheMeta struct {
	Source string `json:"source"`
	Images int    `json:"images"`
}

func readCached(entry string) (fid.Stats, int, bool) {
	data, err := os.ReadFile(entry + ".json")
	if err != nil {
		return fid.Stats{}, 0, false
	}
	var m cacheMeta
	if json.Unmarshal(data, &m) != nil {
		return fid.Stats{}, 0, false
	}
	s, err := fid.ReadNPZFile(entry + ".npz")
	if err != nil {
		return fid.Stats{}, 0, false
	}
	s.N = m.Images
	return s, m.Images, true
}

func writeCached(entry string, s fid.Stats, src string) error {
	if err := os.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
		return err
	}
	os.Remove(entry + ".json")
	if err := fid.WriteNPZFile(entry+".npz", s); err != nil {
		return err
	}
	data, _ := json.Marshal(cacheMeta{Source: src, Images: s.N})
	return os.WriteFile(entry+".json", data, 0o644)
}

// statsName is the file name --save-stats gives a set's statistics: the
// last element of its URL, without extension.
func statsName(src string) string {
	base := path.Base(strings.TrimRight(filepath.ToSlash(src), "/"))
	if i := strings.IndexByte(base, '?'); i >= 0 {
		base = base[:i]
	}
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".parquet"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Map(func(r rune) rune {
		if strings.ContainsRune("*?[]{},:/\\", r) {
			return '_'
		}
		return r
	}, base)
	if base == "" || base == "." {
		base = "set"
	}
	return base
}

// ---- clip-score ----

func runEvalCLIPScore(ctx context.Context, args []string) error {
	fs := newEvalFlags("clip-score", "SET --image-model I.onnx --text-model T.onnx --tokenizer FILE")
	imageModel := fs.String("image-model", "", "CLIP image encoder (ONNX, [N,3,R,R] -> [N,E])")
	textModel := fs.String("text-model", "", "CLIP text encoder (ONNX, token ids [N,77] -> [N,E])")
	tokenizer := fs.String("tokenizer", "", "open_clip's bpe_simple_vocab_16e6.txt.gz or a Hugging Face tokenizer.json")
	promptsFile := fs.String("prompts", "", "file of one prompt per line, in set order (default: the set's own prompts)")
	batch := fs.Int("batch", 32, "images per model run")
	output := fs.String("output", "", "write each image's score as JSON lines (key, prompt, clip_score) to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	session := sessionFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *imageModel == "" || *textModel == "" || *tokenizer == "" {
		fs.Usage()
		return fmt.Errorf("need one image set and --image-model, --text-model and --tokenizer")
	}
	if *batch <= 0 {
		return fmt.Errorf("--batch %d: want a positive batch size", *batch)
	}
	prompts, err := readPrompts(*promptsFile)
	if err != nil {
		return err
	}
	set, err := imageset.Open(ctx, pos[0])
	if err != nil {
		return err
	}
	s, err := clipscore.Open(*imageModel, *textModel, *tokenizer, clipscore.Options{Session: session(), BatchSize: *batch})
	if err != nil {
		return err
	}
	defer s.Close()

	var out *bufio.Writer
	if *output != "" {
		f, err := os.Create(*output)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer f.Close()
		out = bufio.NewWriter(f)
	}
	var sum float64
	n, err := batches(ctx, set, *batch, prompts, func(keys []string, imgs []image.Image, ps []string) error {
		for i, p := range ps {
			if strings.TrimSpace(p) == "" {
				return fmt.Errorf("image %s has no prompt; give --prompts FILE with one prompt per line, in set order", keys[i])
			}
		}
		_, per, err := s.Score(imgs, ps)
		if err != nil {
			return err
		}
		for i, v := range per {
			sum += v
			if out != nil {
				line, _ := json.Marshal(struct {
					Key       string  `json:"key"`
					Prompt    string  `json:"prompt"`
					CLIPScore float64 `json:"clip_score"`
				}{keys[i], ps[i], v})
				out.Write(append(line, '\n'))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("--output %s: %w", *output, err)
		}
	}
	mean := sum / float64(n)
	if *asJSON {
		return printJSON(os.Stdout, struct {
			Metric    string  `json:"metric"`
			CLIPScore float64 `json:"clip_score"`
			Images    int     `json:"images"`
			Source    string  `json:"source"`
			Output    string  `json:"output,omitempty"`
		}{"clip-score", mean, n, pos[0], *output})
	}
	fmt.Printf("CLIP score %.4f (%d images of %s)\n", mean, n, pos[0])
	if *output != "" {
		fmt.Printf("per-image scores: %s\n", *output)
	}
	return nil
}

// ---- binding ----

// bindingReport is binding's machine-readable result.
type bindingReport struct {
	Metric     string                  `json:"metric"`
	Source     string                  `json:"source"`
	Images     int                     `json:"images"`
	Overall    *float64                `json:"overall"`
	Categories map[string]bindingTally `json:"categories"`
	Unparsed   int                     `json:"unparsed"`
	Failed     int                     `json:"failed"`
	Examples   []string                `json:"examples"`
	report     geneval.Report
}

type bindingTally struct {
	Passed int      `json:"passed"`
	Total  int      `json:"total"`
	Rate   *float64 `json:"rate"`
}

func runEvalBinding(ctx context.Context, args []string) error {
	fs := newEvalFlags("binding", "SET")
	detector := fs.String("detector", "detect/testdata/shapes_yolov8.onnx", "YOLOv8-layout detector of the synth shapes")
	promptsFile := fs.String("prompts", "", "file of one prompt per line, in set order (default: the set's own prompts)")
	output := fs.String("output", "", "write the result as JSON to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	session := sessionFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("need one image set; got %d arguments", len(pos))
	}
	prompts, err := readPrompts(*promptsFile)
	if err != nil {
		return err
	}
	set, err := imageset.Open(ctx, pos[0])
	if err != nil {
		return err
	}
	c, err := geneval.Open(*detector, geneval.Options{}, session())
	if err != nil {
		return err
	}
	defer c.Close()
	var results []geneval.Result
	_, err = batches(ctx, set, 32, prompts, func(_ []string, imgs []image.Image, ps []string) error {
		res, err := c.Check(imgs, ps)
		for i := range res {
			res[i].Found = nil // the report needs only what passed
		}
		results = append(results, res...)
		return err
	})
	if err != nil {
		return err
	}
	rep := geneval.Summarise(results)
	r := bindingReport{Metric: "binding", Source: pos[0], Images: rep.Images, Overall: finite(rep.Overall()),
		Categories: map[string]bindingTally{}, Unparsed: rep.Unparsed, Failed: rep.Failed, Examples: rep.Examples, report: rep}
	for cat, t := range rep.Categories {
		r.Categories[string(cat)] = bindingTally{t.Passed, t.Total, finite(t.Rate())}
	}
	if r.Examples == nil {
		r.Examples = []string{}
	}
	if *output != "" {
		if err := writeJSONFile(*output, r); err != nil {
			return err
		}
	}
	if *asJSON {
		err = printJSON(os.Stdout, r)
	} else {
		printBinding(os.Stdout, r)
	}
	if err != nil {
		return err
	}
	if r.Overall == nil {
		return fmt.Errorf("%s: no image was scored (%d prompts outside the synth grammar, %d images failed): binding needs prompts like \"a small red circle to the left of a blue star\"; see the examples above",
			pos[0], rep.Unparsed, rep.Failed)
	}
	return nil
}

// printBinding prints GenEval's table: each category's passed/total and
// rate, the overall score, and what could not be scored.
func printBinding(w io.Writer, r bindingReport) {
	fmt.Fprintf(w, "%-14s %8s %6s\n", "category", "passed", "rate")
	for _, cat := range geneval.Categories {
		t, ok := r.report.Categories[cat]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%-14s %8s %6.3f\n", cat, fmt.Sprintf("%d/%d", t.Passed, t.Total), t.Rate())
	}
	if r.Overall != nil {
		fmt.Fprintf(w, "%-14s %8s %6.3f\n", "overall", "", *r.Overall)
	} else {
		fmt.Fprintf(w, "%-14s %8s %6s\n", "overall", "", "n/a")
	}
	fmt.Fprintf(w, "%d images; %d prompts unparsed, %d images failed\n", r.Images, r.Unparsed, r.Failed)
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}
