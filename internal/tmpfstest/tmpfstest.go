//go:build linux

// Package tmpfstest mounts small tmpfs file systems for tests of what
// happens when a disk fills up (issue 18): writes that fail with "no space
// left on device" part-way through a run.
//
// Mounting needs root (CAP_SYS_ADMIN). Where it is not allowed the test is
// skipped with the reason, except under CI (CI set), where it fails, so that
// the full-disk tests never silently stop running there.
package tmpfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes (rounded up to whole pages) on a new
// folder under t.TempDir and returns the folder; it is unmounted when the
// test ends.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, options(size)); err != nil {
		msg := fmt.Sprintf("tmpfstest: cannot mount a tmpfs on %s (%v): the full-disk tests need root (CAP_SYS_ADMIN)", dir, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("tmpfstest: unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Resize changes the size of the tmpfs mounted on dir (by Mount), keeping
// its files: a full disk made roomier.
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, options(size)); err != nil {
		t.Fatalf("tmpfstest: resize the tmpfs on %s to %d bytes: %v", dir, size, err)
	}
}

func options(size int64) string { return fmt.Sprintf("size=%d,mode=0755", size) }
