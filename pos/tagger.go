package pos

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/kediff/kediff/internal/selection"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/go-ego/gse"
)

// Config configures a Tagger. The zero value tags with the embedded dictionary and
// selects no sample for textual knowledge.
type Config struct {
	// Fraction of samples that get the textual knowledge (special text, keyword
	// attention), chosen by selection.Selected(key, Seed, Fraction). The paper uses 0.5.
	Fraction float64
	// Seed of the selection hash.
	Seed uint64
	// UserDicts are files of domain words, one "word freq tag" a line; freq (default
	// 1000) and tag (default n) may be left out, as in jieba ("word tag" works too);
	// '#' starts a comment line. They are added to the
	// embedded dictionary; an existing word takes the new frequency and tag, and the
	// first entry of a word wins.
	UserDicts []string
	// Classes overrides the class of raw tags (tag -> class name, e.g. "i": "verb").
	Classes map[string]string
}

// DefaultFraction is the paper's fraction of samples with textual knowledge.
const DefaultFraction = 0.5

// Result is the stage's output for one prompt. Words, POS, POSRaw and Keyword have
// one entry per word; concatenating Words gives back the prompt.
type Result struct {
	Words   []string // the prompt's bytes, split into words (whitespace stays with the word before it)
	POS     []string // class name of each word (Classes[i].Name)
	POSRaw  []string // the tagger's tag: ICTCLAS/jieba for Chinese, Penn for English, m for digits, w for punctuation, x otherwise
	Keyword []bool   // the word's class is a keyword class
	// TextKnowledge reports whether the sample is in the selected fraction.
	TextKnowledge bool
	// SpecialText is the prompt with the class token before every word, e.g.
	// "[m]一[q]只[a]红色[u]的[n]猫"; empty when TextKnowledge is false.
	SpecialText string
}

// Tagger runs the stage. It is safe for concurrent use; create one per process and
// share it between workers.
type Tagger struct {
	cfg   Config
	seg   *gse.Segmenter
	table classTable
	dicts []dictInfo
}

type dictInfo struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Words  int    `json:"words"`
}

type userWord struct {
	word, tag string
	freq      float64
}

// NewTagger loads the dictionary (once per process for a given set of user
// dictionaries; the first call takes a few seconds) and checks the config.
func NewTagger(cfg Config) (*Tagger, error) {
	if math.IsNaN(cfg.Fraction) || cfg.Fraction < 0 || cfg.Fraction > 1 {
		return nil, fmt.Errorf("pos: fraction %v is outside [0, 1]; the paper uses %v", cfg.Fraction, DefaultFraction)
	}
	table, err := newClassTable(cfg.Classes)
	if err != nil {
		return nil, err
	}
	var words []userWord
	var infos []dictInfo
	key := sha256.New()
	for _, path := range cfg.UserDicts {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("pos: user dictionary: %w (check --pos-dict)", err)
		}
		ws, err := parseUserDict(path, string(data))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		key.Write(sum[:])
		words = append(words, ws...)
		infos = append(infos, dictInfo{Path: path, SHA256: hex.EncodeToString(sum[:]), Words: len(ws)})
	}
	cacheKey := ""
	if len(infos) > 0 {
		cacheKey = hex.EncodeToString(key.Sum(nil))
	}
	seg, err := segmenter(cacheKey, words)
	if err != nil {
		return nil, err
	}
	return &Tagger{cfg: cfg, seg: seg, table: table, dicts: infos}, nil
}

func parseUserDict(path, data string) ([]userWord, error) {
	var out []userWord
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		bad := func(why string) error {
			return fmt.Errorf("pos: user dictionary %s line %d %q: %s; want \"word freq tag\", e.g. \"扩散模型 1000 n\"", path, n, line, why)
		}
		if len(f) > 3 {
			return nil, bad("too many fields (a word cannot contain spaces)")
		}
		w := userWord{word: f[0], freq: 1000, tag: "n"}
		if !utf8.ValidString(w.word) {
			return nil, bad("word is not valid UTF-8")
		}
		if len(f) == 2 {
			if _, err := strconv.ParseFloat(f[1], 64); err != nil && isTag(f[1]) {
				f = []string{f[0], "1000", f[1]} // "word tag", as jieba accepts
			}
		}
		if len(f) > 1 {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil || !(v >= 1) || math.IsInf(v, 0) {
				return nil, bad("freq must be a number >= 1")
			}
			w.freq = v
		}
		if len(f) > 2 {
			w.tag = f[2]
		}
		out = append(out, w)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pos: user dictionary %s: %w", path, err)
	}
	return out, nil
}

