package shards

import (
	"math/bits"
	"sync"
)

// A BufferPool recycles the byte slices that readers fill with members and
// that stages fill with encoded images. A long run then reuses memory that
// is already mapped and warm in cache instead of faulting in fresh pages for
// every image, which measured as much as a tenth of the preprocessing
// path's CPU time.
//
// Buffers are kept by power-of-two capacity class, and each class keeps at
// most maxPooledBytes of them: a pool that only grew (sync.Pool does, when
// more is put than taken between collections, and its contents then raise
// the garbage collector's heap target) would defeat the flat memory the
// pipeline promises. The zero value is ready to use; a nil *BufferPool
// allocates and never recycles.
type BufferPool struct {
	mu   sync.Mutex
	free [maxClass + 1][][]byte
}

const (
	minClass       = 14 // 16 KiB: smaller buffers are not worth pooling
	maxClass       = 23 // 8 MiB: rare huge members are left to the GC
	maxPooledBytes = 8 << 20
)

// class is the smallest class whose buffers hold n bytes.
func class(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}

// Get returns a slice of length n. Its contents are undefined (the caller
// overwrites them).
func (bp *BufferPool) Get(n int) []byte {
	c := class(n)
	if bp == nil || c > maxClass {
		return make([]byte, n)
	}
	bp.mu.Lock()
	if l := len(bp.free[c]); l > 0 {
		b := bp.free[c][l-1]
		bp.free[c][l-1] = nil
		bp.free[c] = bp.free[c][:l-1]
		bp.mu.Unlock()
		return b[:n]
	}
	bp.mu.Unlock()
	return make([]byte, n, 1<<c)
}

// Put hands b back for reuse. The caller must not touch b afterwards, nor
// may anything else still refer to it.
func (bp *BufferPool) Put(b []byte) {
	if bp == nil || cap(b) < 1<<minClass {
		return
	}
	c := bits.Len(uint(cap(b))) - 1 // the largest class b can serve
	if c > maxClass {
		return
	}
	bp.mu.Lock()
	if len(bp.free[c]) < max(4, maxPooledBytes>>c) {
		bp.free[c] = append(bp.free[c], b[:0])
	}
	bp.mu.Unlock()
}
