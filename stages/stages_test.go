package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noLeak fails the test if goroutines started during it are still running a
// moment after it ends (Wait must not return while any stage runs).
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// count emits 0..n-1, or forever when n < 0.
func count(n int) func(ctx context.Context, emit func(int) error) error {
	return func(ctx context.Context, emit func(int) error) error {
		for i := 0; n < 0 || i < n; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestMapSumsWithWorkers(t *testing.T) {
	const n = 2000
	want := int64(n * (n - 1)) // sum of 2*i
	for _, workers := range []int{1, 3, 16} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			noLeak(t)
			p := New(context.Background(), Options{Logger: quiet(), Queue: 8})
			src := Source(p, "src", count(n))
			doubled := Map(p, "double", src, workers, func(_ context.Context, v int) (int, error) { return 2 * v, nil })
			// FlatMap drops odd items and duplicates even ones, keeping the sum.
			flat := FlatMap(p, "flat", doubled, workers, func(_ context.Context, v int, emit func(int) error) error {
				if v%4 != 0 {
					return emit(v) // v/2 odd: pass through
				}
				if err := emit(v / 2); err != nil {
					return err
				}
				return emit(v / 2)
			})
			var sum, items atomic.Int64
			Sink(p, "sum", flat, workers, func(_ context.Context, v int) error {
				sum.Add(int64(v))
				items.Add(1)
				return nil
			})
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			if sum.Load() != want {
				t.Errorf("sum = %d, want %d", sum.Load(), want)
			}
			if got, _ := p.Done(); got != items.Load() {
				t.Errorf("Done samples = %d, sink saw %d", got, items.Load())
			}
		})
	}
}

func TestMapWithOneWorkerKeepsOrder(t *testing.T) {
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet(), Queue: 2})
	src := Source(p, "src", count(500))
	m := Map(p, "id", src, 1, func(_ context.Context, v int) (int, error) { return v, nil })
	next := 0
	Sink(p, "check", m, 1, func(_ context.Context, v int) error {
		if v != next {
			return fmt.Errorf("got %d, want %d", v, next)
		}
		next++
		return nil
	})
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestBackPressureBoundsSource(t *testing.T) {
	const queue, mapWorkers = 4, 2
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet(), Queue: queue})
	var emitted atomic.Int64
	src := Source(p, "src", func(ctx context.Context, emit func(int) error) error {
		for i := range 300 {
			if err := emit(i); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	})
	m := Map(p, "pass", src, mapWorkers, func(_ context.Context, v int) (int, error) { return v, nil })
	var consumed, maxAhead int64
	Sink(p, "slow", m, 1, func(_ context.Context, v int) error {
		consumed++
		maxAhead = max(maxAhead, emitted.Load()-consumed)
		time.Sleep(100 * time.Microsecond)
		return nil
	})
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	// Between the source and the sink an item can only be in one of the two
	// queues or held by a Map worker.
	bound := int64(2*queue + mapWorkers + 2)
	if maxAhead > bound {
		t.Errorf("source got %d items ahead of the sink, want at most %d", maxAhead, bound)
	}
	if maxAhead < queue {
		t.Errorf("source was at most %d items ahead; the queues never filled, so the test shows nothing", maxAhead)
	}
	if s := p.Stats()[0]; s.Blocked <= 0 {
		t.Errorf("source Blocked = %v, want > 0 behind a slow sink", s.Blocked)
	}
}

