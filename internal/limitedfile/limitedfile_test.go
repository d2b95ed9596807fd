package limitedfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kediff/kediff/internal/allocs"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.json")
	os.WriteFile(small, []byte(`{"a":1}`), 0o644)
	atLimit := filepath.Join(dir, "at.json")
	os.WriteFile(atLimit, []byte(strings.Repeat("x", 1024)), 0o644)
	over := filepath.Join(dir, "over.json")
	os.WriteFile(over, []byte(strings.Repeat("x", 1025)), 0o644)
	huge := allocs.SparseFile(t, filepath.Join(dir, "huge.json"), 1<<40)
	fifo := filepath.Join(dir, "endless")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() { // an endless writer: the reader must stop at the limit
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				return
			}
		}
	}()
	for _, tt := range []struct {
		name, path string
		n          int    // bytes read
		want       string // in the error
	}{
		{"small", small, 7, ""},
		{"at_limit", atLimit, 1024, ""},
		{"one_over", over, 0, "has more than 1024 bytes, over the limit: a test file"},
		{"sparse_1TB", huge, 0, "has more than 1024 bytes"},
		{"endless_pipe", fifo, 0, "has more than 1024 bytes"},
		{"missing", filepath.Join(dir, "nope"), 0, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			var err error
			alloc, _ := allocs.Measure(func() { data, err = Read(tt.path, 1024, "a test file") })
			switch {
			case tt.want == "" && (err != nil || len(data) != tt.n):
				t.Fatalf("read %d bytes, err %v; want %d", len(data), err, tt.n)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path)):
				t.Fatalf("err = %v, want one naming the file that says %q", err, tt.want)
			}
			if alloc > 1<<20 {
				t.Errorf("allocated %d KiB", alloc>>10)
			}
		})
	}
}
