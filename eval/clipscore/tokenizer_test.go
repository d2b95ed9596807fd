package clipscore

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

// tokenizerPrompts are the prompts the tokenizer is checked on against
// open_clip. hfDiffers marks those whose ids depend on what open_clip does
// and Hugging Face's CLIPTokenizerFast does not (ftfy, HTML unescaping,
// open_clip's names for the special tokens), so the tokenizer.json form is
// expected to differ there.
var tokenizerPrompts = []struct {
	name, text string
	hfDiffers  bool
}{
	{"plain", "a photo of a cat", false},
	{"capitals_and_punctuation", "A Red Bicycle, leaning against the wall... (again)!", false},
	{"contractions", "It's the dog's bone, isn't it? We'll see; they'd know, I'm sure, you've seen, they're here", false},
	{"numbers_split_into_digits", "3 apples, 12.5% off, 1984 and 2024-06-01", false},
	{"chinese_bytes", "一只在草地上奔跑的小狗。阳光明媚", false},
	{"emoji_bytes", "sunset 🌅 over the sea 🌊🐟 👩‍👩‍👧", false},
	{"accents", "Crème brûlée at the café in São Paulo, naïve Zoë", false},
	{"greek_cyrillic", "ΑΘΗΝΑ и Москва", false},
	{"extra_whitespace", "  a   cat\t\ton a\nmat \u00a0 and\u2003a dog  ", false},
	{"ideographic_space", "a\u3000dog", false},
	{"long_truncates", strings.Repeat("an oil painting of a lighthouse on a cliff, ", 20), false},
	{"exactly_75_tokens", strings.Repeat("cat ", 75), false},
	{"76_tokens_truncate", strings.Repeat("cat ", 76), false},
	{"empty", "", false},
	{"only_spaces", "   ", false},
	{"symbols", "<<< $$$ ### @@@ --- ___ ~~~ >>> :) ;-)", false},
	{"special_token_text", "hello <end_of_text> world", true},
	{"html_entities", "Tom &amp; Jerry &lt;3 &quot;cheese&quot; &#39;n&#x27; &eacute;", true},
	{"double_escaped_html", "fish &amp;amp; chips", true},
	{"html_with_angle_bracket", "a <b>bold</b> &amp; brave move", true},
	{"curly_quotes", "“hello” ‘world’ it’s", true},
	{"fullwidth_forms", "ＡＢＣ１２３，ｈｅｌｌｏ！小狗，阳光", true},
	{"ligatures", "ﬁne ﬂowers ﬀ", true},
	{"decomposed_accent", "cafe\u0301 nai\u0308ve", false},
	{"control_chars", "tab\x07bell\x1bescape\ufeffbom", true},
}

// refPython returns the interpreter with open_clip.
func refPython(t *testing.T) string {
	t.Helper()
	return pyref.Venv(t, "open_clip")
}

// openCLIPReference runs tools/eval/clip_tokenize_ref.py: open_clip's ids
// for prompts, the path of the vocabulary it ships and, when hfJSON is not
// "", a tokenizer.json built from that vocabulary.
func openCLIPReference(t *testing.T, prompts []string, hfJSON string) (vocab string, ids [][]int64) {
	t.Helper()
	py := refPython(t)
	args := []string{filepath.Join(pyref.Root(t), "tools", "eval", "clip_tokenize_ref.py")}
	if hfJSON != "" {
		args = append(args, hfJSON)
	}
	in, err := json.Marshal(prompts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", args[0], err, stderr.String())
	}
	var ref struct {
		Vocab string    `json:"vocab"`
		IDs   [][]int64 `json:"ids"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Vocab, ref.IDs
}

func TestTokenizerMatchesOpenCLIP(t *testing.T) {
	var prompts []string
	for _, p := range tokenizerPrompts {
		prompts = append(prompts, p.text)
	}
	hfPath := filepath.Join(t.TempDir(), "tokenizer.json")
	vocab, want := openCLIPReference(t, prompts, hfPath)

	openCLIP, err := LoadTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	hf, err := LoadTokenizer(hfPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := openCLIP.PadID(); got != 0 {
		t.Errorf("open_clip pad id = %d, want 0", got)
	}
	if got := hf.PadID(); got != 49407 {
		t.Errorf("tokenizer.json pad id = %d, want 49407 (its padding.pad_id)", got)
	}
	for i, p := range tokenizerPrompts {
		t.Run(p.name, func(t *testing.T) {
			if got := openCLIP.Tokenize(p.text, 77); !slices.Equal(got, want[i]) {
				t.Errorf("bpe_simple_vocab_16e6.txt.gz: %q\n got %v\nwant %v", p.text, got, want[i])
			}
			// The tokenizer.json form pads with 49407 where open_clip pads
			// with 0; past the end token the two must otherwise agree.
			got := hf.Tokenize(p.text, 77)
			wantHF := slices.Clone(want[i])
			end := slices.Index(wantHF, 49407)
			for j := end + 1; j < len(wantHF); j++ {
				wantHF[j] = 49407
			}
			if match := slices.Equal(got, wantHF); match == p.hfDiffers {
				if p.hfDiffers {
					t.Logf("tokenizer.json: %q matches open_clip, which was expected to differ", p.text)
				} else {
					t.Errorf("tokenizer.json: %q\n got %v\nwant %v", p.text, got, wantHF)
				}
			}
		})
	}
}

func TestTokenizerTruncationKeepsEndToken(t *testing.T) {
	tok := loadOpenCLIPTokenizer(t)
	for _, n := range []int{5, 16, 77} {
		ids := tok.Tokenize(strings.Repeat("dog ", 100), n)
		if len(ids) != n || ids[0] != tok.StartID() || ids[n-1] != tok.EndID() {
			t.Errorf("context %d: got %v, want %d ids from the start token to the end token", n, ids, n)
		}
	}
}

// loadOpenCLIPTokenizer loads the vocabulary open_clip ships.
func loadOpenCLIPTokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	vocab, _ := openCLIPReference(t, nil, "")
	tok, err := LoadTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLoadTokenizerRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("#version: 0.2\nh e\n"))
	zw.Close()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing_file", filepath.Join(dir, "nope.txt.gz"), "no such file"},
		{"not_gzip_or_json", write("vocab.txt", []byte("h e\n")), "neither gzip"},
		{"short_merges_file", write("short.txt.gz", gz.Bytes()), "want at least 48895"},
		{"json_not_bpe", write("wordpiece.json", []byte(`{"model":{"type":"WordPiece","vocab":{}}}`)), `want CLIP's BPE`},
		{"json_without_start_token", write("nostart.json", []byte(`{"model":{"type":"BPE","end_of_word_suffix":"</w>","vocab":{"a</w>":0},"merges":[]}}`)), "no <|startoftext|>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadTokenizer(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadTokenizer(%s) error = %v, want one containing %q", filepath.Base(tc.path), err, tc.want)
			}
		})
	}
}
