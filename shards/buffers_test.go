package shards

import "testing"

func TestBufferPool(t *testing.T) {
	var bp BufferPool
	a := bp.Get(1000)
	if len(a) != 1000 || cap(a) != bufferQuantum {
		t.Fatalf("Get(1000): len %d cap %d, want 1000 and %d", len(a), cap(a), bufferQuantum)
	}
	a[0] = 7
	bp.Put(a)
	// sync.Pool may drop items at any time (a GC); when it keeps this one,
	// Get must hand back the same memory at the new length.
	if b := bp.Get(2000); len(b) != 2000 {
		t.Fatalf("Get(2000) after Put: len %d", len(b))
	} else if &b[0] != &a[0] && cap(b) != bufferQuantum {
		t.Fatalf("Get(2000): fresh buffer of cap %d, want %d", cap(b), bufferQuantum)
	}

	for _, tc := range []struct {
		name string
		n    int
		want int // capacity
	}{
		{"empty", 0, 0},
		{"one quantum", bufferQuantum, bufferQuantum},
		{"rounded up", bufferQuantum + 1, 2 * bufferQuantum},
		{"too big to pool", maxPooledBuffer + 1, maxPooledBuffer + 1},
	} {
		var fresh BufferPool
		if b := fresh.Get(tc.n); len(b) != tc.n || cap(b) != tc.want {
			t.Errorf("%s: Get(%d): len %d cap %d, want cap %d", tc.name, tc.n, len(b), cap(b), tc.want)
		}
	}

	var nilPool *BufferPool // allocates, never recycles
	b := nilPool.Get(10)
	nilPool.Put(b)
	if len(b) != 10 {
		t.Fatalf("nil pool Get(10): len %d", len(b))
	}
	big := make([]byte, maxPooledBuffer+1)
	bp.Put(big)
	if c := bp.Get(100); cap(c) > maxPooledBuffer {
		t.Fatal("a buffer above maxPooledBuffer came back from the pool")
	}
}
