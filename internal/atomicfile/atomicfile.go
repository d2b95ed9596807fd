// Package atomicfile writes files through a temporary file in the same folder
// and a rename, so that a reader (or a resumed run) sees the old file or the
// whole new one, never a half-written one. A Batch does the same for files
// that belong together, such as a checkpoint.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes path with fn through a temporary file and a rename.
func Write(path string, fn func(io.Writer) error) error {
	tmp, err := writeTemp(path, fn)
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
// returns its name; on error it removes the file. Errors name path.
func writeTemp(path string, fn func(io.Writer) error) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	bw := bufio.NewWriter(tmp)
	err = fn(bw)
	if err == nil {
		err = bw.Flush()
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

// Batch writes several files that belong together: Add writes each one to a
// temporary file beside it, and Commit renames them all into place, in the
// order they were added (the file that marks the set complete last). A
// failure while adding (a full disk) leaves every file as it was; Discard
// then removes the temporary files. A batch needs room for the new files
// while the old ones still exist.
type Batch struct {
	paths, tmps []string
}

// Add writes path's new content with fn into a temporary file.
func (b *Batch) Add(path string, fn func(io.Writer) error) error {
	tmp, err := writeTemp(path, fn)
	if err != nil {
		return err
	}
	b.paths, b.tmps = append(b.paths, path), append(b.tmps, tmp)
	return nil
}

// AddBytes is Add of a file holding data.
func (b *Batch) AddBytes(path string, data []byte) error {
	return b.Add(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// Commit renames every added file into place, in the order added. Renames
// need no space, so once every Add has succeeded this does not fail on a
// full disk.
func (b *Batch) Commit() error {
	for len(b.paths) > 0 {
		if err := os.Rename(b.tmps[0], b.paths[0]); err != nil {
			return errors.Join(err, b.Discard())
		}
		b.paths, b.tmps = b.paths[1:], b.tmps[1:]
	}
	return nil
}

// Discard removes the temporary files not yet committed. It is safe to call
// after Commit (there is nothing left to remove).
func (b *Batch) Discard() error {
	var errs []error
	for _, tmp := range b.tmps {
		if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	b.paths, b.tmps = nil, nil
	return errors.Join(errs...)
}
