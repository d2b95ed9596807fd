package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/allocs"
	"github.com/kediff/kediff/pos"
)

func testTokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := New(append(SpecialTokens(), "a", "red", "apple", "app", "##le", "##s", "猫", "红", "色", "的", ",", "un", "##aff", "##able", "1", "##2"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSpecialTokensMatchPOS(t *testing.T) {
	sp := SpecialTokens()
	if sp[0] != "[PAD]" || sp[1] != "[UNK]" || len(sp) != 2+len(pos.Classes) {
		t.Fatalf("special tokens %v", sp)
	}
	for i, c := range pos.Classes {
		if sp[2+i] != c.Token {
			t.Errorf("token %d = %q, want %q", 2+i, sp[2+i], c.Token)
		}
	}
}

func TestTokenizerEncode(t *testing.T) {
	tok := testTokenizer(t)
	str := func(ids []int32) []string {
		var s []string
		for _, id := range ids {
			s = append(s, tok.Token(id))
		}
		return s
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"A Red apple", []string{"a", "red", "apple"}},
		{"apples", []string{"apple", "##s"}},
		{"unaffable", []string{"un", "##aff", "##able"}},
		{"红色的猫", []string{"红", "色", "的", "猫"}},
		{"[a]红色[n]猫", []string{"[a]", "红", "色", "[n]", "猫"}},
		{"a,dog", []string{"a", ",", "[UNK]"}},
		{"12", []string{"1", "##2"}},
		{"  ", nil},
		{"[zz]", []string{"[UNK]", "[UNK]", "[UNK]"}},
	} {
		if got := str(tok.Encode(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTokenizerWordsKeywords(t *testing.T) {
	tok := testTokenizer(t)
	ids, kw := tok.EncodeWords([]string{"红色", "的", "apples"}, []bool{true, false, true}, []string{"[a]", "[u]", "[n]"})
	var got []string
	for _, id := range ids {
		got = append(got, tok.Token(id))
	}
	want := []string{"[a]", "红", "色", "[u]", "的", "[n]", "apple", "##s"}
	wantKW := []bool{false, true, true, false, false, false, true, true}
	if !slices.Equal(got, want) || !slices.Equal(kw, wantKW) {
		t.Fatalf("got %q %v, want %q %v", got, kw, want, wantKW)
	}
	ids, kw = tok.EncodeWords([]string{"red ", "apple"}, []bool{true, true}, nil)
	if len(ids) != 2 || !kw[0] || !kw[1] {
		t.Fatalf("no special: %v %v", ids, kw)
	}
	tokens, mask, k := Pad(ids, kw, 4)
	if !slices.Equal(tokens, []int32{ids[0], ids[1], 0, 0}) || !slices.Equal(mask, []bool{true, true, false, false}) || !slices.Equal(k, []bool{true, true, false, false}) {
		t.Fatalf("pad: %v %v %v", tokens, mask, k)
	}
	tokens, mask, _ = Pad([]int32{5, 6, 7}, nil, 2)
	if !slices.Equal(tokens, []int32{5, 6}) || !slices.Equal(mask, []bool{true, true}) {
		t.Fatalf("truncate: %v %v", tokens, mask)
	}
}

func TestVocabBuildAndRead(t *testing.T) {
	vb := NewVocabBuilder()
	for _, s := range []string{"a red apple", "a red cat", "一只猫", "[n]猫"} {
		vb.Add(s)
	}
	tok, err := vb.Build(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID("red") == 1 || tok.ID("apple") != 1 || tok.ID("猫") == 1 {
		t.Errorf("whole words: red %d apple %d 猫 %d", tok.ID("red"), tok.ID("apple"), tok.ID("猫"))
	}
	// apple is spelled by characters
	if got := tok.Encode("apple"); len(got) != 5 || slices.Contains(got, 1) {
		t.Errorf("apple = %v", got)
	}
	path := t.TempDir() + "/vocab.txt"
	if err := tok.WriteVocabFile(path); err != nil {
		t.Fatal(err)
	}
	tok2, err := ReadVocab(path)
	if err != nil || !slices.Equal(tok2.vocab, tok.vocab) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := New([]string{"a", "b"}); err == nil {
		t.Error("vocabulary without special tokens accepted")
	}
}

// Hostile vocabulary files: huge, endless, one giant line, too many tokens,
// malformed. Each is a clear error, read with bounded memory.
func TestReadVocabHostile(t *testing.T) {
	dir := t.TempDir()
	good := strings.Join(append(SpecialTokens(), "a", "b"), "\n") + "\n"
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sparse := allocs.SparseFile(t, filepath.Join(dir, "huge.txt"), 1<<40) // 1 TB claimed, no disk used
	many := func() string {
		var b strings.Builder
		b.WriteString(good)
		for i := range MaxVocabTokens {
			b.WriteString(strconv.Itoa(i))
			b.WriteByte('\n')
		}
		return b.String()
	}
	tests := []struct{ name, path, want string }{
		{"ok", write("ok.txt", good), ""},
		{"crlf", write("crlf.txt", strings.ReplaceAll(good, "\n", "\r\n")), ""},
		{"huge_file", sparse, "over the limit"},
		{"endless_stream", "/dev/zero", "is over 1024 bytes"},
		{"giant_line", write("line.txt", good+strings.Repeat("x", 1<<20)+"\n"), "line " + strconv.Itoa(len(SpecialTokens())+3) + " is over"},
		{"too_many_tokens", write("many.txt", many()), "more than"},
		{"empty", write("empty.txt", ""), "at least the"},
		{"no_specials", write("nosp.txt", "a\nb\n"), "want at least"},
		{"duplicate", write("dup.txt", good+"a\n"), "appears twice"},
		{"empty_token", write("blank.txt", good+"\nc\n"), "is empty"},
		{"missing", filepath.Join(dir, "none.txt"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); tt.path == "/dev/zero" && err != nil {
				t.Skip("no /dev/zero")
			}
			var tok *Tokenizer
			var err error
			alloc, took := allocs.Measure(func() { tok, err = ReadVocab(tt.path) })
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "" && tok.Size() != len(SpecialTokens())+2:
				t.Fatalf("size %d", tok.Size())
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if tt.name != "too_many_tokens" && alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func FuzzReadVocab(f *testing.F) {
	f.Add([]byte(strings.Join(append(SpecialTokens(), "a", "##b"), "\n")))
	f.Add([]byte("[PAD]\r\n[UNK]\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := readVocab(bytes.NewReader(b), "fuzz.txt")
		if err != nil {
			return
		}
		ids := tok.Encode("a red apple [n] x")
		for _, id := range ids {
			if id < 0 || int(id) >= tok.Size() {
				t.Fatalf("id %d of %d", id, tok.Size())
			}
		}
	})
}
