package rss

import (
	"os"
	"runtime"
	"testing"
)

func TestPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is Linux's")
	}
	before := PeakMiB()
	if before <= 0 {
		t.Fatalf("PeakMiB() = %v on Linux", before)
	}
	// Touch 64 MiB: the high-water mark must rise by about that much.
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 1
	}
	if after := PeakMiB(); after < before+48 {
		t.Fatalf("peak RSS %v MiB after touching 64 MiB, was %v", after, before)
	}
	runtime.KeepAlive(b)
}
