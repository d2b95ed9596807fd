// Package rss reads a process's peak resident memory.
package rss

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// PeakMiB is this process's peak resident memory (VmHWM in
// /proc/self/status), 0 where that is unavailable. Unlike getrusage's
// ru_maxrss it starts at exec, so it never reports the memory of a parent
// that started kediff (Go's exec shares the parent's memory until then).
func PeakMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
