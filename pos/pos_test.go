package pos

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	sharedOnce   sync.Once
	sharedTagger *Tagger
	sharedErr    error
)

// tagger returns the package's test tagger (fraction 1: every sample selected).
func tagger(t testing.TB) *Tagger {
	t.Helper()
	sharedOnce.Do(func() { sharedTagger, sharedErr = NewTagger(Config{Fraction: 1, Seed: 7}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedTagger
}

// checkWellFormed checks the invariants every result must hold.
func checkWellFormed(t testing.TB, prompt string, r Result) {
	t.Helper()
	n := len(r.Words)
	if len(r.POS) != n || len(r.POSRaw) != n || len(r.Keyword) != n {
		t.Fatalf("%q: %d words, %d pos, %d pos_raw, %d keyword", prompt, n, len(r.POS), len(r.POSRaw), len(r.Keyword))
	}
	if got := strings.Join(r.Words, ""); got != prompt {
		t.Fatalf("words do not concatenate back to the prompt:\n got %q\nwant %q", got, prompt)
	}
	var special strings.Builder
	for i, w := range r.Words {
		if w == "" {
			t.Fatalf("%q: word %d is empty", prompt, i)
		}
		c, ok := classByName(r.POS[i])
		if !ok {
			t.Fatalf("%q: word %q has class %q, not one of %s", prompt, w, r.POS[i], classNames())
		}
		if r.POSRaw[i] == "" {
			t.Fatalf("%q: word %q has no raw tag", prompt, w)
		}
		if r.Keyword[i] != Classes[c].Keyword {
			t.Fatalf("%q: word %q of class %s has keyword %v", prompt, w, r.POS[i], r.Keyword[i])
		}
		special.WriteString(Classes[c].Token + w)
	}
	want := ""
	if r.TextKnowledge {
		want = special.String()
	}
	if r.SpecialText != want {
		t.Fatalf("%q: special text\n got %q\nwant %q", prompt, r.SpecialText, want)
	}
}

type word2 struct{ word, class, raw string }

func TestAnalyze(t *testing.T) {
	tg := tagger(t)
	cases := []struct {
		name, prompt string
		want         []word2 // nil: only the invariants are checked
	}{
		{"chinese_sentence", "一只红色的猫", []word2{{"一只", "numeral", "m"}, {"红色", "noun", "n"}, {"的", "particle", "uj"}, {"猫", "noun", "n"}}},
		{"traditional_chinese", "臺灣的繁體中文", []word2{{"臺灣", "noun", "ns"}, {"的", "particle", "uj"}, {"繁體中文", "noun", "n"}}},
		{"english_prompt_gets_penn_tags", "A red car.", []word2{{"A ", "other", "DT"}, {"red ", "adjective", "JJ"}, {"car", "noun", "NN"}, {".", "punctuation", "w"}}},
		{"english_demonstrative_is_pronoun", "this car", []word2{{"this ", "pronoun", "DT"}, {"car", "noun", "NN"}}},
		{"latin_word_in_chinese", "我的iPhone", []word2{{"我", "pronoun", "r"}, {"的", "particle", "uj"}, {"iPhone", "noun", "NN"}}},
		{"digits_are_one_numeral", "3.5公斤", []word2{{"3.5", "numeral", "m"}, {"公斤", "quantifier", "q"}}},
		{"number_with_thousands_and_percent", "1,000人 50%", []word2{{"1,000", "numeral", "m"}, {"人 ", "noun", "n"}, {"50%", "numeral", "m"}}},
		{"fullwidth_digits_are_one_numeral", "２０２３年", []word2{{"２０２３", "numeral", "m"}, {"年", "numeral", "m"}}},
		{"fullwidth_punctuation", "猫，狗！", []word2{{"猫", "noun", "n"}, {"，", "punctuation", "w"}, {"狗", "noun", "n"}, {"！", "punctuation", "w"}}},
		{"repeated_punctuation_is_one_word", "好……", []word2{{"好", "adjective", "a"}, {"……", "punctuation", "w"}}},
		{"html_entity_is_one_word", "Tom &amp; Jerry", []word2{{"Tom ", "noun", "NNP"}, {"&amp; ", "punctuation", "w"}, {"Jerry", "noun", "NNP"}}},
		{"numeric_entity", "&#39;猫&#x27;", []word2{{"&#39;", "punctuation", "w"}, {"猫", "noun", "n"}, {"&#x27;", "punctuation", "w"}}},
		{"bare_ampersand_is_punctuation", "A&B", []word2{{"A", "other", "DT"}, {"&", "punctuation", "w"}, {"B", "noun", "NNP"}}},
		{"leading_whitespace_joins_first_word", "  猫 狗 ", []word2{{"  猫 ", "noun", "n"}, {"狗 ", "noun", "n"}}},
		{"only_whitespace", " \t\u3000", []word2{{" \t\u3000", "other", "x"}}},
		{"empty", "", []word2{}},
		{"only_punctuation", "。！？", []word2{{"。", "punctuation", "w"}, {"！", "punctuation", "w"}, {"？", "punctuation", "w"}}},
		{"emoji_sequence_is_one_word", "猫😀👍🏽👨‍👩‍👧", []word2{{"猫", "noun", "n"}, {"😀👍🏽👨‍👩‍👧", "other", "x"}}},
		{"control_characters", "猫\x00\x1b狗", []word2{{"猫", "noun", "n"}, {"\x00\x1b", "other", "x"}, {"狗", "noun", "n"}}},
		{"invalid_utf8", "猫\xff\xfe狗", []word2{{"猫", "noun", "n"}, {"\xff\xfe", "other", "x"}, {"狗", "noun", "n"}}},
		{"english_contraction_and_hyphen", "I don't like red-haired dolls", []word2{{"I ", "pronoun", "PRP"}, {"don't ", "verb", "VBP"}, {"like ", "verb", "VB"}, {"red-haired ", "adjective", "JJ"}, {"dolls", "noun", "NNS"}}},
		{"curly_apostrophe", "it’s blue", nil},
		{"mixed_script", "Ελληνικά русский 日本語のテキスト 한국어", nil},
		{"combining_mark_after_punctuation", "。\u0301猫", nil},
		{"lone_marks", "\u0301\u0302", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tg.Analyze("k", c.prompt)
			checkWellFormed(t, c.prompt, r)
			if c.want == nil {
				return
			}
			var got []word2
			for i := range r.Words {
				got = append(got, word2{r.Words[i], r.POS[i], r.POSRaw[i]})
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}

func TestAnalyzeLongPromptTakesBoundedTime(t *testing.T) {
	tg := tagger(t)
	for _, unit := range []string{"一只红色的猫坐在桌子上，", "a red cat sits on the table, ", "猫", "!", "😀", "1",
		"a)", "((a", "a's", "a-b", "&amp;", "1.", "\xff", "e\u0301"} {
		prompt := strings.Repeat(unit, 100_000/utf8.RuneCountInString(unit))
		switch unit {
		case "a)":
			prompt = "a" + strings.Repeat(")", 100_000) + " a"
		case "((a":
			prompt = "a " + strings.Repeat("(", 100_000) + "a"
		}
		start := time.Now()
		r := tg.Analyze("k", prompt)
		checkWellFormed(t, prompt, r)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%d-character prompt of %q took %v", utf8.RuneCountInString(prompt), unit, d)
		}
	}
}

func TestAnalyzeIsSafeForConcurrentUse(t *testing.T) {
	tg := tagger(t)
	prompts := []string{"一只红色的猫", "A red car.", "我的iPhone 13", "3.5公斤"}
	want := make([]string, len(prompts))
	for i, p := range prompts {
		want[i] = tg.Analyze("k", p).SpecialText
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				p := i % len(prompts)
				if got := tg.Analyze("k", prompts[p]).SpecialText; got != want[p] {
					t.Errorf("concurrent %q: got %q, want %q", prompts[p], got, want[p])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestNewTaggerRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	badDict := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badDict, []byte("好词 lots n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"fraction_above_one", Config{Fraction: 1.5}, "outside [0, 1]"},
		{"unknown_class", Config{Classes: map[string]string{"nz": "nounn"}}, `"nounn", which is not a class`},
		{"missing_dictionary", Config{UserDicts: []string{filepath.Join(dir, "none.txt")}}, "check --pos-dict"},
		{"bad_frequency", Config{UserDicts: []string{badDict}}, "line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTagger(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestUserDictionaryAddsDomainWords(t *testing.T) {
	dict := filepath.Join(t.TempDir(), "domain.txt")
	if err := os.WriteFile(dict, []byte("\ufeff# domain words\n扩散模型 1000 n\n赛博朋克风 nz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tagger(t).Analyze("k", "扩散模型画赛博朋克风")
	tg, err := NewTagger(Config{Fraction: 1, UserDicts: []string{dict}, Classes: map[string]string{"nz": "adjective"}})
	if err != nil {
		t.Fatal(err)
	}
	r := tg.Analyze("k", "扩散模型画赛博朋克风")
	checkWellFormed(t, "扩散模型画赛博朋克风", r)
	if len(r.Words) != 3 || r.Words[0] != "扩散模型" || r.Words[2] != "赛博朋克风" || r.POS[2] != "adjective" {
		t.Fatalf("with the user dictionary: %q %q (without: %q)", r.Words, r.POS, before.Words)
	}
	md := tg.Metadata()
	if !strings.Contains(md["pos.user_dicts"], "domain.txt") || !strings.Contains(md["pos.class_table"], `"nz":"adjective"`) {
		t.Fatalf("metadata does not record the dictionary and the class override: %v", md)
	}
}

func TestClassesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	keywords := 0
	for _, c := range Classes {
		if seen[c.Name] || seen[c.Token] || !strings.HasPrefix(c.Token, "[") || !strings.HasSuffix(c.Token, "]") || c.Description == "" {
			t.Errorf("class %+v: duplicate or malformed", c)
		}
		seen[c.Name], seen[c.Token] = true, true
		if c.Keyword {
			keywords++
		}
	}
	if keywords != 6 {
		t.Errorf("%d keyword classes; want 6 (noun verb adjective numeral quantifier pronoun)", keywords)
	}
	for raw, want := range map[string]string{"n": "noun", "nrfg": "noun", "vn": "verb", "ad": "adjective", "m": "numeral", "mq": "numeral",
		"q": "quantifier", "rr": "pronoun", "d": "adverb", "p": "preposition", "c": "conjunction", "uj": "particle",
		"f": "locality", "t": "time", "w": "punctuation", "x": "other", "eng": "other", "NNS": "noun", "VBD": "verb", "CD": "numeral", "": "other", "??": "other"} {
		if got := ClassOf(raw).Name; got != want {
			t.Errorf("ClassOf(%q) = %s, want %s", raw, got, want)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"", "一只红色的猫", "A red car.", "&amp;&#39;&#x1F600;&", "３.５％", "1,000.5:3", "\xff\xfe\x00", "😀\u200d👍🏽\ufe0f",
		"don't-stop ’s", "\u0301", "臺灣 iPhone13 MP3 3D", "   ", "。。。", "a-", "1.", "&#;"} {
		f.Add(s)
	}
	tg := tagger(f)
	f.Fuzz(func(t *testing.T, prompt string) {
		checkWellFormed(t, prompt, tg.Analyze(prompt, prompt))
	})
}
