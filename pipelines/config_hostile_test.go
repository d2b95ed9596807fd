package pipelines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/allocs"
)

// laughs is a YAML "billion laughs": 9 levels of 9 aliases each, 9^9 strings
// once expanded.
func laughs(key string) string {
	s := key + ": [&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		s += ", &" + n + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]"
		prev = n
	}
	return s + "]\n"
}

// Hostile config files: alias bombs (where the decoder would expand them: a
// list of strings, and where it would not), deep nesting, huge files, binary.
// Each is a clear error with bounded memory and time.
func TestLoadConfigHostile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string { return allocs.WriteFile(t, filepath.Join(dir, name), s) }
	sparse := allocs.SparseFile(t, filepath.Join(dir, "huge.yaml"), 1<<40) // 1 TB claimed, no disk used
	tests := []struct{ name, path, want string }{
		{"sample", "sample.yaml", ""},
		{"few_aliases_ok", write("ok.yaml", "pos:\n  seed: &s 5\ndetect:\n  seed: *s\n"), ""},
		{"laughs_in_string_list", write("bomb1.yaml", "pos:\n  "+strings.ReplaceAll(laughs("user_dicts"), "\n", "\n  ")), "expands to more than 100000 values"},
		{"laughs_top_level", write("bomb2.yaml", laughs("x")), "expands to more than 100000 values"},
		{"small_bomb", write("bomb3.yaml", "pos:\n  user_dicts: [&a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]]\n"), "expands to more than 100000 values"},
		{"merge_bomb", write("bomb4.yaml", "a: &a {x: 1, y: 2}\nb: &b {<<: [*a, *a], z: [*a, *a, *a, *a, *a, *a, *a, *a]}\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"), "expands to more than 100000 values"},
		{"alias_to_deep", write("deep4.yaml", "a: &a "+strings.Repeat("[", 20)+strings.Repeat("]", 20)+"\nb: "+strings.Repeat("[", 20)+"*a"+strings.Repeat("]", 20)+"\n"), "nested more than 32"},
		{"deep_flow", write("deep1.yaml", strings.Repeat("[", 5000)+strings.Repeat("]", 5000)), "nested more than"},
		{"deep_flow_parser_limit", write("deep2.yaml", strings.Repeat("[", 20000)+strings.Repeat("]", 20000)), "exceeded max depth"},
		{"deep_block", write("deep3.yaml", func() string {
			var b strings.Builder
			for i := range 200 {
				b.WriteString(strings.Repeat(" ", i) + "a:\n")
			}
			return b.String()
		}()), "nested more than 32 levels"},
		{"huge_file", sparse, "more than 1048576 bytes"},
		{"over_limit", write("big.yaml", "# "+strings.Repeat("x", MaxConfigBytes)+"\n"), "more than 1048576 bytes"},
		{"binary", write("bin.yaml", "\x00\xff\xfe\x01"), "yaml"},
		{"unknown_key", write("unknown.yaml", "nope: 1\n"), "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc, took := allocs.Measure(func() { _, err = LoadConfig(tt.path) })
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func FuzzLoadConfig(f *testing.F) {
	if b, err := os.ReadFile("sample.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(laughs("x")))
	f.Add([]byte("pos:\n  seed: &s 5\ndetect:\n  seed: *s\n"))
	path := filepath.Join(f.TempDir(), "c.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		LoadConfig(path) // no panic, no hang
	})
}
