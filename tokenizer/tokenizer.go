package tokenizer

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/pos"
)

// Special tokens of every kediff vocabulary. [PAD] is id 0 and [UNK] id 1;
// the POS class tokens of package pos follow (ids 2..), in pos.Classes order.
const (
	PadToken = "[PAD]"
	UnkToken = "[UNK]"
)

// SpecialTokens lists the tokens every vocabulary starts with: [PAD], [UNK]
// and the POS class tokens ("[n]", "[v]", ...) that special_text inserts.
func SpecialTokens() []string {
	out := []string{PadToken, UnkToken}
	for _, c := range pos.Classes {
		out = append(out, c.Token)
	}
	return out
}

// Tokenizer is a WordPiece-style tokenizer (BERT's basic + wordpiece
// tokenizers, simplified): text is split on whitespace; CJK characters and
// punctuation/symbols are single tokens; runs of letters and digits are
// lowercased words, split greedily into the longest vocabulary pieces, every
// piece after the first spelled with a "##" prefix; a word that cannot be
// split becomes [UNK]. The special tokens are matched verbatim.
type Tokenizer struct {
	vocab   []string
	ids     map[string]int32
	special map[string]int32
	// MaxWordChars: longer words become [UNK] (BERT: 100).
	MaxWordChars int
}

// New builds a tokenizer from a vocabulary (one token per id). It
// must start with SpecialTokens in order.
func New(vocab []string) (*Tokenizer, error) {
	sp := SpecialTokens()
	if len(vocab) < len(sp) {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d tokens, want at least the %d special tokens %v", len(vocab), len(sp), sp)
	}
	t := &Tokenizer{vocab: vocab, ids: make(map[string]int32, len(vocab)), special: map[string]int32{}, MaxWordChars: 100}
	for i, s := range sp {
		if vocab[i] != s {
			return nil, fmt.Errorf("tokenizer: vocabulary token %d is %q, want %q (vocabularies start with %v)", i, vocab[i], s, sp)
		}
		t.special[s] = int32(i)
	}
	for i, s := range vocab {
		if s == "" {
			return nil, fmt.Errorf("tokenizer: vocabulary token %d is empty", i)
		}
		if _, dup := t.ids[s]; dup {
			return nil, fmt.Errorf("tokenizer: vocabulary token %q appears twice", s)
		}
		t.ids[s] = int32(i)
	}
	return t, nil
}

// Limits on a vocabulary file: real ones have 30k-250k tokens of a few
// bytes each (a few MB).
const (
	MaxVocabBytes      = 64 << 20
	MaxVocabTokens     = 1 << 20
	MaxVocabTokenBytes = 1024
)

// ReadVocab reads a vocabulary file, one token per line (BERT's vocab.txt).
// A file over MaxVocabBytes, with more than MaxVocabTokens lines or a line
// over MaxVocabTokenBytes is refused before it is read whole.
func ReadVocab(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: vocabulary: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxVocabBytes {
		return nil, fmt.Errorf("tokenizer: vocabulary %s has %d bytes, over the limit of %d (a vocabulary is one token per line; check the file)", path, st.Size(), MaxVocabBytes)
	}
	return readVocab(f, path)
}

