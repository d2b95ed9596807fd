package caption

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/allocs"
)

// Hostile tokenizer.json and config files: huge, endless, deeply nested,
// ids that would make a huge table, malformed. Each is a clear error, read
// with bounded memory and time.
func TestTokenizerHostile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string { return allocs.WriteFile(t, filepath.Join(dir, name), s) }
	sparse := allocs.SparseFile(t, filepath.Join(dir, "huge.json"), 1<<40) // 1 TB claimed, no disk used
	fifo := filepath.Join(dir, "fifo.json")                                // a stream of unknown size
	endless := false
	if err := mkfifo(fifo); err == nil {
		endless = true
		go func() {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			defer w.Close()
			buf := []byte(strings.Repeat(`{"a":`, 1<<14))
			for range (MaxTokenizerBytes / len(buf)) + 2 {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	tests := []struct{ name, path, want string }{
		{"ok", write("ok.json", wordPieceJSON), ""},
		{"huge_file", sparse, "over the limit"},
		{"deep_nesting", write("deep.json", strings.Repeat("[", 100000)+strings.Repeat("]", 100000)), "not valid tokenizers JSON"},
		{"deep_nesting_in_model", write("deepm.json", `{"model":{"type":"BPE","x":`+strings.Repeat(`{"a":`, 20000)+"1"+strings.Repeat("}", 20000)+`}}`), "not valid tokenizers JSON"},
		{"huge_id", write("id.json", `{"model":{"type":"BPE","vocab":{"a":4194303}}}`), "want 0..1025 (twice the 1 tokens"},
		{"negative_id", write("neg.json", `{"model":{"type":"BPE","vocab":{"a":-1}}}`), "has id -1"},
		{"id_overflow", write("ovf.json", `{"model":{"type":"BPE","vocab":{"a":9223372036854775808}}}`), "not valid tokenizers JSON"},
		{"added_huge_id", write("added.json", `{"model":{"type":"BPE","vocab":{"a":0}},"added_tokens":[{"id":3000000,"content":"x"}]}`), "want 0..1027"},
		{"truncated", write("trunc.json", wordPieceJSON[:len(wordPieceJSON)/2]), "not valid tokenizers JSON"},
		{"not_json", write("bin.json", "\x00\xff\xfe"), "not valid tokenizers JSON"},
		{"wrong_types", write("types.json", `{"model":{"type":"BPE","vocab":["a"]}}`), "not valid tokenizers JSON"},
		{"unknown_model", write("unigram.json", `{"model":{"type":"Unigram"}}`), "not supported"},
		{"bad_merge", write("merge.json", `{"model":{"type":"BPE","vocab":{"a":0},"merges":[[1,2,3]]}}`), "merge 0"},
	}
	if endless {
		tests = append(tests, struct{ name, path, want string }{"endless_stream", fifo, "over the limit"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc, took := allocs.Measure(func() { _, err = LoadTokenizer(tt.path) })
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			// The endless stream is read up to the limit, no further.
			limit := uint64(64 << 20)
			if tt.name == "endless_stream" {
				limit = 3 * MaxTokenizerBytes
			}
			if alloc > limit {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	// preprocessor_config.json and the generation configs have their own,
	// smaller limit.
	big := write("preprocessor_config.json", `{"x":"`+strings.Repeat("a", MaxConfigBytes)+`"}`)
	if _, err := LoadPreprocessor(big); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("huge preprocessor config: %v", err)
	}
}
