package kernels

import (
	"runtime"
	"sync"
)

// The worker pool is process-wide and lives as long as the process: kernels are
// called thousands of times per training step, so starting goroutines per call
// would cost more than small ops themselves. Each parallelFor call owns the
// chunks it hands out and waits for all of them before returning.
var pool struct {
	once sync.Once
	jobs chan func()
}

func startPool() {
	pool.jobs = make(chan func()) // unbuffered: a send succeeds only if a worker is idle
	for i := 0; i < runtime.GOMAXPROCS(0)-1; i++ {
		go func() {
			for job := range pool.jobs {
				job()
			}
		}()
	}
}

// parallelFor splits [0, n) into at most GOMAXPROCS contiguous chunks of at least
// minChunk items and runs fn on each. A chunk that finds no idle worker runs on
// the calling goroutine, so nested calls (a worker calling parallelFor) never
// deadlock: nobody ever waits for a chunk that is not already running.
func parallelFor(n, minChunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if minChunk < 1 {
		minChunk = 1
	}
	chunks := min(runtime.GOMAXPROCS(0), (n+minChunk-1)/minChunk)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	pool.once.Do(startPool)
	var wg sync.WaitGroup
	for c := 1; c < chunks; c++ {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		wg.Add(1)
		job := func() {
			defer wg.Done()
			fn(lo, hi)
		}
		select {
		case pool.jobs <- job:
		default:
			job()
		}
	}
	fn(0, n/chunks)
	wg.Wait()
}

// grainFor returns a minimum chunk size so that each chunk does at least about
// 32k element operations; below that, goroutine hand-off costs more than it saves.
func grainFor(workPerItem int) int {
	if workPerItem <= 0 {
		return minChunkWork
	}
	return max(1, minChunkWork/workPerItem)
}

// minChunkWork is a variable so tests can set it to 1 and make even tiny
// shapes split across workers, exercising the chunk boundaries.
var minChunkWork = 1 << 15
