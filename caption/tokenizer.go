package caption

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes and decodes text as a Hugging Face tokenizers library
// tokenizer.json describes it. It supports the WordPiece model (BERT-style:
// BertNormalizer, BertPreTokenizer, the "##" continuing-subword prefix and the
// WordPiece decoder with its cleanup) and the byte-level BPE model (GPT-2 style:
// merges, the ByteLevel pre-tokenizer with its byte-to-unicode map and regex
// split, the ByteLevel decoder). Unsupported components are refused at load
// time with an error naming them. A Tokenizer is safe for concurrent use.
type Tokenizer struct {
	kind     string // "WordPiece" or "BPE"
	vocab    map[string]int
	inv      []string // id -> token; "" for ids with no token
	unk      int      // -1 when the model has no unknown token
	special  map[int]bool
	added    []addedToken // longest content first
	norms    []normalizer
	pres     []preTokenizer
	decs     []decoderStep
	wpPrefix string // WordPiece continuing-subword prefix
	wpMax    int    // WordPiece max_input_chars_per_word
	ranks    map[[2]string]int
	// ignoreMerges takes a pre-token found whole in the vocabulary as one
	// token (BPE's ignore_merges, as Llama 3 tokenizers set it).
	ignoreMerges bool
}

type addedToken struct {
	id      int
	content string
	special bool
}

type normalizer func(string) string

// preTokenizer splits each piece further; ByteLevel also maps bytes to runes.
type preTokenizer func([]string) []string

type decoderStep func([]string) []string

