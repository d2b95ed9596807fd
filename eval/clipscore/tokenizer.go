package clipscore

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Tokenizer turns prompts into CLIP token ids: byte-level BPE whose
// end-of-word symbols carry the suffix "</w>", between a start and an end
// token, padded to the text model's context length. It is safe for
// concurrent use.
type Tokenizer struct {
	encoder  map[string]int64 // BPE symbol -> id
	ranks    map[string]int   // "first second" -> merge priority (lower merges first)
	specials map[string]int64 // special tokens recognised in a prompt's text
	split    *regexp.Regexp   // CLIP's pre-tokenizer
	sot, eot int64
	pad      int64
	unk      int64 // id for a symbol missing from the vocabulary; -1 = none
	hf       bool  // normalise as Hugging Face's CLIPTokenizerFast does

	mu    sync.Mutex
	cache map[string][]int64 // word -> ids
}

// byteRune is GPT-2's reversible map from bytes to printable runes, which
// CLIP's vocabulary is written in: printable Latin-1 bytes stand for
// themselves, the others for runes from U+0100 up, in byte order.
// byteOrder lists the bytes in the order CLIP's vocabulary starts with:
// the printable ones, then the others.
var byteRune, byteOrder = func() (m [256]rune, order []byte) {
	printable := func(b int) bool {
		return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF
	}
	n := rune(0)
	for b := 0; b < 256; b++ {
		if printable(b) {
			m[b] = rune(b)
			order = append(order, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			m[b] = 256 + n
			n++
			order = append(order, byte(b))
		}
	}
	return m, order
}()

// openCLIPMerges is how many lines of bpe_simple_vocab_16e6.txt.gz CLIP
// uses: 49152 - 256 - 2 merges after the header line, so that the 256 byte
// symbols, their 256 end-of-word forms, the merges and the 2 special tokens
// make the 49408-token vocabulary.
const openCLIPMerges = 49152 - 256 - 2

// splitPattern is CLIP's pre-tokenizer after the special tokens: the
// contractions, runs of letters, single digits, and runs of anything else
// but whitespace. Text reaches it lower-cased with whitespace collapsed to
// single spaces, so RE2's ASCII \s is enough.
const splitPattern = `'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`

// LoadTokenizer reads a CLIP tokenizer from path: open_clip's (and OpenAI
// CLIP's) merges file bpe_simple_vocab_16e6.txt.gz, or a Hugging Face
// tokenizer.json of a CLIPTokenizerFast. Which one is decided by the file's
// content, not its name.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clipscore: tokenizer: %w (give open_clip's bpe_simple_vocab_16e6.txt.gz or a Hugging Face tokenizer.json)", err)
	}
	var t *Tokenizer
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		t, err = parseOpenCLIP(data)
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")):
		t, err = parseHF(data, filepath.Dir(path))
	default:
		err = fmt.Errorf("neither gzip (open_clip's bpe_simple_vocab_16e6.txt.gz) nor JSON (a Hugging Face tokenizer.json)")
	}
	if err != nil {
		return nil, fmt.Errorf("clipscore: tokenizer %s: %w", filepath.Base(path), err)
	}
	return t, nil
}

func newTokenizer(specials []string) (*Tokenizer, error) {
	var alt []string
	for _, s := range specials {
		alt = append(alt, regexp.QuoteMeta(s))
	}
	split, err := regexp.Compile(strings.Join(append(alt, splitPattern), "|"))
	if err != nil {
		return nil, err
	}
	return &Tokenizer{
		encoder:  make(map[string]int64),
		ranks:    make(map[string]int),
		specials: make(map[string]int64),
		split:    split,
		unk:      -1,
		cache:    make(map[string][]int64),
	}, nil
}