func TestBatch(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		cfg       BatchConfig
		pauseAt   int // the source waits after this many items until the sink has seen them all; 0: no pause
		short     bool
		wantSizes []int
		wantErr   string
	}{
		{name: "full_batches_then_tail", n: 10, cfg: BatchConfig{Size: 4}, wantSizes: []int{4, 4, 2}},
		{name: "size_one", n: 3, cfg: BatchConfig{Size: 1}, wantSizes: []int{1, 1, 1}},
		{name: "size_zero_means_one", n: 2, cfg: BatchConfig{}, wantSizes: []int{1, 1}},
		{name: "max_wait_flushes_partial_batch", n: 5, pauseAt: 3,
			cfg: BatchConfig{Size: 10, MaxWait: 20 * time.Millisecond}, wantSizes: []int{3, 2}},
		{name: "result_count_mismatch_is_error", n: 8, cfg: BatchConfig{Size: 4}, short: true,
			wantErr: "stages: batch: batch of 4 items returned 3 results, want one per item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			p := New(context.Background(), Options{Logger: quiet(), Queue: 16})
			seen := make(chan struct{}, tt.n)
			src := Source(p, "src", func(ctx context.Context, emit func(int) error) error {
				for i := range tt.n {
					if i == tt.pauseAt && i > 0 {
						for range i {
							select {
							case <-seen:
							case <-ctx.Done():
								return ctx.Err()
							}
						}
					}
					if err := emit(i); err != nil {
						return err
					}
				}
				return nil
			})
			var sizes []int
			b := Batch(p, "batch", src, tt.cfg, func(_ context.Context, v []int) ([]string, error) {
				sizes = append(sizes, len(v)) // one worker: no lock needed
				out := make([]string, len(v))
				for i, x := range v {
					out[i] = fmt.Sprint(x)
				}
				if tt.short {
					out = out[1:]
				}
				return out, nil
			})
			var got []string
			Sink(p, "collect", b, 1, func(_ context.Context, v string) error {
				got = append(got, v)
				seen <- struct{}{}
				return nil
			})
			err := p.Wait()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.wantSizes) {
				t.Errorf("batch sizes = %v, want %v", sizes, tt.wantSizes)
			}
			for i, v := range got {
				if v != fmt.Sprint(i) {
					t.Fatalf("output %d = %s: order within and across batches not kept", i, v)
				}
			}
			if len(got) != tt.n {
				t.Errorf("%d outputs, want %d", len(got), tt.n)
			}
			if s := p.Stats()[1]; s.In != int64(tt.n) || s.Out != int64(tt.n) {
				t.Errorf("batch stage In/Out = %d/%d, want %d", s.In, s.Out, tt.n)
			}
		})
	}
}

func TestBatchWorkersSumAll(t *testing.T) {
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet(), Queue: 4})
	src := Source(p, "src", count(1000))
	b := Batch(p, "batch", src, BatchConfig{Size: 7, MaxWait: time.Millisecond, Workers: 3},
		func(_ context.Context, v []int) ([]int, error) { return v, nil })
	var sum atomic.Int64
	Sink(p, "sum", b, 2, func(_ context.Context, v int) error { sum.Add(int64(v)); return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if sum.Load() != 999*1000/2 {
		t.Errorf("sum = %d", sum.Load())
	}
}

var errBoom = errors.New("boom")

func TestErrorCancelsWholeRun(t *testing.T) {
	tests := []struct {
		name    string
		failIn  string // stage that returns errBoom after some items
		wantMsg string
	}{
		{"middle_map", "mid", "stages: mid: boom"},
		{"batch", "batch", "stages: batch: boom"},
		{"sink", "sink", "stages: sink: boom"},
		{"flatmap", "flat", "stages: flat: boom"},
		{"source", "src", "stages: src: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			p := New(context.Background(), Options{Logger: quiet(), Queue: 4})
			fail := func(stage string, v int) error {
				if stage == tt.failIn && v >= 50 {
					return errBoom
				}
				return nil
			}
			// The source runs forever unless cancelled.
			src := Source(p, "src", func(ctx context.Context, emit func(int) error) error {
				for i := 0; ; i++ {
					if err := fail("src", i); err != nil {
						return err
					}
					if err := emit(i); err != nil {
						return err
					}
				}
			})
			mid := Map(p, "mid", src, 3, func(_ context.Context, v int) (int, error) { return v, fail("mid", v) })
			flat := FlatMap(p, "flat", mid, 2, func(_ context.Context, v int, emit func(int) error) error {
				if err := fail("flat", v); err != nil {
					return err
				}
				return emit(v)
			})
			b := Batch(p, "batch", flat, BatchConfig{Size: 5, Workers: 2}, func(_ context.Context, v []int) ([]int, error) {
				for _, x := range v {
					if err := fail("batch", x); err != nil {
						return nil, err
					}
				}
				return v, nil
			})
			Sink(p, "sink", b, 2, func(_ context.Context, v int) error { return fail("sink", v) })

			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return after a stage failed")
			}
			if !errors.Is(err, errBoom) || err.Error() != tt.wantMsg {
				t.Errorf("err = %v, want %q wrapping errBoom", err, tt.wantMsg)
			}
		})
	}
}

func TestPanicBecomesError(t *testing.T) {
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet()})
	src := Source(p, "src", count(-1))
	m := Map(p, "decode", src, 2, func(_ context.Context, v int) (int, error) {
		if v == 10 {
			panic("bad pixel")
		}
		return v, nil
	})
	Sink(p, "sink", m, 1, func(context.Context, int) error { return nil })
	err := p.Wait()
	if err == nil || err.Error() != "stages: decode: panic: bad pixel" {
		t.Fatalf("err = %v, want stages: decode: panic: bad pixel", err)
	}
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(string(pe.Stack), "TestPanicBecomesError") {
		t.Errorf("want a *PanicError with the panicking function's stack, got %#v", pe)
	}
}

