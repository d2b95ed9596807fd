package stages

import (
	"context"
	"fmt"
	"time"
)

// Source adds a stage that produces items by calling emit, and returns their
// stream. fn runs once, in one goroutine, and may call emit from several
// goroutines of its own. emit blocks while the output queue is full and
// returns the context's error once the run is cancelled; fn should then
// return that error. The stream ends when fn returns, so emit must not be
// called after that.
func Source[T any](p *Pipeline, name string, fn func(ctx context.Context, emit func(T) error) error) *Stream[T] {
	st := p.addStage(name, 1)
	out := newStream[T](p, name)
	st.start = func(ctx context.Context) {
		p.spawn(st, func(int) error {
			t0 := time.Now()
			st.running.Store(t0.UnixNano())
			defer func() { // deferred so that a panicking fn is still accounted
				// emit may be called from several goroutines, so the
				// waits are summed in st.blocked (the source is its only
				// writer) rather than in a local.
				st.busy.Store(int64(max(0, time.Since(t0)-time.Duration(st.blocked.Load()))))
				st.running.Store(0)
			}()
			return fn(ctx, func(v T) error {
				_, err := send(p, ctx, st, out.ch, v)
				return err
			})
		}, func() { close(out.ch) })
	}
	return out
}

// Map adds a stage in which workers goroutines each take an item, call fn
// and pass its result on. Outputs leave in the order workers finish, so the
// order of items is kept only with one worker.
func Map[In, Out any](p *Pipeline, name string, in *Stream[In], workers int, fn func(ctx context.Context, v In) (Out, error)) *Stream[Out] {
	st := p.addStage(name, workers)
	src := consume(p, st, in)
	out := newStream[Out](p, name)
	st.start = func(ctx context.Context) {
		p.spawn(st, func(int) error {
			for {
				v, ok, err := recv(p, ctx, st, src)
				if !ok {
					return err
				}
				t0 := time.Now()
				r, err := fn(ctx, v)
				st.busy.Add(int64(time.Since(t0)))
				if err != nil {
					return err
				}
				if _, err := send(p, ctx, st, out.ch, r); err != nil {
					return err
				}
			}
		}, func() { close(out.ch) })
	}
	return out
}

// FlatMap is Map for functions that turn one item into any number of items
// (none, to drop it), passed on with emit as in Source.
func FlatMap[In, Out any](p *Pipeline, name string, in *Stream[In], workers int, fn func(ctx context.Context, v In, emit func(Out) error) error) *Stream[Out] {
	st := p.addStage(name, workers)
	src := consume(p, st, in)
	out := newStream[Out](p, name)
	st.start = func(ctx context.Context) {
		p.spawn(st, func(int) error {
			for {
				v, ok, err := recv(p, ctx, st, src)
				if !ok {
					return err
				}
				var waited time.Duration
				t0 := time.Now()
				err = fn(ctx, v, func(r Out) error {
					w, err := send(p, ctx, st, out.ch, r)
					waited += w
					return err
				})
				st.busy.Add(int64(max(0, time.Since(t0)-waited)))
				if err != nil {
					return err
				}
			}
		}, func() { close(out.ch) })
	}
	return out
}

// BatchConfig sets how Batch groups items.
type BatchConfig struct {
	Size    int           // most items per call; default 1
	MaxWait time.Duration // flush a partial batch this long after its first item arrived; 0 waits for a full batch or the end of the input
	Workers int           // goroutines calling fn; default 1
}

// Batch adds a stage that collects up to cfg.Size items (or what arrived
// within cfg.MaxWait once at least one is waiting) and calls fn with them;
// fn returns one output per input, in order, and owns the slice it is given.
// One collector forms the batches so that they are full whenever the input
// keeps up; cfg.Workers goroutines run fn on them.
func Batch[In, Out any](p *Pipeline, name string, in *Stream[In], cfg BatchConfig, fn func(ctx context.Context, v []In) ([]Out, error)) *Stream[Out] {
	st := p.addStage(name, cfg.Workers)
	src := consume(p, st, in)
	out := newStream[Out](p, name)
	size := max(cfg.Size, 1)
	st.start = func(ctx context.Context) {
		// Unbuffered: at most one formed batch waits for a free worker,
		// so the stage holds no more than (workers+1)*size items.
		batches := make(chan []In)
		p.g.Go(p.guard(st, func() error {
			defer close(batches)
			return collect(p, ctx, st, src, batches, size, cfg.MaxWait)
		}))
		p.spawn(st, func(int) error {
			for {
				var b []In
				var ok bool
				select {
				case b, ok = <-batches:
				case <-ctx.Done():
					p.interrupted.Store(true)
					return ctx.Err()
				}
				if !ok {
					return nil
				}
				t0 := time.Now()
				rs, err := fn(ctx, b)
				st.busy.Add(int64(time.Since(t0)))
				if err != nil {
					return err
				}
				if len(rs) != len(b) {
					return fmt.Errorf("batch of %d items returned %d results, want one per item", len(b), len(rs))
				}
				for _, r := range rs {
					if _, err := send(p, ctx, st, out.ch, r); err != nil {
						return err
					}
				}
			}
		}, func() { close(out.ch) })
	}
	return out
}

// collect reads src into batches of up to size items and hands them to the
// workers; a partial batch leaves when maxWait has passed since its first
// item (if maxWait > 0) or when src ends.
func collect[In any](p *Pipeline, ctx context.Context, st *stage, src <-chan In, batches chan<- []In, size int, maxWait time.Duration) error {
	var timer *time.Timer
	for {
		v, ok, err := recv(p, ctx, st, src)
		if !ok {
			return err
		}
		b := make([]In, 1, size)
		b[0] = v
		var deadline <-chan time.Time
		if maxWait > 0 && size > 1 {
			if timer == nil {
				timer = time.NewTimer(maxWait)
				defer timer.Stop()
			} else {
				timer.Reset(maxWait) // since Go 1.23 Reset drops any stale tick
			}
			deadline = timer.C
		}
		done := false
	fill:
		for len(b) < size {
			select {
			case v, ok := <-src:
				if !ok {
					done = true
					break fill
				}
				st.in.Add(1)
				b = append(b, v)
			case <-deadline:
				break fill
			case <-ctx.Done():
				p.interrupted.Store(true)
				return ctx.Err()
			}
		}
		select {
		case batches <- b:
		case <-ctx.Done():
			p.interrupted.Store(true)
			return ctx.Err()
		}
		if done {
			return nil
		}
	}
}

// Sink adds a stage in which workers goroutines call fn on every item. Items
// consumed without error add their samples and rejects to the run's totals
// (see Pipeline.Done).
func Sink[T any](p *Pipeline, name string, in *Stream[T], workers int, fn func(ctx context.Context, v T) error) {
	st := p.addStage(name, workers)
	src := consume(p, st, in)
	st.start = func(ctx context.Context) {
		p.spawn(st, func(int) error {
			for {
				v, ok, err := recv(p, ctx, st, src)
				if !ok {
					return err
				}
				t0 := time.Now()
				err = fn(ctx, v)
				st.busy.Add(int64(time.Since(t0)))
				if err != nil {
					return err
				}
				s, r := counts(v)
				st.out.Add(1)
				st.samples.Add(s)
				st.rejects.Add(r)
				p.samples.Add(s)
				p.rejects.Add(r)
			}
		}, nil)
	}
}
