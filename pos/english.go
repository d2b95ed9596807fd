package pos

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jdkato/prose/v2"
)

var (
	proseOnce  sync.Once
	proseModel *prose.Model
)

// englishModel loads prose's averaged-perceptron model on first use.
func englishModel() *prose.Model {
	proseOnce.Do(func() { proseModel = prose.ModelFromData("kediff") })
	return proseModel
}

// quotes are the characters that prose's tokenizer rewrites; the text handed to it
// uses their ASCII forms so that token lengths line up with ours.
var quotes = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u201c", `"`, "\u201d", `"`)

// tagEnglish gives the English words (eng) their Penn tags. Words are tagged in
// runs: a run is English words with only whitespace and ASCII punctuation between
// them (an English-only prompt is one run; punctuation other than single ASCII
// characters, such as &amp;, is left out of the text prose sees), tagged together so that prose sees
// their context. A run of one bare word (a Latin term inside Chinese text: wifi,
// iOS, LED) has no context to see and is tagged alone, through a cache.
func (t *Tagger) tagEnglish(prompt string, words []word) {
	for i := 0; i < len(words); {
		if !words[i].eng {
			i++
			continue
		}
		j, engs := i, 0
		for j < len(words) && (words[j].eng || words[j].raw == "w") {
			if words[j].eng {
				engs++
			}
			j++
		}
		for j > i && !words[j-1].eng {
			j-- // trailing punctuation stays out of the run
		}
		if engs == 1 {
			words[i].raw = tagWord(prompt[words[i].start:words[i].end])
		} else {
			tagRun(prompt, words[i:j])
		}
		i = j
	}
}

// isContextPunct reports whether a word is punctuation that goes to prose as
// context: one ASCII character (prose's tokenizer is quadratic in runs of brackets).
func isContextPunct(prompt string, w word) bool {
	return w.raw == "w" && w.end-w.start == 1 && prompt[w.start] < 0x80
}

const wordCacheSize = 1 << 16

var (
	wordCache sync.Map // string -> string: tags of lone English words
	wordCount atomic.Int64
)

// tagWord tags one English word without context.
func tagWord(text string) string {
	if tag, ok := wordCache.Load(text); ok {
		return tag.(string)
	}
	w := []word{{start: 0, end: len(text), eng: true}}
	tagRun(text, w)
	if len(text) <= 64 && wordCount.Load() < wordCacheSize {
		if _, loaded := wordCache.LoadOrStore(strings.Clone(text), w[0].raw); !loaded {
			wordCount.Add(1)
		}
	}
	return w[0].raw
}

// tagRun tags the English words of a run with prose, in one document.
func tagRun(prompt string, words []word) {
	type ref struct{ idx, lo, hi int }
	var refs []ref
	var b strings.Builder
	total := 0
	for i, w := range words {
		if !w.eng && !isContextPunct(prompt, w) {
			continue
		}
		piece := quotes.Replace(prompt[w.start:w.end])
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(piece)
		if w.eng {
			refs = append(refs, ref{i, total, total + len(piece)})
		}
		total += len(piece)
	}
	defer func() {
		// prose is outside code working on outside bytes: whatever happens in it,
		// every English word ends up with a tag.
		recover()
		for _, r := range refs {
			if words[r.idx].raw == "" {
				words[r.idx].raw = "NN"
			}
		}
	}()
	doc, err := prose.NewDocument(b.String(), prose.UsingModel(englishModel()),
		prose.WithSegmentation(false), prose.WithExtraction(false))
	if err != nil {
		return
	}
	pos, k := 0, 0
	for _, tok := range doc.Tokens() {
		for k < len(refs) && refs[k].hi <= pos {
			k++
		}
		if k < len(refs) && refs[k].lo <= pos && words[refs[k].idx].raw == "" {
			words[refs[k].idx].raw = tok.Tag
		}
		pos += len(tok.Text)
	}
}