func TestPanicInSourceBecomesError(t *testing.T) {
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet()})
	src := Source(p, "read", func(ctx context.Context, emit func(int) error) error {
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil
	})
	Sink(p, "sink", src, 1, func(context.Context, int) error { return nil })
	err := p.Wait()
	if err == nil || !strings.HasPrefix(err.Error(), "stages: read: panic: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestExternalCancel(t *testing.T) {
	cause := errors.New("user pressed ctrl-c")
	tests := []struct {
		name   string
		cancel func(ctx context.Context) (context.Context, func())
		want   error
	}{
		{"cancel", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancel(ctx)
			return ctx, cancel
		}, context.Canceled},
		{"cancel_with_cause", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(ctx)
			return ctx, func() { cancel(cause) }
		}, cause},
		{"deadline", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			context.AfterFunc(ctx, cancel) // release the timer once it has fired
			return ctx, func() {}          // expires on its own
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			ctx, cancel := tt.cancel(context.Background())
			p := New(ctx, Options{Logger: quiet(), Queue: 4})
			src := Source(p, "src", count(-1))
			m := Map(p, "mid", src, 2, func(_ context.Context, v int) (int, error) { return v, nil })
			var once sync.Once
			var n atomic.Int64
			Sink(p, "sink", m, 1, func(ctx context.Context, v int) error {
				if n.Add(1) == 10 {
					once.Do(func() { go cancel() })
				}
				return nil
			})
			err := p.Wait()
			if err != tt.want {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// A source that ignores emit's error and returns nil must still make Wait
// report the cancellation rather than a clean, truncated run.
func TestCancelNotHiddenBySloppySource(t *testing.T) {
	noLeak(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx, Options{Logger: quiet(), Queue: 1})
	src := Source(p, "src", func(ctx context.Context, emit func(int) error) error {
		for i := range 1000 {
			if i == 5 {
				cancel()
			}
			if emit(i) != nil {
				return nil
			}
		}
		return nil
	})
	Sink(p, "sink", src, 1, func(context.Context, int) error { return nil })
	if err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestStats(t *testing.T) {
	noLeak(t)
	const n, workers, work = 60, 2, 2 * time.Millisecond
	p := New(context.Background(), Options{Logger: quiet(), Queue: 5})
	src := Source(p, "src", count(n))
	m := Map(p, "work", src, workers, func(_ context.Context, v int) (int, error) {
		time.Sleep(work)
		return v, nil
	})
	Sink(p, "sink", m, 1, func(context.Context, int) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if len(st) != 3 || st[0].Name != "src" || st[1].Name != "work" || st[2].Name != "sink" {
		t.Fatalf("stats names/order wrong: %+v", st)
	}
	wantIO := [][2]int64{{0, n}, {n, n}, {n, n}}
	for i, s := range st {
		if s.In != wantIO[i][0] || s.Out != wantIO[i][1] {
			t.Errorf("%s: In/Out = %d/%d, want %v", s.Name, s.In, s.Out, wantIO[i])
		}
		if s.Wall <= 0 || s.Busy < 0 || s.Busy > s.Wall*time.Duration(s.Workers) {
			t.Errorf("%s: implausible Busy %v for Wall %v x %d workers", s.Name, s.Busy, s.Wall, s.Workers)
		}
	}
	w := st[1]
	if w.Workers != workers || w.QueueCap != 5 || w.QueueLen != 0 {
		t.Errorf("work: Workers %d QueueCap %d QueueLen %d", w.Workers, w.QueueCap, w.QueueLen)
	}
	if w.Busy < n*work {
		t.Errorf("work: Busy %v < %d x %v of sleeping", w.Busy, n, work)
	}
	// The sleeping stage is the bottleneck: well used, and busier than the sink.
	if u := w.Utilization(); u < 0.5 || u > 1 {
		t.Errorf("work: Utilization %.2f, want in [0.5, 1]", u)
	}
	if st[2].Utilization() >= w.Utilization() {
		t.Errorf("sink utilisation %.2f >= work %.2f", st[2].Utilization(), w.Utilization())
	}
}

// item reports its own sample and reject counts, like a pipeline's
// sample-or-marker type.
type item struct{ samples, rejects int }

func (it item) Progress() (samples, rejects int) { return it.samples, it.rejects }

func TestProgressCounting(t *testing.T) {
	noLeak(t)
	p := New(context.Background(), Options{Logger: quiet()})
	src := Source(p, "src", func(ctx context.Context, emit func(item) error) error {
		for i := range 100 {
			it := item{1, 0}
			switch {
			case i%10 == 0:
				it = item{1, 1} // rejected sample
			case i%25 == 1:
				it = item{0, 0} // end-of-shard marker
			}
			if err := emit(it); err != nil {
				return err
			}
		}
		return nil
	})
	m := Map(p, "pass", src, 2, func(_ context.Context, v item) (item, error) { return v, nil })
	Sink(p, "sink", m, 2, func(context.Context, item) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	// 100 items: 4 markers (i = 1, 26, 51, 76), 10 rejects.
	samples, rejects := p.Done()
	if samples != 96 || rejects != 10 {
		t.Errorf("Done = %d, %d; want 96, 10", samples, rejects)
	}
	for _, s := range p.Stats() {
		if s.Out != 100 || s.Samples != 96 || s.Rejects != 10 {
			t.Errorf("%s: Out %d Samples %d Rejects %d; want 100, 96, 10", s.Name, s.Out, s.Samples, s.Rejects)
		}
	}
}

func TestPlainItemsCountAsOneSample(t *testing.T) {
	p := New(context.Background(), Options{Logger: quiet()})
	Sink(p, "sink", Source(p, "src", count(42)), 1, func(context.Context, int) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if s, r := p.Done(); s != 42 || r != 0 {
		t.Errorf("Done = %d, %d; want 42, 0", s, r)
	}
}

func TestSinkErrorDoesNotCountItem(t *testing.T) {
	p := New(context.Background(), Options{Logger: quiet()})
	Sink(p, "sink", Source(p, "src", count(5)), 1, func(_ context.Context, v int) error {
		if v == 3 {
			return errBoom
		}
		return nil
	})
	if err := p.Wait(); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if s, _ := p.Done(); s != 3 {
		t.Errorf("Done samples = %d, want 3", s)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(p *Pipeline)
		want  string
	}{
		{"no_stages", func(*Pipeline) {}, "stages: pipeline has no stages"},
		{"stream_without_consumer", func(p *Pipeline) {
			src := Source(p, "src", count(3))
			Map(p, "orphan", src, 1, func(_ context.Context, v int) (int, error) { return v, nil })
		}, `stages: output of "orphan" has no consumer (end it with a Sink)`},
		{"stream_with_two_consumers", func(p *Pipeline) {
			src := Source(p, "src", count(3))
			Sink(p, "a", src, 1, func(context.Context, int) error { return nil })
			Sink(p, "b", src, 1, func(context.Context, int) error { return nil })
		}, `stages: b: output of "src" is already consumed by "a" (a stream has one consumer; fan out inside a stage)`},
		{"stream_of_other_pipeline", func(p *Pipeline) {
			other := New(context.Background(), Options{})
			src := Source(other, "src", count(3))
			Sink(p, "sink", src, 1, func(context.Context, int) error { return nil })
		}, `stages: sink: input stream of "src" belongs to another pipeline`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noLeak(t)
			p := New(context.Background(), Options{Logger: quiet()})
			tt.build(p)
			if err := p.Wait(); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWaitTwiceReturnsSameResult(t *testing.T) {
	p := New(context.Background(), Options{Logger: quiet()})
	Sink(p, "sink", Source(p, "src", count(3)), 1, func(_ context.Context, v int) error {
		if v == 2 {
			return errBoom
		}
		return nil
	})
	err1, err2 := p.Wait(), p.Wait()
	if err1 == nil || err1 != err2 {
		t.Errorf("Wait = %v then %v", err1, err2)
	}
}

// logRecords collects slog records for inspection.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

func TestLogsOneRecordPerStage(t *testing.T) {
	h := &logRecords{}
	p := New(context.Background(), Options{Name: "prep", Logger: slog.New(h)})
	m := Map(p, "mid", Source(p, "src", count(7)), 2, func(_ context.Context, v int) (int, error) { return v, nil })
	Sink(p, "sink", m, 1, func(context.Context, int) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.recs {
		if r.Level != slog.LevelInfo || r.Message != "stage done" {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		got = append(got, attrs["pipeline"]+"/"+attrs["stage"]+" out="+attrs["out"])
		for _, k := range []string{"workers", "in", "rejects", "busy", "wall", "utilization"} {
			if _, ok := attrs[k]; !ok {
				t.Errorf("record for %s lacks %q", attrs["stage"], k)
			}
		}
	}
	want := "[prep/src out=7 prep/mid out=7 prep/sink out=7]"
	if fmt.Sprint(got) != want {
		t.Errorf("stage records = %v, want %s", got, want)
	}
}
