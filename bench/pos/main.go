// Command pos measures the POS stage's throughput per core on Chinese captions next
// to gse's raw Pos and jieba's posseg, on the same text in the same run.
//
// The text is the Chinese column of ViLG-300 repeated to --mb megabytes, one prompt
// per call. The stage runs with fraction 1, so every prompt gets its special text.
// Each Go measurement is the best of --rounds passes, alternating stage and gse, on
// one goroutine; jieba runs once in /usr/bin/python3 (Debian python3-jieba).
//
// Usage (from the repository root):
//
//	go run ./bench/pos [--mb 10] [--jieba-mb 10] [--rounds 3] [--check]
package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-ego/gse"

	"github.com/kediff/kediff/pos"
)

const jiebaScript = `
import json, sys, time
import jieba, jieba.posseg as pseg
jieba.setLogLevel(60)
jieba.initialize()
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
list(pseg.cut(lines[0]))
t0 = time.perf_counter()
words = 0
for l in lines:
    words += len(list(pseg.cut(l)))
dt = time.perf_counter() - t0
print(json.dumps({"bytes": sum(len(l.encode()) for l in lines), "seconds": dt, "words": words, "version": jieba.__version__}))
`

func main() {
	data := flag.String("data", filepath.Join("..", "shared", "data"), "folder holding ViLG-300.csv")
	mb := flag.Float64("mb", 10, "megabytes of captions for the Go measurements")
	jiebaMB := flag.Float64("jieba-mb", 10, "megabytes of the same captions for jieba (a prefix of the Go text)")
	rounds := flag.Int("rounds", 3, "passes per Go measurement; the best counts")
	python := flag.String("python", "/usr/bin/python3", "python with jieba (Debian python3-jieba)")
	check := flag.Bool("check", false, "exit 1 when the stage is below 20x jieba or 80% of gse's raw Pos")
	flag.Parse()
	if err := run(*data, *mb, *jiebaMB, *rounds, *python, *check); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pos:", err)
		os.Exit(1)
	}
}

func run(data string, mb, jiebaMB float64, rounds int, python string, check bool) error {
	prompts, err := readPrompts(filepath.Join(data, "ViLG-300.csv"))
	if err != nil {
		return err
	}
	var corpus []string
	size := 0
	for size < int(mb*1e6) {
		for _, p := range prompts {
			corpus = append(corpus, p)
			size += len(p)
		}
	}
	fmt.Printf("text: %d prompts, %.1f MB (ViLG-300 文本 repeated)\n", len(corpus), float64(size)/1e6)

	start := time.Now()
	tagger, err := pos.NewTagger(pos.Config{Fraction: 1})
	if err != nil {
		return err
	}
	fmt.Printf("load: stage %.1fs", time.Since(start).Seconds())
	start = time.Now()
	seg, err := gse.NewEmbed("zh")
	if err != nil {
		return err
	}
	fmt.Printf(", gse %.1fs\n", time.Since(start).Seconds())

	keys := make([]string, len(corpus))
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	stage := func() int {
		words := 0
		for i, p := range corpus {
			words += len(tagger.Analyze(keys[i], p).Words)
		}
		return words
	}
	raw := func() int {
		words := 0
		for _, p := range corpus {
			words += len(seg.Pos(p))
		}
		return words
	}
	var bestStage, bestRaw float64
	var wStage, wRaw int
	for r := 0; r < rounds; r++ {
		s, w := timeIt(stage)
		bestStage, wStage = max(bestStage, float64(size)/1e6/s), w
		s, w = timeIt(raw)
		bestRaw, wRaw = max(bestRaw, float64(size)/1e6/s), w
	}

	jsize := 0
	var jlines []string
	for _, p := range corpus {
		if jsize >= int(jiebaMB*1e6) {
			break
		}
		jlines = append(jlines, p)
		jsize += len(p)
	}
	f, err := os.CreateTemp("", "bench-pos-*.txt")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(strings.Join(jlines, "\n") + "\n"); err != nil {
		return err
	}
	f.Close()
	out, err := exec.Command(python, "-c", jiebaScript, f.Name()).Output()
	if err != nil {
		return fmt.Errorf("jieba in %s: %v (install Debian python3-jieba, or pass --python)", python, err)
	}
	var j struct {
		Bytes   int     `json:"bytes"`
		Seconds float64 `json:"seconds"`
		Words   int     `json:"words"`
		Version string  `json:"version"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return fmt.Errorf("jieba output %q: %v", out, err)
	}
	jieba := float64(j.Bytes) / 1e6 / j.Seconds

	fmt.Printf("stage (tag + classes + keyword + special text): %7.2f MB/s per core  (%d words)\n", bestStage, wStage)
	fmt.Printf("gse raw Pos:                                    %7.2f MB/s per core  (%d words)\n", bestRaw, wRaw)
	fmt.Printf("jieba %s posseg (%.1f MB):                    %7.2f MB/s per core  (%d words)\n", j.Version, float64(j.Bytes)/1e6, jieba, j.Words)
	fmt.Printf("stage / jieba: %.1fx (target >= 20x); stage / gse raw: %.0f%% (target >= 80%%)\n", bestStage/jieba, 100*bestStage/bestRaw)
	if check && (bestStage < 20*jieba || bestStage < 0.8*bestRaw) {
		return fmt.Errorf("below target")
	}
	return nil
}

func timeIt(f func() int) (float64, int) {
	start := time.Now()
	w := f()
	return time.Since(start).Seconds(), w
}

func readPrompts(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%v; the reference data lives in ../shared/data beside the repository (or pass --data)", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	col := -1
	for i, h := range rows[0] {
		if strings.TrimPrefix(h, "\ufeff") == "文本" {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("%s has no column 文本", path)
	}
	var out []string
	for _, r := range rows[1:] {
		// One prompt a line for jieba: newlines inside a prompt become spaces, for all three.
		out = append(out, strings.Join(strings.Fields(strings.ReplaceAll(r[col], "\r", "")), " "))
	}
	return out, nil
}
