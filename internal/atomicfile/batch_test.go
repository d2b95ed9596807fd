package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A batch that fails part-way leaves every file as it was and no temporary
// file; a committed one replaces them all.
func TestBatchAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := WriteBytes(p, []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		x, _ := os.ReadFile(a)
		y, _ := os.ReadFile(b)
		return string(x) + "," + string(y)
	}

	var bt Batch
	if err := bt.AddBytes(a, []byte("new")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := bt.Add(b, func(w io.Writer) error { w.Write([]byte("half")); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if err := bt.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "old,old" {
		t.Errorf("after a failed batch the files hold %q, want old,old", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the folder after Discard, want a and b only", len(ents))
	}

	bt = Batch{}
	if err := bt.AddBytes(a, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := bt.AddBytes(b, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "old,old" {
		t.Errorf("before Commit the files hold %q, want old,old", got)
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := bt.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "new,new" {
		t.Errorf("after Commit the files hold %q, want new,new", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the folder after Commit, want a and b only", len(ents))
	}
}
