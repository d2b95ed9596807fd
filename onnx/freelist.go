package onnx

import "sync"

// FreeList keeps a few values of *T for reuse, like sync.Pool, except that
// garbage collection does not empty it: the model stages' input batches
// (about 1.5 MB for eight 128x128 images) and pre-processing scratch are
// then reused for the whole run instead of being allocated, zeroed and
// faulted in again after every collection. The zero value is ready; Get
// returns new(T) when the list is empty, Put drops values beyond the first
// MaxFree held.
type FreeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

// MaxFree is the most values a FreeList holds: enough for the few workers
// of a stage (and its batches in flight).
const MaxFree = 8

// Get takes a value from the list, or returns new(T).
func (l *FreeList[T]) Get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		v := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return v
	}
	return new(T)
}

// Put returns v to the list.
func (l *FreeList[T]) Put(v *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < MaxFree {
		l.free = append(l.free, v)
	}
}
