package stages

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	busy := []StageStats{
		{Name: "read", Workers: 1, Busy: 5 * time.Second, Wall: 100 * time.Second},
		{Name: "decode", Workers: 8, Busy: 776 * time.Second, Wall: 100 * time.Second},
		{Name: "write", Workers: 1, Busy: 12 * time.Second, Wall: 100 * time.Second},
		{Name: "idle", Workers: 1}, // not started: left out
		{Name: "sink", Workers: 1, Busy: time.Second / 10, Wall: 100 * time.Second}, // 0.1%: left out
	}
	tests := []struct {
		name string
		s    snapshot
		want string
	}{
		{"total_known_shows_percent_and_eta",
			snapshot{name: "preprocess", samples: 12345, total: 200000, rate: 812, rejects: 31, stages: busy[1:3]},
			"preprocess  12,345/200,000 samples  6.2%  812/s  rejects 31  ETA 3m51s  [decode 97% | write 12%]"},
		{"busiest_three_stages_first",
			snapshot{name: "preprocess", samples: 10, rate: 2.5, stages: busy},
			"preprocess  10 samples  2.5/s  rejects 0  [decode 97% | write 12% | read 5%]"},
		{"no_rate_yet_no_eta",
			snapshot{samples: 0, total: 1000},
			"0/1,000 samples  0.0%  0.0/s  rejects 0"},
		{"summary",
			snapshot{name: "preprocess", samples: 200000, total: 200000, rate: 815.2, rejects: 31,
				elapsed: 245*time.Second + 300*time.Millisecond, final: true},
			"preprocess  200,000/200,000 samples  100.0%  815/s  rejects 31  done in 4m5s"},
		{"summary_after_error",
			snapshot{name: "p", samples: 1234567, rate: 12000, elapsed: time.Hour + 2*time.Second, final: true, failed: true},
			"p  1,234,567 samples  12,000/s  rejects 0  stopped after 1h0m2s"},
		{"short_run_keeps_tenths",
			snapshot{name: "p", samples: 3, rate: 12, elapsed: 1234 * time.Millisecond, final: true},
			"p  3 samples  12/s  rejects 0  done in 1.2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 123456: "123,456",
		1234567: "1,234,567", -1234: "-1,234", -999: "-999"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

// lockedBuffer is a writer the progress goroutine and the test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestProgressWritesPlainLinesWhenNotATerminal(t *testing.T) {
	noLeak(t)
	var out lockedBuffer
	p := New(context.Background(), Options{Name: "prep", Total: 40, Progress: &out, Interval: 3 * time.Millisecond, Logger: quiet()})
	src := Source(p, "src", func(ctx context.Context, emit func(item) error) error {
		for i := range 40 {
			time.Sleep(time.Millisecond)
			if err := emit(item{1, i % 2}); err != nil {
				return err
			}
		}
		return nil
	})
	Sink(p, "write", src, 1, func(context.Context, item) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "\r") {
		t.Errorf("\\r in output to a non-terminal: %q", text)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("want refresh lines and a summary, got %q", text)
	}
	tick := regexp.MustCompile(`^prep  \d+/40 samples  \d+\.\d%  [\d.,]+/s  rejects \d+(  ETA \w+)?  \[(src|write) \d+%( \| (src|write) \d+%)?\]$`)
	for _, l := range lines[:len(lines)-1] {
		if !tick.MatchString(l) {
			t.Errorf("progress line %q does not match %s", l, tick)
		}
	}
	summary := regexp.MustCompile(`^prep  40/40 samples  100\.0%  [\d.,]+/s  rejects 20  done in \w+  \[.*\]$`)
	if last := lines[len(lines)-1]; !summary.MatchString(last) {
		t.Errorf("summary %q does not match %s", last, summary)
	}
}

func TestProgressQuietWritesNothing(t *testing.T) {
	// Progress nil: nothing to write to, and no refresh goroutine to leak.
	noLeak(t)
	p := New(context.Background(), Options{Total: 3, Logger: quiet()})
	Sink(p, "sink", Source(p, "src", count(3)), 1, func(context.Context, int) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestProgressRewritesLineOnTerminal(t *testing.T) {
	var out bytes.Buffer
	b := &progress{w: &out, tty: true}
	b.draw(snapshot{name: "long-name", samples: 1000})
	b.draw(snapshot{name: "x", samples: 5})
	want := "\r" + "long-name  1,000 samples  0.0/s  rejects 0" +
		"\r" + "x  5 samples  0.0/s  rejects 0" + strings.Repeat(" ", 12)
	if out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is not a terminal")
	}
	f, err := openTemp(t)
	if err != nil {
		t.Fatal(err)
	}
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
}

func openTemp(t *testing.T) (*os.File, error) {
	f, err := os.CreateTemp(t.TempDir(), "progress")
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// A total learnt during the run (SetTotal) shows up as a percentage.
func TestProgressTotalSetWhileRunning(t *testing.T) {
	noLeak(t)
	var out lockedBuffer
	p := New(context.Background(), Options{Name: "prep", Progress: &out, Interval: 2 * time.Millisecond, Logger: quiet()})
	src := Source(p, "src", func(ctx context.Context, emit func(item) error) error {
		for i := range 30 {
			if i == 10 {
				p.SetTotal(30)
			}
			time.Sleep(time.Millisecond)
			if err := emit(item{1, 0}); err != nil {
				return err
			}
		}
		return nil
	})
	Sink(p, "write", src, 1, func(context.Context, item) error { return nil })
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !strings.Contains(lines[len(lines)-1], "30/30 samples  100.0%") {
		t.Fatalf("summary %q does not show the total set while running", lines[len(lines)-1])
	}
}