// tokenizer.json, the parts kediff reads.
type tokJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        struct {
		Type                    string            `json:"type"`
		Vocab                   map[string]int    `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
		UnkToken                *string           `json:"unk_token"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    int               `json:"max_input_chars_per_word"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
		IgnoreMerges            bool              `json:"ignore_merges"`
	} `json:"model"`
}

type component struct {
	Type string `json:"type"`
	// BertNormalizer
	CleanText          *bool `json:"clean_text"`
	HandleChineseChars *bool `json:"handle_chinese_chars"`
	StripAccents       *bool `json:"strip_accents"`
	Lowercase          *bool `json:"lowercase"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	// ByteLevel
	AddPrefixSpace *bool `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	// WordPiece decoder
	Prefix  *string `json:"prefix"`
	Cleanup *bool   `json:"cleanup"`
	// Replace
	Pattern struct {
		String *string `json:"String"`
	} `json:"pattern"`
	Content string `json:"content"`
	// Strip
	Start int `json:"start"`
	Stop  int `json:"stop"`
}

// LoadTokenizer reads a tokenizer.json file of at most MaxTokenizerBytes.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := readLimited(path, MaxTokenizerBytes, "tokenizer.json")
	if err != nil {
		return nil, fmt.Errorf("caption: tokenizer: %w", err)
	}
	t, err := ParseTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return t, nil
}

// ParseTokenizer builds a Tokenizer from the bytes of a tokenizer.json.
func ParseTokenizer(data []byte) (*Tokenizer, error) {
	var j tokJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("caption: tokenizer.json is not valid tokenizers JSON: %v", err)
	}
	t := &Tokenizer{kind: j.Model.Type, vocab: j.Model.Vocab, unk: -1, special: map[int]bool{}}
	if t.vocab == nil {
		t.vocab = map[string]int{}
	}
	switch t.kind {
	case "WordPiece", "BPE":
	default:
		return nil, fmt.Errorf("caption: tokenizer model %q is not supported (want WordPiece or BPE)", t.kind)
	}
	for _, a := range j.AddedTokens {
		if _, ok := t.vocab[a.Content]; !ok {
			t.vocab[a.Content] = a.ID
		}
		t.added = append(t.added, addedToken{a.ID, a.Content, a.Special})
		if a.Special {
			t.special[a.ID] = true
		}
	}
	sort.SliceStable(t.added, func(a, b int) bool { return len(t.added[a].content) > len(t.added[b].content) })
	// The id -> token table has maxID+1 entries: ids may leave holes, but
	// not so many that a small file makes a huge table.
	maxID, idLimit := -1, min(1<<22, 2*len(t.vocab)+1024)
	for tok, id := range t.vocab {
		if id < 0 || id >= idLimit {
			return nil, fmt.Errorf("caption: tokenizer token %q has id %d, want 0..%d (twice the %d tokens, plus 1024, at most 4194304)",
				tok, id, idLimit-1, len(t.vocab))
		}
		maxID = max(maxID, id)
	}
	t.inv = make([]string, maxID+1)
	for tok, id := range t.vocab {
		t.inv[id] = tok
	}
	if u := j.Model.UnkToken; u != nil && *u != "" {
		id, ok := t.vocab[*u]
		if !ok {
			return nil, fmt.Errorf("caption: tokenizer unk_token %q is not in the vocabulary", *u)
		}
		t.unk = id
	}
	if t.kind == "WordPiece" {
		if t.unk < 0 {
			return nil, fmt.Errorf("caption: WordPiece tokenizer has no unk_token")
		}
		t.wpPrefix = "##"
		if p := j.Model.ContinuingSubwordPrefix; p != nil {
			t.wpPrefix = *p
		}
		t.wpMax = j.Model.MaxInputCharsPerWord
		if t.wpMax <= 0 {
			t.wpMax = 100
		}
	} else {
		if (j.Model.ContinuingSubwordPrefix != nil && *j.Model.ContinuingSubwordPrefix != "") ||
			(j.Model.EndOfWordSuffix != nil && *j.Model.EndOfWordSuffix != "") {
			return nil, fmt.Errorf("caption: BPE with continuing_subword_prefix or end_of_word_suffix is not supported")
		}
		t.ignoreMerges = j.Model.IgnoreMerges
		t.ranks = make(map[[2]string]int, len(j.Model.Merges))
		for i, raw := range j.Model.Merges {
			pair, err := parseMerge(raw)
			if err != nil {
				return nil, fmt.Errorf("caption: tokenizer merge %d: %v", i, err)
			}
			if _, dup := t.ranks[pair]; !dup {
				t.ranks[pair] = i
			}
		}
	}
	var err error
	if t.norms, err = parseNormalizer(j.Normalizer); err != nil {
		return nil, err
	}
	if t.pres, err = parsePreTokenizer(j.PreTokenizer); err != nil {
		return nil, err
	}
	if t.decs, err = parseDecoder(j.Decoder); err != nil {
		return nil, err
	}
	return t, nil
}

// parseMerge reads "a b" (tokenizers < 0.20) or ["a", "b"] (later versions).
func parseMerge(raw json.RawMessage) ([2]string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, b, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(b, " ") {
			return [2]string{}, fmt.Errorf("%q is not two space-separated tokens", s)
		}
		return [2]string{a, b}, nil
	}
	var p []string
	if err := json.Unmarshal(raw, &p); err != nil || len(p) != 2 {
		return [2]string{}, fmt.Errorf("%s is neither \"a b\" nor [\"a\", \"b\"]", raw)
	}
	return [2]string{p[0], p[1]}, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

func parseNormalizer(raw json.RawMessage) ([]normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("caption: tokenizer normalizer: %v", err)
	}
	on := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	switch c.Type {
	case "Sequence":
		var out []normalizer
		for _, r := range c.Normalizers {
			n, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, n...)
		}
		return out, nil
	case "BertNormalizer":
		clean, cjk, lower := on(c.CleanText, true), on(c.HandleChineseChars, true), on(c.Lowercase, true)
		strip := on(c.StripAccents, lower) // null follows lowercase, as in BERT
		return []normalizer{func(s string) string { return bertNormalize(s, clean, cjk, strip, lower) }}, nil
	case "Lowercase":
		return []normalizer{strings.ToLower}, nil
	case "NFC":
		return []normalizer{norm.NFC.String}, nil
	case "NFD":
		return []normalizer{norm.NFD.String}, nil
	case "NFKC":
		return []normalizer{norm.NFKC.String}, nil
	case "NFKD":
		return []normalizer{norm.NFKD.String}, nil
	case "StripAccents":
		return []normalizer{stripAccents}, nil
	case "Strip":
		return []normalizer{func(s string) string { return strings.TrimFunc(s, unicode.IsSpace) }}, nil
	case "Replace":
		if c.Pattern.String == nil {
			return nil, fmt.Errorf("caption: tokenizer normalizer Replace with a regex pattern is not supported")
		}
		from, to := *c.Pattern.String, c.Content
		return []normalizer{func(s string) string { return strings.ReplaceAll(s, from, to) }}, nil
	}
	return nil, fmt.Errorf("caption: tokenizer normalizer %q is not supported (want BertNormalizer, Lowercase, NFC/NFD/NFKC/NFKD, StripAccents, Strip, Replace or a Sequence of them)", c.Type)
}

func parsePreTokenizer(raw json.RawMessage) ([]preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("caption: tokenizer pre_tokenizer: %v", err)
	}
	switch c.Type {
	case "Sequence":
		var out []preTokenizer
		for _, r := range c.PreTokenizers {
			p, err := parsePreTokenizer(r)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
		return out, nil
	case "BertPreTokenizer":
		return []preTokenizer{eachPiece(bertSplit)}, nil
	case "WhitespaceSplit":
		return []preTokenizer{eachPiece(strings.Fields)}, nil
	case "Whitespace":
		return []preTokenizer{eachPiece(wordPunctSplit)}, nil
	case "ByteLevel":
		prefix := c.AddPrefixSpace == nil || *c.AddPrefixSpace
		regex := c.UseRegex == nil || *c.UseRegex
		return []preTokenizer{func(in []string) []string {
			var out []string
			for i, s := range in {
				if prefix && i == 0 && s != "" && !strings.HasPrefix(s, " ") {
					s = " " + s
				}
				parts := []string{s}
				if regex {
					parts = gpt2Split(s)
				}
				for _, p := range parts {
					out = append(out, bytesToUnicode(p))
				}
			}
			return out
		}}, nil
	}
	return nil, fmt.Errorf("caption: tokenizer pre_tokenizer %q is not supported (want BertPreTokenizer, Whitespace, WhitespaceSplit, ByteLevel or a Sequence of them)", c.Type)
}

func eachPiece(split func(string) []string) preTokenizer {
	return func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, split(s)...)
		}
		return out
	}
}

func parseDecoder(raw json.RawMessage) ([]decoderStep, error) {
	if isNull(raw) {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("caption: tokenizer decoder: %v", err)
	}
	switch c.Type {
	case "Sequence":
		var out []decoderStep
		for _, r := range c.Decoders {
			d, err := parseDecoder(r)
			if err != nil {
				return nil, err
			}
			out = append(out, d...)
		}
		return out, nil
	case "WordPiece":
		prefix := "##"
		if c.Prefix != nil {
			prefix = *c.Prefix
		}
		cleanup := c.Cleanup == nil || *c.Cleanup
		return []decoderStep{func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				if i > 0 {
					if strings.HasPrefix(tok, prefix) {
						tok = tok[len(prefix):]
					} else {
						tok = " " + tok
					}
				}
				if cleanup {
					tok = cleanupSpaces(tok)
				}
				out[i] = tok
			}
			return out
		}}, nil
	case "ByteLevel":
		return []decoderStep{func(toks []string) []string {
			var b []byte
			for _, tok := range toks {
				b = unicodeToBytes(b, tok)
			}
			return []string{strings.ToValidUTF8(string(b), "\uFFFD")}
		}}, nil
	case "Strip":
		content := c.Content
		return []decoderStep{func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				for n := 0; n < c.Start && strings.HasPrefix(tok, content); n++ {
					tok = tok[len(content):]
				}
				for n := 0; n < c.Stop && strings.HasSuffix(tok, content); n++ {
					tok = tok[:len(tok)-len(content)]
				}
				out[i] = tok
			}
			return out
		}}, nil
	}
	return nil, fmt.Errorf("caption: tokenizer decoder %q is not supported (want WordPiece, ByteLevel, Strip or a Sequence of them)", c.Type)
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return len(t.inv) }

// TokenID returns the id of a token of the vocabulary.
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}

// Token returns the token with this id, or "" when there is none.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.inv) {
		return ""
	}
	return t.inv[id]
}

// IsSpecial reports whether id is a special added token ([CLS], <|endoftext|>, ...).
func (t *Tokenizer) IsSpecial(id int) bool { return t.special[id] }

// Encode returns the token ids of text: added tokens are matched first, the
// rest is normalized, pre-tokenized and split by the model. No post-processor
// template ([CLS] ... [SEP]) is applied.
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	for text != "" {
		at, tok := t.findAdded(text)
		if at < 0 {
			ids = t.encodePlain(ids, text)
			break
		}
		ids = t.encodePlain(ids, text[:at])
		ids = append(ids, tok.id)
		text = text[at+len(tok.content):]
	}
	return ids
}

func (t *Tokenizer) findAdded(text string) (int, addedToken) {
	best, bestTok := -1, addedToken{}
	for _, a := range t.added {
		if a.content == "" {
			continue
		}
		if i := strings.Index(text, a.content); i >= 0 && (best < 0 || i < best) {
			best, bestTok = i, a
		}
	}
	return best, bestTok
}

func (t *Tokenizer) encodePlain(ids []int, text string) []int {
	if text == "" {
		return ids
	}
	for _, n := range t.norms {
		text = n(text)
	}
	pieces := []string{text}
	for _, p := range t.pres {
		pieces = p(pieces)
	}
	for _, w := range pieces {
		if w == "" {
			continue
		}
		if t.kind == "WordPiece" {
			ids = t.wordPiece(ids, w)
		} else {
			ids = t.bpe(ids, w)
		}
	}
	return ids
}

// wordPiece splits one word greedily, longest vocabulary match first; a word
// with a part that matches nothing becomes the unknown token as a whole.
func (t *Tokenizer) wordPiece(ids []int, w string) []int {
	if utf8.RuneCountInString(w) > t.wpMax {
		return append(ids, t.unk)
	}
	n := len(ids)
	for start := 0; start < len(w); {
		end, found := len(w), -1
		for ; end > start; end-- {
			if end < len(w) && !utf8.RuneStart(w[end]) {
				continue // cut only at rune boundaries
			}
			sub := w[start:end]
			if start > 0 {
				sub = t.wpPrefix + sub
			}
			if id, ok := t.vocab[sub]; ok {
				found = id
				break
			}
		}
		if found < 0 {
			return append(ids[:n], t.unk)
		}
		ids = append(ids, found)
		start = end
	}
	return ids
}

// bpe splits one pre-token into runes and applies merges, lowest rank first.
func (t *Tokenizer) bpe(ids []int, w string) []int {
	if id, ok := t.vocab[w]; ok && t.ignoreMerges {
		return append(ids, id)
	}
	syms := make([]string, 0, len(w))
	for _, r := range w {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		// Merge every occurrence of the best pair, left to right.
		a, b := syms[at], syms[at+1]
		out := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, a+b)
				i++
			} else {
				out = append(out, syms[i])
			}
		}
		syms = out
	}
	for _, s := range syms {
		if id, ok := t.vocab[s]; ok {
			ids = append(ids, id)
		} else if t.unk >= 0 {
			ids = append(ids, t.unk)
		}
	}
	return ids
}

// Decode turns ids back into text through the tokenizer's decoder. With
// skipSpecial, special added tokens ([CLS], [SEP], [PAD], ...) are dropped
// first; unknown ids are always dropped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(t.inv) || t.inv[id] == "" || (skipSpecial && t.special[id]) {
			continue
		}
		toks = append(toks, t.inv[id])
	}
	if len(t.decs) == 0 {
		return strings.Join(toks, " ")
	}
	for _, d := range t.decs {
		toks = d(toks)
	}
	return strings.Join(toks, "")
}

// bertNormalize is BERT's normalizer: clean control characters and map
// whitespace to spaces, put spaces around CJK ideographs, strip accents,
// lowercase.
func bertNormalize(s string, clean, cjk, strip, lower bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case clean && (r == 0 || r == 0xfffd || isControl(r)):
			continue
		case clean && isBertSpace(r):
			b.WriteByte(' ')
		case cjk && isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	if strip {
		s = stripAccents(s)
	}
	if lower {
		s = strings.ToLower(s)
	}
	return s
}

func stripAccents(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isBertSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

func isBertPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

// bertSplit splits on whitespace and isolates every punctuation character.
func bertSplit(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		case isBertPunct(r):
			if start >= 0 {
				out = append(out, s[start:i])
			}
			out = append(out, string(r))
			start = -1
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// wordPunctSplit is the Whitespace pre-tokenizer: runs of \w and runs of
// [^\w\s].
func wordPunctSplit(s string) []string {
	var out []string
	start, class := -1, 0
	for i, r := range s {
		c := 2
		if unicode.IsSpace(r) {
			c = 0
		} else if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) {
			c = 1
		}
		if c != class && start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
		if c != 0 && start < 0 {
			start = i
		}
		class = c
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// cleanupSpaces is the tokenizers library's decoder cleanup: no space before
// punctuation and English contractions.
func cleanupSpaces(s string) string {
	return cleanupReplacer.Replace(s)
}

var cleanupReplacer = strings.NewReplacer(
	" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'", " n't", "n't", " 'm", "'m",
	" do not", " don't", " 's", "'s", " 've", "'ve", " 're", "'re")

// gpt2Split is GPT-2's pre-tokenization pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand (Go's regexp has no look-ahead).
func gpt2Split(s string) []string {
	rs := []rune(s)
	var out []string
	class := func(r rune) int { // 1 letter, 2 number, 3 other, 0 space
		switch {
		case unicode.IsSpace(r):
			return 0
		case unicode.IsLetter(r):
			return 1
		case unicode.IsNumber(r):
			return 2
		}
		return 3
	}
	for i := 0; i < len(rs); {
		if rs[i] == '\'' && i+1 < len(rs) {
			if i+2 < len(rs) {
				two := string(rs[i+1 : i+3])
				if two == "re" || two == "ve" || two == "ll" {
					out = append(out, string(rs[i:i+3]))
					i += 3
					continue
				}
			}
			if c := rs[i+1]; c == 's' || c == 't' || c == 'm' || c == 'd' {
				out = append(out, string(rs[i:i+2]))
				i += 2
				continue
			}
		}
		j := i
		if rs[j] == ' ' && j+1 < len(rs) && class(rs[j+1]) != 0 {
			j++
		}
		if c := class(rs[j]); c != 0 {
			k := j
			for k < len(rs) && class(rs[k]) == c {
				k++
			}
			out = append(out, string(rs[i:k]))
			i = k
			continue
		}
		// A run of whitespace: when a non-space follows, its last character is
		// left for the next token (\s+(?!\S)), unless the run is one character.
		k := i
		for k < len(rs) && class(rs[k]) == 0 {
			k++
		}
		if k < len(rs) && k-i > 1 {
			k--
		}
		out = append(out, string(rs[i:k]))
		i = k
	}
	return out
}

// byteRunes is GPT-2's byte-to-unicode map: printable bytes map to themselves,
// the others to U+0100 and up, so that every byte is a visible rune.
var byteRunes, runeBytes = func() ([256]rune, map[rune]byte) {
	var m [256]rune
	inv := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
		inv[m[b]] = byte(b)
	}
	return m, inv
}()

func bytesToUnicode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRunes[s[i]])
	}
	return b.String()
}

// unicodeToBytes appends the bytes that tok's runes stand for; runes outside
// the map (added tokens) are appended as their UTF-8.
func unicodeToBytes(dst []byte, tok string) []byte {
	for _, r := range tok {
		if b, ok := runeBytes[r]; ok {
			dst = append(dst, b)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
