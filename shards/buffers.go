package shards

import "sync"

// A BufferPool recycles the byte slices that readers fill with members and
// that stages fill with encoded images. A long run then reuses memory that
// is already mapped and warm in cache instead of faulting in fresh pages for
// every image, which measured as much as a tenth of the preprocessing
// path's CPU time. The zero value is ready to use; a nil *BufferPool
// allocates and never recycles.
type BufferPool struct{ p sync.Pool }

// bufferQuantum rounds capacities up so that images of slightly different
// sizes can share buffers.
const bufferQuantum = 16 << 10

// maxPooledBuffer keeps rare huge members out of the pool: they are
// allocated for the one sample and left to the garbage collector.
const maxPooledBuffer = 8 << 20

// Get returns a slice of length n. Its contents are undefined (the caller
// overwrites them).
func (bp *BufferPool) Get(n int) []byte {
	if bp != nil && n <= maxPooledBuffer {
		if v, ok := bp.p.Get().(*[]byte); ok {
			if b := *v; cap(b) >= n {
				return b[:n]
			}
			// Too small for this one: let it go, a new one replaces it.
		}
		return make([]byte, n, (n+bufferQuantum-1)/bufferQuantum*bufferQuantum)
	}
	return make([]byte, n)
}

// Put hands b back for reuse. The caller must not touch b afterwards, nor
// may anything else still refer to it.
func (bp *BufferPool) Put(b []byte) {
	if bp == nil || cap(b) == 0 || cap(b) > maxPooledBuffer {
		return
	}
	b = b[:0]
	bp.p.Put(&b)
}
