package shards

import "testing"

func TestBufferPool(t *testing.T) {
	var bp BufferPool
	a := bp.Get(1000)
	if len(a) != 1000 || cap(a) != 1<<minClass {
		t.Fatalf("Get(1000): len %d cap %d, want 1000 and %d", len(a), cap(a), 1<<minClass)
	}
	bp.Put(a)
	if b := bp.Get(2000); len(b) != 2000 || &b[0] != &a[0] {
		t.Fatalf("Get(2000) after Put: len %d, same memory %v", len(b), &b[0] == &a[0])
	}

	for _, tc := range []struct {
		name string
		n    int
		want int // capacity
	}{
		{"empty", 0, 1 << minClass},
		{"one class", 1 << minClass, 1 << minClass},
		{"rounded up", 1<<minClass + 1, 1 << (minClass + 1)},
		{"57 KB image", 57 << 10, 64 << 10},
		{"too big to pool", 1<<maxClass + 1, 1<<maxClass + 1},
	} {
		var fresh BufferPool
		if b := fresh.Get(tc.n); len(b) != tc.n || cap(b) != tc.want {
			t.Errorf("%s: Get(%d): len %d cap %d, want cap %d", tc.name, tc.n, len(b), cap(b), tc.want)
		}
	}

	// A foreign buffer serves the largest class its capacity covers.
	var fp BufferPool
	foreign := make([]byte, 0, 100<<10)
	fp.Put(foreign)
	if b := fp.Get(64 << 10); cap(b) != 100<<10 {
		t.Errorf("a 100 KiB buffer was not reused for 64 KiB (got cap %d)", cap(b))
	}
	fp.Put(make([]byte, 0, 100<<10))
	if b := fp.Get(65 << 10); cap(b) != 128<<10 {
		t.Errorf("Get(65 KiB) returned cap %d, want a fresh 128 KiB", cap(b))
	}

	// Bounded: far more Puts than Gets keep at most maxPooledBytes a class.
	var bounded BufferPool
	for range 10000 {
		bounded.Put(make([]byte, 0, 64<<10))
	}
	if n := len(bounded.free[16]); n*(64<<10) > maxPooledBytes {
		t.Errorf("pool kept %d buffers of 64 KiB, over %d bytes", n, maxPooledBytes)
	}

	var nilPool *BufferPool // allocates, never recycles
	b := nilPool.Get(10)
	nilPool.Put(b)
	if len(b) != 10 {
		t.Fatalf("nil pool Get(10): len %d", len(b))
	}
}
