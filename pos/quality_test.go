package pos

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// sharedData is the reference data beside the repository (../shared/data).
var sharedData = filepath.Join("..", "..", "shared", "data")

func openShared(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedData, name))
	if err != nil {
		t.Fatalf("reference data missing: %v; clone the shared data beside the repository so that ../shared/data/%s exists", err, name)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type goldSentence struct {
	text  string
	words []string
	upos  []string
}

func readCoNLLU(t *testing.T, name string) []goldSentence {
	var out []goldSentence
	var cur goldSentence
	sc := bufio.NewScanner(openShared(t, name))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# text = "):
			cur.text = strings.TrimPrefix(line, "# text = ")
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			if len(cur.words) > 0 {
				out = append(out, cur)
			}
			cur = goldSentence{}
		default:
			cols := strings.Split(line, "\t")
			if len(cols) < 4 || strings.ContainsAny(cols[0], "-.") {
				continue
			}
			cur.words = append(cur.words, cols[1])
			cur.upos = append(cur.upos, cols[3])
		}
	}
	if len(cur.words) > 0 {
		out = append(out, cur)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// scores are the figures of tools/pos/score.py (same names, same rule).
type scores struct {
	KeywordAccuracy   float64 `json:"keyword_accuracy"`
	KeywordPrecision  float64 `json:"keyword_precision"`
	KeywordRecall     float64 `json:"keyword_recall"`
	KeywordF1         float64 `json:"keyword_f1"`
	BoundaryPrecision float64 `json:"boundary_precision"`
	BoundaryRecall    float64 `json:"boundary_recall"`
	BoundaryF1        float64 `json:"boundary_f1"`
	Characters        int     `json:"characters"`
	SentencesSkipped  int     `json:"sentences_skipped"`
}

var keywordUPOS = map[string]bool{"NOUN": true, "PROPN": true, "VERB": true, "ADJ": true, "NUM": true, "PRON": true, "DET": true}

func noSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

type span struct{ a, b int }

// score compares predicted words and keyword flags with the gold annotation, per
// non-whitespace character (keyword) and per word span (boundaries).
func score(gold []goldSentence, words [][]string, keyword [][]bool) scores {
	var tp, fp, fn, tn, bGold, bPred, bBoth, skipped int
	for i, g := range gold {
		var gch []bool
		gsp := map[span]bool{}
		pos := 0
		for j, w := range g.words {
			n := len([]rune(noSpace(w)))
			gsp[span{pos, pos + n}] = true
			for k := 0; k < n; k++ {
				gch = append(gch, keywordUPOS[g.upos[j]])
			}
			pos += n
		}
		var pch []bool
		psp := map[span]bool{}
		pos = 0
		for j, w := range words[i] {
			n := len([]rune(noSpace(w)))
			if n == 0 {
				continue
			}
			psp[span{pos, pos + n}] = true
			for k := 0; k < n; k++ {
				pch = append(pch, keyword[i][j])
			}
			pos += n
		}
		if len(gch) != len(pch) {
			skipped++
			continue
		}
		for k := range gch {
			switch {
			case gch[k] && pch[k]:
				tp++
			case pch[k]:
				fp++
			case gch[k]:
				fn++
			default:
				tn++
			}
		}
		bGold += len(gsp)
		bPred += len(psp)
		for s := range psp {
			if gsp[s] {
				bBoth++
			}
		}
	}
	div := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	f1 := func(p, r float64) float64 {
		if p+r == 0 {
			return 0
		}
		return 2 * p * r / (p + r)
	}
	s := scores{
		KeywordAccuracy: div(tp+tn, tp+fp+fn+tn), KeywordPrecision: div(tp, tp+fp), KeywordRecall: div(tp, tp+fn),
		BoundaryPrecision: div(bBoth, bPred), BoundaryRecall: div(bBoth, bGold),
		Characters: tp + fp + fn + tn, SentencesSkipped: skipped,
	}
	s.KeywordF1 = f1(s.KeywordPrecision, s.KeywordRecall)
	s.BoundaryF1 = f1(s.BoundaryPrecision, s.BoundaryRecall)
	return s
}

// TestQualityAgainstUDAndJieba scores kediff on UD Chinese GSDSimp (dev) next to
// jieba's posseg outputs committed by tools/pos/score.py, and fails when kediff's
// keyword F1 is below jieba's.
func TestQualityAgainstUDAndJieba(t *testing.T) {
	gold := readCoNLLU(t, "zh_gsdsimp-ud-dev.conllu")
	data, err := os.ReadFile(filepath.Join("testdata", "jieba_gsd_dev.json"))
	if err != nil {
		t.Fatalf("%v; run /usr/bin/python3 tools/pos/score.py from the repository root", err)
	}
	var ref struct {
		Sentences int          `json:"sentences"`
		Jieba     scores       `json:"jieba"`
		Outputs   [][][]string `json:"outputs"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("testdata/jieba_gsd_dev.json: %v", err)
	}
	if ref.Sentences != len(gold) || len(ref.Outputs) != len(gold) {
		t.Fatalf("testdata/jieba_gsd_dev.json has %d sentences, the conllu %d; rerun tools/pos/score.py", len(ref.Outputs), len(gold))
	}

	// jieba, scored again here: the Go and Python scorers must agree.
	jw, jk := make([][]string, len(gold)), make([][]bool, len(gold))
	for i, o := range ref.Outputs {
		for _, wt := range o {
			jw[i] = append(jw[i], wt[0])
			jk[i] = append(jk[i], wt[1] != "" && strings.ContainsRune("nvamqr", rune(wt[1][0])))
		}
	}
	js := score(gold, jw, jk)
	if math.Abs(js.KeywordF1-ref.Jieba.KeywordF1) > 1e-9 || math.Abs(js.BoundaryF1-ref.Jieba.BoundaryF1) > 1e-9 {
		t.Fatalf("the Go scorer gives jieba keyword F1 %.6f boundary F1 %.6f, score.py %.6f %.6f: the scorers disagree",
			js.KeywordF1, js.BoundaryF1, ref.Jieba.KeywordF1, ref.Jieba.BoundaryF1)
	}

	tg := tagger(t)
	kw, kk := make([][]string, len(gold)), make([][]bool, len(gold))
	for i, g := range gold {
		r := tg.Analyze("", g.text)
		checkWellFormed(t, g.text, r)
		kw[i], kk[i] = r.Words, r.Keyword
	}
	ks := score(gold, kw, kk)
	t.Logf("jieba:  keyword accuracy %.4f F1 %.4f, boundary F1 %.4f", js.KeywordAccuracy, js.KeywordF1, js.BoundaryF1)
	t.Logf("kediff: keyword accuracy %.4f F1 %.4f, boundary F1 %.4f (%d sentences, %d characters)",
		ks.KeywordAccuracy, ks.KeywordF1, ks.BoundaryF1, len(gold), ks.Characters)
	if ks.SentencesSkipped > 0 {
		t.Errorf("%d sentences did not line up with the gold characters", ks.SentencesSkipped)
	}
	if ks.KeywordF1 < js.KeywordF1 {
		t.Errorf("kediff keyword F1 %.4f is below jieba's %.4f", ks.KeywordF1, js.KeywordF1)
	}
}

// TestViLG300Prompts runs both columns of the ViLG-300 prompts: words concatenate
// back to the prompt, every word has a class, special text is well formed, and
// nouns are found in every Chinese prompt.
func TestViLG300Prompts(t *testing.T) {
	r := csv.NewReader(openShared(t, "ViLG-300.csv"))
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("ViLG-300.csv: %v", err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.TrimPrefix(h, "\ufeff")] = i
	}
	zh, en := col["文本"], col["Prompt"]
	if _, ok := col["文本"]; !ok {
		t.Fatalf("ViLG-300.csv has no column 文本: %q", rows[0])
	}
	tg := tagger(t)
	if len(rows)-1 != 300 {
		t.Errorf("ViLG-300.csv has %d prompts, want 300", len(rows)-1)
	}
	for i, row := range rows[1:] {
		for _, c := range []int{zh, en} {
			prompt := row[c]
			res := tg.Analyze(row[en], prompt)
			checkWellFormed(t, prompt, res)
			keywords := 0
			for _, k := range res.Keyword {
				if k {
					keywords++
				}
			}
			if keywords == 0 {
				t.Errorf("row %d: no keyword in %q: %q %q", i+1, prompt, res.Words, res.POS)
			}
		}
	}
}