// gseFixes restores jieba's frequency and tag for the single characters that gse's
// dictionary gets wrong (see tools/pos/gse_fixes.py).
//
//go:embed dict/gse_fixes.txt
var gseFixes string

// isTag reports whether s looks like a tag (ASCII letters) rather than a frequency.
func isTag(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return s != ""
}

type segEntry struct {
	once sync.Once
	seg  *gse.Segmenter
	err  error
}

var (
	segMu    sync.Mutex
	segCache = map[string]*segEntry{}
)

// segmenter returns the process-wide gse segmenter for a set of user words, loading
// it on first use.
func segmenter(key string, words []userWord) (*gse.Segmenter, error) {
	segMu.Lock()
	e := segCache[key]
	if e == nil {
		e = &segEntry{}
		segCache[key] = e
	}
	segMu.Unlock()
	e.once.Do(func() {
		fixes, err := parseUserDict("pos/dict/gse_fixes.txt", gseFixes)
		if err != nil {
			e.err = err
			return
		}
		// The user's words and the fixes go in first: gse's loader keeps the first
		// entry of a word, computes the path costs once for all (CalcToken, the slow
		// part of loading) and would force single characters to frequency 2.
		seg := &gse.Segmenter{NotLoadHMM: true, SkipLog: true}
		seg.Dict = gse.NewDict()
		seg.Init()
		for _, w := range append(words, fixes...) {
			if err := seg.AddToken(w.word, w.freq, w.tag); err != nil {
				e.err = fmt.Errorf("pos: adding dictionary word %q: %w", w.word, err)
				return
			}
		}
		if err := seg.LoadDictEmbed("zh"); err != nil {
			e.err = fmt.Errorf("pos: loading the embedded gse dictionary: %w", err)
			return
		}
		e.seg = seg
	})
	return e.seg, e.err
}

// Metadata describes the stage's configuration for a shard's key-value metadata.
func (t *Tagger) Metadata() map[string]string {
	classes, _ := json.Marshal(Classes)
	table, _ := json.Marshal(t.table.entries())
	dicts, _ := json.Marshal(t.dicts)
	if t.dicts == nil {
		dicts = []byte("[]")
	}
	return map[string]string{
		"pos.fraction":    strconv.FormatFloat(t.cfg.Fraction, 'g', -1, 64),
		"pos.seed":        strconv.FormatUint(t.cfg.Seed, 10),
		"pos.selection":   "fmix64(fnv1a64(seed as 8 little-endian bytes, key)) >> 11 / 2^53 < fraction",
		"pos.classes":     string(classes),
		"pos.class_table": string(table),
		"pos.user_dicts":  string(dicts),
		"pos.tagger":      "github.com/go-ego/gse " + gse.Version + " (embedded zh dictionary) + github.com/jdkato/prose/v2 averaged perceptron",
	}
}

// scratch is the per-call working memory of Analyze.
type scratch struct {
	words []word
	cls   []class
}

var pool = sync.Pool{New: func() any { return new(scratch) }}

// word is a word of the prompt while it is being tagged: prompt[start:end] without
// trailing whitespace.
type word struct {
	start, end int
	raw        string
	eng        bool
}

// Analyze splits and tags one prompt. It never panics and returns a defined result
// for any input, invalid UTF-8 included.
func (t *Tagger) Analyze(key, prompt string) Result {
	sc := pool.Get().(*scratch)
	words := t.split(prompt, sc.words[:0])
	sc.words = words
	t.tagEnglish(prompt, words)

	n := len(words)
	strs := make([]string, 3*n) // one allocation for Words, POS and POSRaw
	r := Result{
		Words:         strs[0:n:n],
		POS:           strs[n : 2*n : 2*n],
		POSRaw:        strs[2*n : 3*n : 3*n],
		Keyword:       make([]bool, n),
		TextKnowledge: selection.Selected(key, t.cfg.Seed, t.cfg.Fraction),
	}
	specialLen := 0
	cls := sc.cls[:0]
	for i, w := range words {
		start, end := w.start, len(prompt)
		if i == 0 {
			start = 0
		}
		if i+1 < n {
			end = words[i+1].start
		}
		c := t.table.of(w.raw)
		if w.raw == "DT" && c == cOther && isDemonstrative(prompt[w.start:w.end]) {
			c = cPronoun
		}
		r.Words[i] = prompt[start:end]
		r.POS[i] = Classes[c].Name
		r.POSRaw[i] = w.raw
		r.Keyword[i] = Classes[c].Keyword
		specialLen += len(Classes[c].Token)
		cls = append(cls, c)
	}
	sc.cls = cls
	if r.TextKnowledge {
		b := make([]byte, 0, len(prompt)+specialLen)
		for i, w := range r.Words {
			b = append(b, Classes[cls[i]].Token...)
			b = append(b, w...)
		}
		r.SpecialText = unsafe.String(unsafe.SliceData(b), len(b))
	}
	if cap(sc.words) <= 1<<14 {
		pool.Put(sc)
	}
	return r
}