// readVocab reads a vocabulary from r (named path in errors), with the
// limits ReadVocab documents.
func readVocab(r io.Reader, path string) (*Tokenizer, error) {
	var toks []string
	sc := bufio.NewScanner(io.LimitReader(r, MaxVocabBytes+1))
	sc.Buffer(make([]byte, 0, 4096), MaxVocabTokenBytes+2) // + "\r\n"
	read := 0
	for sc.Scan() {
		read += len(sc.Bytes()) + 1
		if len(toks) == MaxVocabTokens {
			return nil, fmt.Errorf("tokenizer: vocabulary %s has more than %d tokens (check the file)", path, MaxVocabTokens)
		}
		toks = append(toks, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err == bufio.ErrTooLong {
		return nil, fmt.Errorf("tokenizer: vocabulary %s: line %d is over %d bytes (a vocabulary is one token per line; check the file)", path, len(toks)+1, MaxVocabTokenBytes)
	} else if err != nil {
		return nil, fmt.Errorf("tokenizer: vocabulary %s: %w", path, err)
	}
	if read > MaxVocabBytes {
		return nil, fmt.Errorf("tokenizer: vocabulary %s has more than %d bytes (check the file)", path, MaxVocabBytes)
	}
	t, err := New(toks)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return t, nil
}

// WriteVocab writes the vocabulary, one token per line.
func (t *Tokenizer) WriteVocab(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, s := range t.vocab {
		bw.WriteString(s)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteVocabFile writes the vocabulary to path.
func (t *Tokenizer) WriteVocabFile(path string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return t.WriteVocab(w) })
}

// Size is the vocabulary size (model n_vocab must be at least this).
func (t *Tokenizer) Size() int { return len(t.vocab) }

// Token returns the token of id.
func (t *Tokenizer) Token(id int32) string { return t.vocab[id] }

// ID returns the id of a token, [UNK]'s when absent.
func (t *Tokenizer) ID(tok string) int32 {
	if id, ok := t.ids[tok]; ok {
		return id
	}
	return 1
}

// IsSpecial reports whether id is [PAD], [UNK] or a POS class token.
func (t *Tokenizer) IsSpecial(id int32) bool { return int(id) < len(t.special) }

// isCJK reports characters that are tokens on their own.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303f) || (r >= 0xff00 && r <= 0xffef)
}

// preTokenize splits text into basic tokens: special tokens, CJK characters,
// punctuation/symbols, lowercased letter-digit words.
func preTokenize(text string, special map[string]int32) []string {
	var out []string
	var word strings.Builder
	flush := func() {
		if word.Len() > 0 {
			out = append(out, word.String())
			word.Reset()
		}
	}
	for i := 0; i < len(text); {
		if text[i] == '[' && special != nil {
			if j := strings.IndexByte(text[i:], ']'); j > 0 && j <= 8 {
				if _, ok := special[text[i:i+j+1]]; ok {
					flush()
					out = append(out, text[i:i+j+1])
					i += j + 1
					continue
				}
			}
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			flush()
			out = append(out, UnkToken)
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == 0xfeff || r == 0x200b:
			flush()
		case isCJK(r) || unicode.IsPunct(r) || unicode.IsSymbol(r):
			flush()
			out = append(out, string(unicode.ToLower(r)))
		default:
			word.WriteRune(unicode.ToLower(r))
		}
	}
	flush()
	return out
}

// wordPiece splits one basic token into vocabulary ids (greedy longest match).
func (t *Tokenizer) wordPiece(w string, dst []int32) []int32 {
	if id, ok := t.ids[w]; ok {
		return append(dst, id)
	}
	if utf8.RuneCountInString(w) > t.MaxWordChars {
		return append(dst, 1)
	}
	start := len(dst)
	for s := 0; s < len(w); {
		end := len(w)
		found := int32(-1)
		for end > s {
			piece := w[s:end]
			if s > 0 {
				piece = "##" + piece
			}
			if id, ok := t.ids[piece]; ok {
				found = id
				break
			}
			// back off one rune
			_, n := utf8.DecodeLastRuneInString(w[s:end])
			end -= n
		}
		if found < 0 {
			return append(dst[:start], 1)
		}
		dst = append(dst, found)
		s = end
	}
	return dst
}

// Encode tokenizes text (no truncation or padding).
func (t *Tokenizer) Encode(text string) []int32 {
	var ids []int32
	for _, b := range preTokenize(text, t.special) {
		if id, ok := t.special[b]; ok {
			ids = append(ids, id)
			continue
		}
		ids = t.wordPiece(b, ids)
	}
	return ids
}

// EncodeWords tokenizes a prompt given as the POS stage's words and their
// keyword flags: every token inherits its word's flag. With classTokens (one
// special token per word, e.g. "[n]"; the special_text form) each word's
// class token comes first; special tokens are never keywords.
func (t *Tokenizer) EncodeWords(words []string, keyword []bool, classTokens []string) (ids []int32, kw []bool) {
	for i, w := range words {
		if classTokens != nil {
			if id, ok := t.special[classTokens[i]]; ok {
				ids = append(ids, id)
				kw = append(kw, false)
			}
		}
		n := len(ids)
		ids = append(ids, t.Encode(w)...)
		flag := i < len(keyword) && keyword[i]
		for j := n; j < len(ids); j++ {
			kw = append(kw, flag && !t.IsSpecial(ids[j]))
		}
	}
	return ids, kw
}

// Pad truncates or pads ids (and kw, if not nil) to ctx tokens and returns
// the mask of real tokens. Padding is [PAD] (id 0), never a keyword.
func Pad(ids []int32, kw []bool, ctx int) (tokens []int32, mask, keyword []bool) {
	tokens = make([]int32, ctx)
	mask = make([]bool, ctx)
	keyword = make([]bool, ctx)
	n := min(len(ids), ctx)
	copy(tokens, ids[:n])
	for i := range n {
		mask[i] = true
		if kw != nil {
			keyword[i] = kw[i]
		}
	}
	return tokens, mask, keyword
}

// VocabBuilder counts basic tokens of texts and builds a vocabulary.
type VocabBuilder struct {
	counts map[string]int
	chars  map[string]int
}

// NewVocabBuilder returns an empty builder.
func NewVocabBuilder() *VocabBuilder {
	return &VocabBuilder{counts: map[string]int{}, chars: map[string]int{}}
}

// Add counts the basic tokens of text (special tokens are skipped).
func (v *VocabBuilder) Add(text string) {
	sp := map[string]int32{}
	for i, s := range SpecialTokens() {
		sp[s] = int32(i)
	}
	for _, w := range preTokenize(text, sp) {
		if _, ok := sp[w]; ok {
			continue
		}
		v.counts[w]++
		first := true
		for _, r := range w {
			c := string(r)
			if !first {
				c = "##" + c
			}
			first = false
			v.chars[c]++
		}
	}
}

// Build returns the vocabulary: the special tokens, then every character
// seen (as a word start and as a "##" continuation, so any seen word can be
// spelled), then whole words seen at least minCount times, most frequent
// first, up to maxSize tokens in all (0: no limit). Ties sort by token.
func (v *VocabBuilder) Build(minCount, maxSize int) (*Tokenizer, error) {
	vocab := SpecialTokens()
	seen := map[string]bool{}
	for _, s := range vocab {
		seen[s] = true
	}
	byCount := func(m map[string]int, min int) []string {
		var ks []string
		for k, c := range m {
			if c >= min && !seen[k] {
				ks = append(ks, k)
			}
		}
		sort.Slice(ks, func(i, j int) bool {
			if m[ks[i]] != m[ks[j]] {
				return m[ks[i]] > m[ks[j]]
			}
			return ks[i] < ks[j]
		})
		return ks
	}
	add := func(ks []string) {
		for _, k := range ks {
			if maxSize > 0 && len(vocab) >= maxSize {
				return
			}
			if !seen[k] {
				seen[k] = true
				vocab = append(vocab, k)
			}
		}
	}
	add(byCount(v.chars, 1))
	add(byCount(v.counts, max(minCount, 1)))
	return New(vocab)
}
