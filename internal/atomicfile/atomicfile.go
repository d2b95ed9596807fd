// Package atomicfile writes files through a temporary file in the same folder
// and a rename, so that a reader (or a resumed run) sees the old file or the
// whole new one, never a half-written one. A Batch does the same for files
// that belong together, such as a checkpoint, with a commit journal so that
// a process killed between two renames leaves a set that Recover completes.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// Write writes path with fn through a temporary file and a rename.
func Write(path string, fn func(io.Writer) error) error { return write(path, fn, false) }

// write is Write, with the data synced to the disk before the rename if
// sync is set.
func write(path string, fn func(io.Writer) error, sync bool) error {
	tmp, err := writeTemp(path, fn, sync)
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
	tmp, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
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

// createTemp creates a new file dir/prefix<random> with the permissions
// os.Create gives (0666 less the umask), so that the renamed file can be
// read as any other the user writes (os.CreateTemp makes 0600 files: a
// checkpoint shared on a cluster would be unreadable by the group).
func createTemp(dir, prefix string) (*os.File, error) {
	for range 1000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("no free temporary name %s* in %s", prefix, dir)
}
