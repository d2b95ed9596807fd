package caption

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

const wordPieceJSON = `{
 "added_tokens": [{"id": 0, "content": "[PAD]", "special": true}, {"id": 1, "content": "[UNK]", "special": true},
  {"id": 2, "content": "[CLS]", "special": true}, {"id": 3, "content": "[SEP]", "special": true}],
 "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
 "pre_tokenizer": {"type": "BertPreTokenizer"},
 "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
 "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
  "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "red": 5, "circle": 6, ",": 7, "##s": 8,
   "un": 9, "##aff": 10, "##able": 11, "hello": 12, "红": 13, "色": 14, "!": 15}}
}`

func TestWordPiece(t *testing.T) {
	tok, err := ParseTokenizer([]byte(wordPieceJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text string
		ids        []int
		decoded    string
	}{
		{"subwords_and_punctuation", "Unaffable  circles, a RED circle!", []int{9, 10, 11, 6, 8, 7, 4, 5, 6, 15}, "unaffable circles, a red circle!"},
		{"accents_stripped", "Héllo", []int{12}, "hello"},
		{"cjk_split", "红色", []int{13, 14}, "红 色"},
		{"unknown_word_is_one_unk", "blue reds", []int{1, 5, 8}, "reds"},
		{"special_token_in_text", "[CLS] a [SEP]", []int{2, 4, 3}, "a"},
		{"control_chars_cleaned", "a\x00\tred", []int{4, 5}, "a red"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text)
			if !reflect.DeepEqual(got, tc.ids) {
				t.Fatalf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
			}
			if d := tok.Decode(got, true); d != tc.decoded {
				t.Errorf("Decode = %q, want %q", d, tc.decoded)
			}
		})
	}
	if d := tok.Decode([]int{2, 4, 3}, false); d != "[CLS] a [SEP]" {
		t.Errorf("Decode keeping specials = %q", d)
	}
}

func TestByteLevelBPE(t *testing.T) {
	tok, err := LoadTokenizer("testdata/bpe_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text string
		ids        []int
		decoded    string
	}{
		// "Ġa" is in the vocabulary but no merge makes it: BPE keeps Ġ + a.
		{"merges_in_rank_order", "a cat sat", []int{1, 2, 8, 10}, " a cat sat"},
		{"utf8_bytes_map_to_runes", "红<|endoftext|>", []int{16, 0}, " 红"},
		{"contraction", "cat's", []int{8, 18}, " cat's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text)
			if !reflect.DeepEqual(got, tc.ids) {
				t.Fatalf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
			}
			if d := tok.Decode(got, true); d != tc.decoded {
				t.Errorf("Decode = %q, want %q", d, tc.decoded)
			}
		})
	}
	// A lone continuation byte decodes to U+FFFD rather than invalid UTF-8.
	if d := tok.Decode([]int{12}, true); d != "\uFFFD" {
		t.Errorf("Decode(lone byte) = %q, want U+FFFD", d)
	}
}

func TestGPT2Split(t *testing.T) {
	got := gpt2Split("Hello world's  end\n\nok 12")
	want := []string{"Hello", " world", "'s", " ", " end", "\n", "\n", "ok", " 12"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("gpt2Split = %q, want %q", got, want)
	}
}

func TestByteMapIsBijective(t *testing.T) {
	seen := map[rune]bool{}
	for b := range 256 {
		r := byteRunes[b]
		if seen[r] || runeBytes[r] != byte(b) {
			t.Fatalf("byte %d maps to %U, not a bijection", b, r)
		}
		seen[r] = true
	}
	if byteRunes[' '] != 'Ġ' || byteRunes['\n'] != 'Ċ' || byteRunes['a'] != 'a' {
		t.Fatalf("space/newline/a map to %c %c %c", byteRunes[' '], byteRunes['\n'], byteRunes['a'])
	}
}

func TestTokenizerRejects(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"not_json", "nope", "not valid tokenizers JSON"},
		{"unigram", `{"model": {"type": "Unigram"}}`, `model "Unigram" is not supported`},
		{"metaspace", `{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}`, `pre_tokenizer "Metaspace"`},
		{"bad_merge", `{"model": {"type": "BPE", "vocab": {}, "merges": ["abc"]}}`, "merge 0"},
		{"wordpiece_without_unk", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, "no unk_token"},
		{"unk_not_in_vocab", `{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}}`, "not in the vocabulary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokenizer([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMergesAsPairs(t *testing.T) {
	tok, err := ParseTokenizer([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("ab"); !reflect.DeepEqual(got, []int{2}) {
		t.Fatalf("Encode = %v, want [2]", got)
	}
}

func FuzzTokenizer(f *testing.F) {
	wp, err := ParseTokenizer([]byte(wordPieceJSON))
	if err != nil {
		f.Fatal(err)
	}
	bpe, err := LoadTokenizer("testdata/bpe_tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("a red circle, 红色 cat's")
	f.Add("\xff\x00[SEP]")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*Tokenizer{wp, bpe} {
			ids := tok.Encode(s)
			_ = tok.Decode(ids, true)
		}
	})
}

func FuzzParseTokenizer(f *testing.F) {
	f.Add([]byte(wordPieceJSON))
	if data, err := os.ReadFile("testdata/bpe_tokenizer.json"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseTokenizer(data)
		if err != nil {
			return
		}
		_ = tok.Decode(tok.Encode("a red circle, 红色 it's"), true)
	})
}