func isDemonstrative(w string) bool {
	switch strings.ToLower(w) {
	case "this", "that", "these", "those":
		return true
	}
	return false
}

// split cuts the prompt into words and gives each its raw tag, except English words
// (eng), which tagEnglish tags.
func (t *Tagger) split(prompt string, words []word) []word {
	sawSpace := false
	for i := 0; i < len(prompt); {
		kind, j := nextSpan(prompt, i)
		switch kind {
		case spSpace:
			sawSpace = true
		case spCJK:
			words = t.segment(prompt, i, j, words)
		case spLatin:
			words = append(words, word{start: i, end: j, eng: true})
		case spNumber:
			words = append(words, word{start: i, end: j, raw: "m"})
		case spPunct, spEntity:
			if n := len(words); n > 0 && words[n-1].end == i && words[n-1].raw == "m" && isPercent(prompt[i:j]) {
				words[n-1].end = j // 50% is one numeral
				break
			}
			words = append(words, word{start: i, end: j, raw: "w"})
		default: // spSymbol, spControl
			words = append(words, word{start: i, end: j, raw: "x"})
		}
		i = j
	}
	if len(words) == 0 && sawSpace {
		words = append(words, word{start: 0, end: len(prompt), raw: "x"})
	}
	return words
}

// segment runs gse over prompt[a:b], a run of letters and digits with at least one
// non-Latin letter, and applies the stage's rules to its output.
func (t *Tagger) segment(prompt string, a, b int, words []word) []word {
	chunk := prompt[a:b]
	segs := t.seg.Segment([]byte(chunk))
	for i := 0; i < len(segs); i++ {
		s, e := a+segs[i].Start(), a+segs[i].End()
		text := prompt[s:e]
		switch textKind(text) {
		case tkNumber:
			// Digits that gse split ("3", ".", "5", or full-width digits one by one)
			// become one numeral.
			for i+1 < len(segs) {
				next := chunk[segs[i+1].Start():segs[i+1].End()]
				if textKind(next) == tkNumber {
					e = a + segs[i+1].End()
					i++
					continue
				}
				if i+2 < len(segs) && isJoinerText(next) && textKind(chunk[segs[i+2].Start():segs[i+2].End()]) == tkNumber {
					e = a + segs[i+2].End()
					i += 2
					continue
				}
				break
			}
			words = append(words, word{start: s, end: e, raw: "m"})
		case tkLatin:
			words = append(words, word{start: s, end: e, eng: true})
		case tkMarks:
			if len(words) > 0 && words[len(words)-1].end == s {
				words[len(words)-1].end = e
				continue
			}
			words = append(words, word{start: s, end: e, raw: "x"})
		default:
			raw := segs[i].Token().Pos()
			if raw == "" {
				raw = "x"
			}
			words = append(words, word{start: s, end: e, raw: raw})
		}
	}
	return words
}

type textKindT uint8

const (
	tkOther  textKindT = iota
	tkNumber           // digits only
	tkLatin            // Latin letters and digits, at least one letter
	tkMarks            // combining marks and joiners only
)

func textKind(s string) textKindT {
	var latin, digit, other, mark bool
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch kindOf(r, size) {
		case rkLatin:
			latin = true
		case rkDigit:
			digit = true
		case rkMark:
			mark = true
		default:
			other = true
		}
	}
	switch {
	case other || len(s) == 0:
		return tkOther
	case latin:
		return tkLatin
	case digit:
		return tkNumber
	case mark:
		return tkMarks
	}
	return tkOther
}

func isPercent(s string) bool {
	return s == "%" || s == "\uff05" || s == "\u2030"
}

func isJoinerText(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size == len(s) && isNumberJoiner(r)
}
