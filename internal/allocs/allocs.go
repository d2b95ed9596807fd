// Package allocs measures what one call costs, for the tests that feed
// parsers hostile input and bound the memory and time they take.
package allocs

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// Measure runs fn after a garbage collection and returns the bytes
// allocated meanwhile (the process's TotalAlloc: run it where nothing else
// allocates) and the wall time fn took.
func Measure(fn func()) (bytes uint64, took time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

// SparseFile creates path of size bytes holding no data (a hole the file
// system does not store) and returns path: a huge input that costs nothing.
func SparseFile(t testing.TB, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Skipf("no sparse file of %d bytes here: %v", size, err)
	}
	return path
}

// WriteFile writes s to path and returns path: a small crafted input.
func WriteFile(t testing.TB, path, s string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
