package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// JournalFile is the commit journal a Batch writes into its folder while it
// renames its files into place: it lists every rename, so that Recover can
// finish a commit that a kill -9 or a power cut interrupted.
const JournalFile = ".atomicfile-commit.json"

// Batch writes several files of one folder that belong together: Add writes
// each one to a temporary file beside it (synced to the disk), and Commit
// puts them all in place. A failure while adding (a full disk) leaves every
// file as it was; Discard then removes the temporary files. A batch needs
// room for the new files while the old ones still exist.
//
// Commit first writes the journal (the commit point), then renames the files
// in the order added, then removes the journal. A process that dies between
// two renames leaves the journal behind; Recover, which readers of the
// folder call first (and Add does before a new batch), finishes the renames.
// So a reader sees the whole old set or the whole new one.
type Batch struct {
	dir         string
	paths, tmps []string
}

// journal is JournalFile's content: base names in dir, [temporary, final].
type journal struct {
	Renames [][2]string `json:"renames"`
}

// Add writes path's new content with fn into a temporary file. Every file
// of a batch must be in the same folder.
func (b *Batch) Add(path string, fn func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if b.dir == "" {
		if err := Recover(dir); err != nil {
			return err
		}
		b.dir = dir
	} else if dir != b.dir {
		return fmt.Errorf("write %s: a batch holds files of one folder, and this one's is %s", path, b.dir)
	}
	// A batch killed before its journal was written left its temporary
	// files; the folder has one writer of batches, so they are garbage.
	prefix := "." + filepath.Base(path) + ".tmp"
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) && !e.IsDir() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	tmp, err := writeTemp(path, fn, true)
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

// TestHookAfterRename, when a test sets it, runs after the i-th rename of
// every Commit, so that tests (here and in the packages that write batches)
// can kill the process inside the window the journal covers. Nil otherwise.
var TestHookAfterRename func(i int)

// Commit puts every added file in place. Once the journal is written
// nothing needs space, so once every Add has succeeded a full disk does not
// make it fail.
func (b *Batch) Commit() error {
	if len(b.paths) == 0 {
		return nil
	}
	var j journal
	for i := range b.paths {
		j.Renames = append(j.Renames, [2]string{filepath.Base(b.tmps[i]), filepath.Base(b.paths[i])})
	}
	raw, _ := json.Marshal(j)
	jpath := filepath.Join(b.dir, JournalFile)
	err := write(jpath, func(w io.Writer) error { _, err := w.Write(raw); return err }, true)
	if err == nil {
		err = syncDir(b.dir)
	}
	if err != nil {
		os.Remove(jpath)
		return errors.Join(fmt.Errorf("commit %s: %w", b.dir, err), b.Discard())
	}
	// Committed: from here the temporary files belong to the journal, and
	// Discard must not remove them.
	paths, tmps := b.paths, b.tmps
	b.paths, b.tmps = nil, nil
	for i := range paths {
		if err := os.Rename(tmps[i], paths[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Renames in one folder fail only if the folder itself went
			// away or became read-only; the journal lets Recover finish.
			return fmt.Errorf("commit %s: %w (the new files stay in their temporary names; reading the folder again finishes the commit)", b.dir, err)
		}
		if TestHookAfterRename != nil {
			TestHookAfterRename(i)
		}
	}
	if err := syncDir(b.dir); err != nil {
		return fmt.Errorf("commit %s: %w", b.dir, err)
	}
	if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("commit %s: %w", b.dir, err)
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

// Recover finishes a Batch commit in dir that was interrupted between its
// renames (the process killed), and does nothing when there is none. Call it
// before reading a folder that batches write. It needs write access to dir
// only when there is a commit to finish.
func Recover(dir string) error {
	jpath := filepath.Join(dir, JournalFile)
	raw, err := os.ReadFile(jpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finish the interrupted write of %s: %w", dir, err)
	}
	var j journal
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("finish the interrupted write of %s: %s is not a commit journal (%v); remove it if you wrote it", dir, jpath, err)
	}
	for _, r := range j.Renames {
		// The journal names files of this folder only, each temporary
		// file the one atomicfile made for its final name.
		tmp, final := r[0], r[1]
		if !localName(tmp) || !localName(final) || !strings.HasPrefix(tmp, "."+final+".tmp") {
			return fmt.Errorf("finish the interrupted write of %s: %s renames %q to %q, which is not a rename atomicfile makes; remove the journal if you wrote it", dir, jpath, tmp, final)
		}
	}
	for _, r := range j.Renames {
		err := os.Rename(filepath.Join(dir, r[0]), filepath.Join(dir, r[1]))
		if err != nil && !errors.Is(err, os.ErrNotExist) { // renamed before the kill
			return fmt.Errorf("finish the interrupted write of %s (make the folder writable, or read a copy): %w", dir, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("finish the interrupted write of %s: %w", dir, err)
	}
	if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("finish the interrupted write of %s: %w", dir, err)
	}
	return nil
}

func localName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && s != JournalFile
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
