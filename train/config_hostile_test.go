package train

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/allocs"
)

// Hostile train configs: huge, deeply nested, binary. Each is a clear
// error with bounded memory.
func TestReadTrainConfigHostile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string { return allocs.WriteFile(t, filepath.Join(dir, name), s) }
	sparse := allocs.SparseFile(t, filepath.Join(dir, "huge.json"), 1<<40) // 1 TB claimed, no disk used
	tests := []struct{ name, path, want string }{
		{"huge_file", sparse, "more than 1048576 bytes"},
		{"over_limit", write("big.json", `{"model":"tiny","x":"`+strings.Repeat("a", MaxConfigBytes)+`"}`), "more than 1048576 bytes"},
		{"deep_nesting", write("deep.json", `{"model_config":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"}"), "exceeded max depth"},
		{"binary", write("bin.json", "\x00\xff"), "invalid character"},
		{"unknown_field", write("unknown.json", `{"nope":1}`), "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc, _ := allocs.Measure(func() { _, err = ReadTrainConfig(tt.path) })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
		})
	}
}
