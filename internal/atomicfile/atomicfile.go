// Package atomicfile writes files through a temporary file in the same folder
// and a rename, so that a reader (or a resumed run) sees the old file or the
// whole new one, never a half-written one. A Batch does the same for files
// that belong together, such as a checkpoint, with a commit journal so that
// a process killed between two renames leaves a set that Recover completes.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes path with fn through a temporary file and a rename.
func Write(path string, fn func(io.Writer) error) error {
	tmp, err := writeTemp(path, fn, false)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// WriteBytes writes b to path through a temporary file and a rename.
func WriteBytes(path string, b []byte) error {
	return Write(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// writeTemp writes fn's output to a new temporary file beside path and
// returns its name; on error it removes the file. With sync set the data
// reach the disk before it returns. Errors name path.
func writeTemp(path string, fn func(io.Writer) error, sync bool) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	bw := bufio.NewWriter(tmp)
	err = fn(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp.Name(), nil
}

