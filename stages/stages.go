// Package stages runs a streaming DAG of typed stages connected by bounded
// queues.
//
// A run is built by chaining constructors on a Pipeline: Source emits items,
// Map, FlatMap and Batch transform them with a fixed number of workers each,
// and Sink consumes them. Every edge is a channel of capacity Options.Queue, so
// a slow stage blocks the ones before it (back-pressure) and memory stays
// bounded. Nothing runs until Wait, which starts every worker under one
// errgroup: the first error or panic in any stage cancels the context of all of
// them, and Wait returns only after every goroutine has ended.
//
// Each stage counts the items it takes and passes on, the time its workers
// spend inside the stage function (Busy) and the time they spend blocked on a
// full output queue (Blocked). An item that implements
//
//	interface{ Progress() (samples, rejects int) }
//
// tells the engine how many samples and rejects it stands for (a shard-end
// marker reports 0, 0); other items count as one sample. Sinks add these to
// the run's totals, which the progress bar and Done report.
package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configures a Pipeline. The zero value is a quiet run with default
// queues.
type Options struct {
	Name     string        // shown at the start of the progress line and in logs; may be empty
	Total    int64         // expected number of samples reaching sinks, 0 when unknown (no ETA)
	Progress io.Writer     // where the progress bar goes (os.Stderr); nil means quiet
	Interval time.Duration // progress refresh; default 1s on a terminal, 10s otherwise
	Logger   *slog.Logger  // nil means slog.Default()
	Queue    int           // capacity of each edge between stages; default 64
}

// DefaultQueue is the capacity of an edge when Options.Queue is not set.
const DefaultQueue = 64

// Pipeline is one run of a DAG. Build it with Source, Map, FlatMap, Batch and
// Sink, then call Wait once.
type Pipeline struct {
	parent context.Context
	ctx    context.Context // cancelled on the first error
	g      *errgroup.Group
	opt    Options
	log    *slog.Logger

	mu      sync.Mutex
	stages  []*stage
	streams []streamInfo
	err     error // first error found while building; Wait returns it without running
	started bool

	total       atomic.Int64 // expected samples, 0 when unknown (SetTotal)
	begin       atomic.Int64 // unix nanoseconds when Wait started the workers
	samples     atomic.Int64 // totals over all sinks
	rejects     atomic.Int64
	interrupted atomic.Bool // a send or receive gave up because the context ended

	waitOnce sync.Once
	waitErr  error
}

// streamInfo lets Wait check, without knowing T, that every stream has
// exactly one consumer: an unconsumed stream would fill up and block its
// producer forever.
type streamInfo struct {
	producer string
	consumed func() string
}

// Stream is the typed output of a stage, to be consumed by exactly one later
// stage of the same Pipeline.
type Stream[T any] struct {
	p        *Pipeline
	producer string
	ch       chan T
	consumer string
}

// New returns a pipeline whose stages all run under ctx (derived, cancelled on
// the first error).
func New(ctx context.Context, opt Options) *Pipeline {
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	g, gctx := errgroup.WithContext(ctx)
	p := &Pipeline{parent: ctx, ctx: gctx, g: g, opt: opt, log: log}
	p.total.Store(opt.Total)
	return p
}

// SetTotal updates the number of samples the run is expected to deliver, for
// the progress bar's ETA; a source that learns it only while running (from
// the first input shards, say) calls it as the estimate improves. Safe for
// concurrent use.
func (p *Pipeline) SetTotal(n int64) { p.total.Store(n) }

// stage holds one stage's counters; all fields read by Stats during a run
// are atomic.
type stage struct {
	name    string
	workers int
	queue   func() (length, capacity int) // the input queue; nil for sources

	in, out          atomic.Int64
	samples, rejects atomic.Int64 // from Progress() of items passed on (or consumed, for sinks)
	busy, blocked    atomic.Int64 // nanoseconds summed over workers
	end              atomic.Int64 // unix nanoseconds when the last worker ended; 0 while running
	running          atomic.Int64 // sources: unix nanoseconds when fn started, 0 once it returned

	start func(ctx context.Context) // launches the workers; called by Wait
}

// addStage registers a stage. Constructors are meant to be called from one
// goroutine before Wait; calling them afterwards is a programming error.
func (p *Pipeline) addStage(name string, workers int) *stage {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		panic(fmt.Sprintf("stages: stage %q added after Wait", name))
	}
	if workers < 1 {
		workers = 1
	}
	st := &stage{name: name, workers: workers}
	p.stages = append(p.stages, st)
	return st
}

