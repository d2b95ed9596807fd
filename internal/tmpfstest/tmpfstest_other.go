//go:build !linux

package tmpfstest

import (
	"os"
	"testing"
)

// Mount skips the test (fails it under CI): tmpfs mounts are Linux only.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	msg := "tmpfstest: the full-disk tests mount a tmpfs, which needs Linux"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Resize is not reached: Mount has skipped the test.
func Resize(t testing.TB, dir string, size int64) { t.Helper() }
