package stages

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// progress draws the one-line progress bar. On a terminal it rewrites the
// line in place with \r; elsewhere (a log file, CI) it prints a plain line
// every interval so that the output stays readable.
type progress struct {
	p        *Pipeline
	w        io.Writer
	tty      bool
	interval time.Duration

	marks []mark // recent (time, samples) pairs; the rate is taken over them
	width int    // length of the last line drawn on a terminal

	quit chan struct{}
	wg   sync.WaitGroup
}

type mark struct {
	t time.Time
	n int64
}

// rateWindow is how many refreshes the displayed rate spans: long enough to
// smooth bursts (a batch stage flushing), short enough to follow changes.
const rateWindow = 10

func newProgress(p *Pipeline, w io.Writer, interval time.Duration) *progress {
	tty := IsTerminal(w)
	if interval <= 0 {
		interval = 10 * time.Second
		if tty {
			interval = time.Second
		}
	}
	return &progress{p: p, w: w, tty: tty, interval: interval, quit: make(chan struct{})}
}

// IsTerminal reports whether w is a character device, without importing a
// terminal package. Progress output rewrites its line there and prints plain
// lines elsewhere (log files, batch systems).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (b *progress) start() {
	b.marks = append(b.marks, mark{t: time.Unix(0, b.p.begin.Load()), n: 0})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(b.interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				b.draw(b.snapshot(time.Now(), false, nil))
			case <-b.quit:
				return
			}
		}
	}()
}

// stop ends the refresh goroutine and writes the summary line.
func (b *progress) stop(err error) {
	close(b.quit)
	b.wg.Wait()
	b.draw(b.snapshot(time.Now(), true, err))
	if b.tty {
		io.WriteString(b.w, "\n")
	}
}

func (b *progress) snapshot(now time.Time, final bool, err error) snapshot {
	n, rej := b.p.Done()
	b.marks = append(b.marks, mark{t: now, n: n})
	if len(b.marks) > rateWindow+1 {
		b.marks = slices.Delete(b.marks, 0, len(b.marks)-rateWindow-1)
	}
	first := b.marks[0]
	begin := time.Unix(0, b.p.begin.Load())
	s := snapshot{
		name:    b.p.opt.Name,
		samples: n,
		rejects: rej,
		total:   b.p.total.Load(),
		elapsed: now.Sub(begin),
		stages:  b.p.Stats(),
		final:   final,
		failed:  err != nil,
	}
	if final {
		first = mark{t: begin} // the summary gives the average over the run
	}
	if span := now.Sub(first.t); span > 0 {
		s.rate = float64(n-first.n) / span.Seconds()
	}
	return s
}

func (b *progress) draw(s snapshot) {
	line := s.String()
	if !b.tty {
		io.WriteString(b.w, line+"\n")
		return
	}
	pad := max(0, b.width-len(line)) // blank what is left of a longer previous line
	b.width = len(line)
	io.WriteString(b.w, "\r"+line+strings.Repeat(" ", pad))
}

// snapshot is what one progress line shows.
type snapshot struct {
	name             string
	samples, rejects int64
	total            int64 // 0 when unknown
	rate             float64
	elapsed          time.Duration
	stages           []StageStats
	final, failed    bool
}

// String renders the line, e.g.
//
//	preprocess  12,345/200,000 samples  6.2%  812/s  rejects 31  ETA 3m51s  [decode 97% | write 12%]
func (s snapshot) String() string {
	var b strings.Builder
	if s.name != "" {
		b.WriteString(s.name + "  ")
	}
	b.WriteString(commas(s.samples))
	if s.total > 0 {
		b.WriteString("/" + commas(s.total))
	}
	b.WriteString(" samples")
	if s.total > 0 {
		fmt.Fprintf(&b, "  %.1f%%", 100*float64(s.samples)/float64(s.total))
	}
	b.WriteString("  " + formatRate(s.rate) + "/s")
	b.WriteString("  rejects " + commas(s.rejects))
	switch {
	case s.final && s.failed:
		b.WriteString("  stopped after " + roundDuration(s.elapsed))
	case s.final:
		b.WriteString("  done in " + roundDuration(s.elapsed))
	case s.total > 0 && s.rate > 0 && s.samples < s.total:
		eta := time.Duration(float64(s.total-s.samples) / s.rate * float64(time.Second))
		b.WriteString("  ETA " + eta.Round(time.Second).String())
	}
	if busy := busiest(s.stages, 3); busy != "" {
		b.WriteString("  [" + busy + "]")
	}
	return b.String()
}

// busiest names the n stages with the highest utilisation, the likely
// bottleneck first.
func busiest(stats []StageStats, n int) string {
	list := slices.Clone(stats)
	// Idle stages (under 0.5%) would only add noise.
	list = slices.DeleteFunc(list, func(s StageStats) bool { return s.Wall <= 0 || s.Utilization() < 0.005 })
	slices.SortStableFunc(list, func(a, b StageStats) int {
		ua, ub := a.Utilization(), b.Utilization()
		switch {
		case ua > ub:
			return -1
		case ua < ub:
			return 1
		}
		return 0
	})
	parts := make([]string, 0, n)
	for _, s := range list[:min(n, len(list))] {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", s.Name, 100*s.Utilization()))
	}
	return strings.Join(parts, " | ")
}

// roundDuration keeps a tenth of a second for short runs, whole seconds
// otherwise.
func roundDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func formatRate(r float64) string {
	if r < 10 {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return commas(int64(r + 0.5))
}

// commas writes n with thousands separators: 1234567 -> "1,234,567".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