// parseOpenCLIP builds the vocabulary the way CLIP does from its merges:
// the byte symbols, the same with "</w>", each merge's concatenation, then
// the start and end tokens (49406 and 49407). Like open_clip, it
// recognises them in a prompt by open_clip's names, <start_of_text> and
// <end_of_text>.
func parseOpenCLIP(gz []byte) (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("reading the gzip stream: %w", err)
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) < openCLIPMerges+1 {
		return nil, fmt.Errorf("has %d lines, want at least %d (a CLIP merges file: a header line, then one merge per line)", len(lines), openCLIPMerges+1)
	}
	specials := []string{"<start_of_text>", "<end_of_text>"}
	t, err := newTokenizer(specials)
	if err != nil {
		return nil, err
	}
	var vocab []string
	for _, b := range byteOrder {
		vocab = append(vocab, string(byteRune[b]))
	}
	for _, b := range byteOrder {
		vocab = append(vocab, string(byteRune[b])+"</w>")
	}
	for i, line := range lines[1 : openCLIPMerges+1] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d is %q, want a merge of two symbols", i+2, line)
		}
		key := f[0] + " " + f[1]
		if _, dup := t.ranks[key]; !dup {
			t.ranks[key] = i
		}
		vocab = append(vocab, f[0]+f[1])
	}
	for id, s := range vocab {
		t.encoder[s] = int64(id)
	}
	t.sot, t.eot = int64(len(vocab)), int64(len(vocab)+1)
	t.specials["<start_of_text>"] = t.sot
	t.specials["<end_of_text>"] = t.eot
	return t, nil
}

// hfTokenizerJSON is the part of a Hugging Face tokenizer.json that CLIP's
// tokenizer needs.
type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
	} `json:"added_tokens"`
	Padding *struct {
		PadID *int64 `json:"pad_id"`
	} `json:"padding"`
	Model struct {
		Type            string            `json:"type"`
		Vocab           map[string]int64  `json:"vocab"`
		Merges          []json.RawMessage `json:"merges"`
		EndOfWordSuffix string            `json:"end_of_word_suffix"`
		UnkToken        *string           `json:"unk_token"`
	} `json:"model"`
}

// parseHF reads a CLIPTokenizerFast tokenizer.json. The pad id is the one
// its "padding" section names, else the pad_token of a tokenizer_config.json
// beside it, else <|endoftext|> (CLIPTokenizerFast's default).
func parseHF(data []byte, dir string) (*Tokenizer, error) {
	var j hfTokenizerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if j.Model.Type != "BPE" || j.Model.EndOfWordSuffix != "</w>" {
		return nil, fmt.Errorf("model is %q with end_of_word_suffix %q, want CLIP's BPE with \"</w>\" (a CLIPTokenizerFast tokenizer.json)", j.Model.Type, j.Model.EndOfWordSuffix)
	}
	var specials []string
	ids := make(map[string]int64)
	for _, a := range j.AddedTokens {
		specials = append(specials, a.Content)
		ids[a.Content] = a.ID
	}
	t, err := newTokenizer(specials)
	if err != nil {
		return nil, err
	}
	t.hf = true
	t.encoder = j.Model.Vocab
	t.specials = ids
	for i, raw := range j.Model.Merges {
		// Older files write a merge as "a b", newer ones as ["a", "b"].
		var pair []string
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			pair = strings.Split(s, " ")
		} else if err := json.Unmarshal(raw, &pair); err != nil {
			return nil, fmt.Errorf("merge %d is %s, want \"a b\" or [\"a\", \"b\"]", i, raw)
		}
		if len(pair) != 2 {
			return nil, fmt.Errorf("merge %d is %s, want two symbols", i, raw)
		}
		key := pair[0] + " " + pair[1]
		if _, dup := t.ranks[key]; !dup {
			t.ranks[key] = i
		}
	}
	lookup := func(tok string) (int64, bool) {
		if id, ok := ids[tok]; ok {
			return id, true
		}
		id, ok := t.encoder[tok]
		return id, ok
	}
	var ok bool
	if t.sot, ok = lookup("<|startoftext|>"); !ok {
		return nil, fmt.Errorf("has no <|startoftext|> token")
	}
	if t.eot, ok = lookup("<|endoftext|>"); !ok {
		return nil, fmt.Errorf("has no <|endoftext|> token")
	}
	if j.Model.UnkToken != nil {
		if id, ok := lookup(*j.Model.UnkToken); ok {
			t.unk = id
		}
	}
	t.pad = t.eot
	if j.Padding != nil && j.Padding.PadID != nil {
		t.pad = *j.Padding.PadID
	} else if tok, ok := configPadToken(dir); ok {
		id, found := lookup(tok)
		if !found {
			return nil, fmt.Errorf("tokenizer_config.json beside it names pad_token %q, which is not in the vocabulary", tok)
		}
		t.pad = id
	}
	return t, nil
}