func (p *Pipeline) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// newStream makes the output edge of stage producer.
func newStream[T any](p *Pipeline, producer string) *Stream[T] {
	s := &Stream[T]{p: p, producer: producer, ch: make(chan T, p.opt.Queue)}
	p.mu.Lock()
	p.streams = append(p.streams, streamInfo{producer: producer, consumed: func() string { return s.consumer }})
	p.mu.Unlock()
	return s
}

// consume claims in for stage st and returns its channel; a second consumer
// or a stream of another pipeline is recorded as a build error.
func consume[T any](p *Pipeline, st *stage, in *Stream[T]) <-chan T {
	switch {
	case in == nil:
		p.fail(fmt.Errorf("stages: %s: input stream is nil", st.name))
		return nil
	case in.p != p:
		p.fail(fmt.Errorf("stages: %s: input stream of %q belongs to another pipeline", st.name, in.producer))
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if in.consumer != "" {
		if p.err == nil {
			p.err = fmt.Errorf("stages: %s: output of %q is already consumed by %q (a stream has one consumer; fan out inside a stage)",
				st.name, in.producer, in.consumer)
		}
		return nil
	}
	in.consumer = st.name
	st.queue = func() (int, int) { return len(in.ch), cap(in.ch) }
	return in.ch
}

// Wait runs until every source is done and every item has drained through
// the sinks, or the first error; it returns that error (the context's cause
// when cancelled from outside). Nothing is left running after it returns.
// Calling it again returns the same result.
func (p *Pipeline) Wait() error {
	p.waitOnce.Do(func() { p.waitErr = p.run() })
	return p.waitErr
}

func (p *Pipeline) run() error {
	p.mu.Lock()
	p.started = true
	err := p.err
	if err == nil {
		err = p.checkGraph()
	}
	p.mu.Unlock()
	if err != nil {
		p.g.Wait() // nothing started; this only releases the run's context
		return err
	}

	p.begin.Store(time.Now().UnixNano())
	var bar *progress
	if p.opt.Progress != nil {
		bar = newProgress(p, p.opt.Progress, p.opt.Interval)
		bar.start()
	}
	for _, st := range p.stages {
		st.start(p.ctx)
	}
	err = p.g.Wait()
	if p.parent.Err() != nil && (err == nil && p.interrupted.Load() || err != nil && isCancel(err)) {
		// Stages saw only "context canceled"; the caller wants to know why.
		err = context.Cause(p.parent)
	}
	if bar != nil {
		bar.stop(err)
	}
	p.logStats(err)
	return err
}

// checkGraph reports a pipeline that cannot finish: an empty one, or a
// stream that nothing reads (its producer would block forever). Called with p.mu held.
func (p *Pipeline) checkGraph() error {
	if len(p.stages) == 0 {
		return errors.New("stages: pipeline has no stages")
	}
	for _, s := range p.streams {
		if s.consumed() == "" {
			return fmt.Errorf("stages: output of %q has no consumer (end it with a Sink)", s.producer)
		}
	}
	return nil
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Done returns the samples and rejects that have reached the sinks so far.
func (p *Pipeline) Done() (samples, rejects int64) {
	return p.samples.Load(), p.rejects.Load()
}

// StageStats is a snapshot of one stage's counters.
type StageStats struct {
	Name     string
	Workers  int
	In, Out  int64         // items taken from the input queue and passed on (for sinks, Out counts items consumed without error)
	Samples  int64         // samples among the items passed on, by their Progress method
	Rejects  int64         // rejects among the items passed on
	Busy     time.Duration // total time inside the stage function across workers
	Blocked  time.Duration // total time workers waited for room in the output queue
	Wall     time.Duration // from the start of the run to the end of the stage's last worker (or now)
	QueueCap int           // capacity of the input queue; 0 for sources
	QueueLen int           // items waiting in the input queue now
}

// Utilization is the fraction of the stage's worker time spent working:
// Busy/(Wall*Workers). The stage with the highest value is the bottleneck.
func (s StageStats) Utilization() float64 {
	if s.Wall <= 0 || s.Workers <= 0 {
		return 0
	}
	return float64(s.Busy) / (float64(s.Wall) * float64(s.Workers))
}

// Stats returns one snapshot per stage, in the order the stages were added.
// It is safe to call during a run.
func (p *Pipeline) Stats() []StageStats {
	p.mu.Lock()
	list := p.stages
	p.mu.Unlock()
	begin := p.begin.Load()
	now := time.Now().UnixNano()
	out := make([]StageStats, len(list))
	for i, st := range list {
		since := st.running.Load() // before busy: a source stores busy, then clears running
		s := StageStats{
			Name:    st.name,
			Workers: st.workers,
			In:      st.in.Load(),
			Out:     st.out.Load(),
			Samples: st.samples.Load(),
			Rejects: st.rejects.Load(),
			Busy:    time.Duration(st.busy.Load()),
			Blocked: time.Duration(st.blocked.Load()),
		}
		if since != 0 {
			// A source's busy time is only known when fn returns; until
			// then estimate it as its running time less its waits.
			s.Busy = max(0, time.Duration(now-since)-s.Blocked)
		}
		if begin != 0 {
			end := st.end.Load()
			if end == 0 {
				end = now
			}
			s.Wall = time.Duration(end - begin)
		}
		if st.queue != nil {
			s.QueueLen, s.QueueCap = st.queue()
		}
		out[i] = s
	}
	return out
}

// logStats writes one Info record per stage at the end of the run.
func (p *Pipeline) logStats(err error) {
	for _, s := range p.Stats() {
		p.log.Info("stage done",
			slog.String("pipeline", p.opt.Name),
			slog.String("stage", s.Name),
			slog.Int("workers", s.Workers),
			slog.Int64("in", s.In),
			slog.Int64("out", s.Out),
			slog.Int64("samples", s.Samples),
			slog.Int64("rejects", s.Rejects),
			slog.Duration("busy", s.Busy),
			slog.Duration("blocked", s.Blocked),
			slog.Duration("wall", s.Wall),
			slog.Float64("utilization", s.Utilization()),
			slog.Bool("ok", err == nil),
		)
	}
}

// PanicError is a panic recovered in a stage function.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// guard wraps one goroutine of stage st: it turns a panic into a
// *PanicError and prefixes any error with the stage name.
func (p *Pipeline) guard(st *stage, body func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				pe := &PanicError{Value: r, Stack: debug.Stack()}
				p.log.Error("stage panicked", slog.String("stage", st.name),
					slog.Any("panic", r), slog.String("stack", string(pe.Stack)))
				err = pe
			}
			if err != nil {
				err = fmt.Errorf("stages: %s: %w", st.name, err)
			}
		}()
		return body()
	}
}

