package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := WriteBytes(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file holds %q after a failed write, want the old content", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the folder, want only f.txt (temporary file left behind)", len(ents))
	}
	if err := WriteBytes(filepath.Join(dir, "missing", "f"), nil); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

// Written files get the permissions os.Create gives (0666 less the umask),
// not os.CreateTemp's 0600, whether written alone or in a batch.
func TestWrittenFilesHaveCreatePermissions(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	f, err := os.Create(ref)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, _ := os.Stat(ref)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := WriteBytes(a, []byte("a")); err != nil {
		t.Fatal(err)
	}
	var bt Batch
	if err := bt.AddBytes(b, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		got, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode().Perm() != want.Mode().Perm() {
			t.Errorf("%s has mode %v, want %v (as os.Create makes)", filepath.Base(p), got.Mode().Perm(), want.Mode().Perm())
		}
	}
}