// configPadToken reads pad_token from the tokenizer_config.json in dir, if
// there is one; it is a string or an object with "content".
func configPadToken(dir string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return "", false
	}
	var cfg struct {
		PadToken json.RawMessage `json:"pad_token"`
	}
	if json.Unmarshal(data, &cfg) != nil || len(cfg.PadToken) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(cfg.PadToken, &s) == nil {
		return s, true
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(cfg.PadToken, &obj) == nil && obj.Content != "" {
		return obj.Content, true
	}
	return "", false
}

// StartID, EndID and PadID are the ids of <|startoftext|>, <|endoftext|>
// and of the padding after the end token.
func (t *Tokenizer) StartID() int64 { return t.sot }
func (t *Tokenizer) EndID() int64   { return t.eot }
func (t *Tokenizer) PadID() int64   { return t.pad }

// Encode returns the BPE ids of text, without the start and end tokens.
func (t *Tokenizer) Encode(text string) []int64 {
	if t.hf {
		text = normalizeHF(text)
	} else {
		text = normalizeOpenCLIP(text)
	}
	var ids []int64
	var buf strings.Builder
	for _, word := range t.split.FindAllString(text, -1) {
		if id, ok := t.specials[word]; ok {
			ids = append(ids, id)
			continue
		}
		buf.Reset()
		for i := 0; i < len(word); i++ {
			buf.WriteRune(byteRune[word[i]])
		}
		ids = append(ids, t.word(buf.String())...)
	}
	return ids
}

// Tokenize returns text's ids as a text model of context length n takes
// them: the start token, the BPE ids, the end token, then padding. Longer
// sequences are cut to n and end with the end token, as open_clip and
// Hugging Face truncate.
func (t *Tokenizer) Tokenize(text string, n int) []int64 {
	out := make([]int64, n)
	t.tokenizeInto(out, text)
	return out
}

// tokenizeInto writes text's ids into row (len(row) = context length) and
// returns how many are not padding.
func (t *Tokenizer) tokenizeInto(row []int64, text string) int {
	n := len(row)
	ids := t.Encode(text)
	if len(ids) > n-2 {
		ids = ids[:n-2]
	}
	row[0] = t.sot
	copy(row[1:], ids)
	row[len(ids)+1] = t.eot
	for i := len(ids) + 2; i < n; i++ {
		row[i] = t.pad
	}
	return len(ids) + 2
}

// word returns the ids of one pre-tokenized word, already mapped to byte
// runes, merging its symbols in rank order until no merge applies.
func (t *Tokenizer) word(w string) []int64 {
	t.mu.Lock()
	ids, ok := t.cache[w]
	t.mu.Unlock()
	if ok {
		return ids
	}
	var syms []string
	for _, r := range w {
		syms = append(syms, string(r))
	}
	syms[len(syms)-1] += "</w>"
	for len(syms) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[syms[i]+" "+syms[i+1]]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := syms[best], syms[best+1]
		merged := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				merged = append(merged, first+second)
				i++
			} else {
				merged = append(merged, syms[i])
			}
		}
		syms = merged
	}
	ids = make([]int64, 0, len(syms))
	for _, s := range syms {
		if id, ok := t.encoder[s]; ok {
			ids = append(ids, id)
		} else if t.unk >= 0 {
			ids = append(ids, t.unk)
		}
	}
	t.mu.Lock()
	t.cache[w] = ids
	t.mu.Unlock()
	return ids
}