// spawn starts st.workers guarded goroutines running body; when the last one
// ends, for whatever reason, it records the stage's end and calls last
// (which closes the output queue so that the next stage can drain and stop).
func (p *Pipeline) spawn(st *stage, body func(worker int) error, last func()) {
	var left atomic.Int32
	left.Store(int32(st.workers))
	for w := range st.workers {
		run := p.guard(st, func() error { return body(w) })
		p.g.Go(func() error {
			defer func() {
				if left.Add(-1) == 0 {
					st.end.Store(time.Now().UnixNano())
					if last != nil {
						last()
					}
				}
			}()
			return run()
		})
	}
}

// counts reports what an item stands for; see the package doc.
func counts(v any) (samples, rejects int64) {
	if c, ok := v.(interface{ Progress() (samples, rejects int) }); ok {
		s, r := c.Progress()
		return int64(s), int64(r)
	}
	return 1, 0
}

// send puts v on ch for stage st, waiting for room unless ctx ends first.
// It returns how long it waited, which callers that time a whole function
// (sources, FlatMap) subtract from their busy time.
func send[T any](p *Pipeline, ctx context.Context, st *stage, ch chan<- T, v T) (time.Duration, error) {
	// Counted before the send: once v is on the channel, the next stage
	// may already be changing it.
	s, r := counts(v)
	var waited time.Duration
	select {
	case ch <- v:
	default:
		// The queue is full: the next stage is slower. Time the wait so
		// that Stats shows where the run is held up.
		t0 := time.Now()
		select {
		case ch <- v:
			waited = time.Since(t0)
			st.blocked.Add(int64(waited))
		case <-ctx.Done():
			waited = time.Since(t0)
			st.blocked.Add(int64(waited))
			p.interrupted.Store(true)
			return waited, ctx.Err()
		}
	}
	st.out.Add(1)
	st.samples.Add(s)
	st.rejects.Add(r)
	return waited, nil
}

// recv takes the next item from ch; ok is false when ch is closed and
// drained.
func recv[T any](p *Pipeline, ctx context.Context, st *stage, ch <-chan T) (v T, ok bool, err error) {
	select {
	case v, ok = <-ch:
		if ok {
			st.in.Add(1)
		}
		return v, ok, nil
	case <-ctx.Done():
		p.interrupted.Store(true)
		return v, false, ctx.Err()
	}
}
