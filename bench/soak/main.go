// Command soak streams a large synthetic input through the whole
// preprocessing pipeline in one process (task soak; issue 18) and checks that
// nothing is lost and nothing grows or hangs:
//
//   - every sample read ends up once as a row or a reject (rows + rejects ==
//     inputs, from the manifest and from the run's own counts);
//   - peak RSS (VmHWM) stays flat: it is reported at every power of ten of
//     samples written and must not grow by more than -rss-growth from the
//     report at 10,000 samples (after the warm-up) to the last;
//   - no goroutine is left running once Preprocess has returned;
//   - the run ends within -drain of the moment the last input shard has been
//     read (img2dataset's "hang at the end"); otherwise every goroutine's
//     stack is printed and the soak fails.
//
// The input is -unique synthetic 128x128 samples (synth, with broken samples
// for the rejects path) in tar shards of -per-shard, hard-linked as many times
// as -samples needs under new shard names: a million samples cost no
// rendering and no input disk. Every finished output shard is checked (files
// and sizes as its stats file lists them, both Parquet files open with the
// row counts the stats claim) and, unless -keep, its Parquet files are then
// deleted so that the output takes no disk; the stats files stay for the
// manifest.
//
// -stages picks the knowledge stages: "all" is pipelines/sample.yaml's set
// with the fixture models (captioner, detect, pos, vae); a comma list such as
// "pos,detect" enables only those (the image stage always runs). On 2 cores
// every stage together runs at about 170 samples/s (the VAE and the
// captioner take most of it), so a million samples would take over an hour
// and a half; with "pos" alone a million take under three minutes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kediff/kediff/internal/rss"

	"github.com/kediff/kediff/pipelines"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
	"github.com/kediff/kediff/synth"
)

func main() {
	var o Options
	flag.IntVar(&o.Samples, "samples", 1_000_000, "samples to stream (rounded up to whole input shards)")
	flag.IntVar(&o.Unique, "unique", 4000, "distinct synthetic samples rendered; the input links their shards over and over")
	flag.IntVar(&o.PerShard, "per-shard", 1000, "samples per input shard")
	flag.StringVar(&o.Stages, "stages", "all", `knowledge stages: "all" (captioner,detect,pos,vae as in -config) or a comma list of them; "none": the image stage only`)
	flag.StringVar(&o.Config, "config", "pipelines/sample.yaml", "preprocess config giving the model paths (its model stages are switched by -stages)")
	flag.StringVar(&o.Dir, "dir", "out/soak", "working folder (the rendered input is kept between runs)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the output Parquet files (a million samples take about 10 GB)")
	flag.DurationVar(&o.Drain, "drain", 2*time.Minute, "the most the run may take after the last input shard is read")
	flag.StringVar(&o.HeapProfile, "heapprofile", "", "write the live heap at the end of the run (Preprocess returned, before the checks) to this file (go tool pprof)")
	flag.Float64Var(&o.RSSGrowth, "rss-growth", 256, "MiB the peak RSS may grow from the first report at 10,000 samples or more to the last")
	flag.Parse()
	log.SetFlags(log.Ltime)
	res, err := Run(context.Background(), o, os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Printf("%s\n", b)
}

// Options configure one soak run.
type Options struct {
	Samples, Unique, PerShard int
	Stages, Config, Dir       string
	Keep                      bool
	Drain                     time.Duration
	RSSGrowth                 float64 // MiB; <= 0: no check
	HeapProfile               string  // file for the live heap at the end; "" for none
	Logger                    *slog.Logger
}

// Result is what a soak run measured.
type Result struct {
	Stages     string    `json:"stages"`
	Inputs     int64     `json:"inputs"` // samples in the input shards (goods and broken ones)
	Shards     int       `json:"shards"`
	Read       int64     `json:"read"`
	Rows       int64     `json:"rows"`
	Rejects    int64     `json:"rejects"`
	Seconds    float64   `json:"seconds"`
	PerS       float64   `json:"samples_per_s"`
	DrainS     float64   `json:"drain_s"` // from the last input shard read to Preprocess's return
	PeakRSSMiB []RSSMark `json:"peak_rss_mib"`
	// MaxHeapMiB is the largest live heap sampled every 250 ms.
	MaxHeapMiB        float64 `json:"max_heap_mib"`
	GoroutinesBefore  int     `json:"goroutines_before"`
	GoroutinesAfter   int     `json:"goroutines_after"`
	ShardsChecked     int     `json:"shards_checked"`
	OutputBytesDelete int64   `json:"output_bytes_deleted"`
}

// RSSMark is the peak RSS when Samples samples had been written.
type RSSMark struct {
	Samples int64   `json:"samples"`
	MiB     float64 `json:"mib"`
}

// Run makes the input (once), runs Preprocess over it and checks the run.
// Progress lines go to w.
func Run(ctx context.Context, o Options, w io.Writer) (Result, error) {
	res := Result{Stages: o.Stages}
	if o.PerShard <= 0 || o.Unique < o.PerShard || o.Samples <= 0 {
		return res, fmt.Errorf("soak: want -samples > 0 and -unique >= -per-shard > 0")
	}
	cfg, err := soakConfig(o.Config, o.Stages)
	if err != nil {
		return res, err
	}
	base := filepath.Join(o.Dir, fmt.Sprintf("unique-%d-%d", o.Unique, o.PerShard))
	counts, err := ensureUnique(ctx, base, o.Unique, o.PerShard)
	if err != nil {
		return res, err
	}
	in := filepath.Join(o.Dir, fmt.Sprintf("input-%d", o.Samples))
	nShards := (o.Samples + o.PerShard - 1) / o.PerShard
	if res.Inputs, err = linkInput(base, in, counts, nShards); err != nil {
		return res, err
	}
	out := filepath.Join(o.Dir, fmt.Sprintf("output-%d", o.Samples))
	if err := os.RemoveAll(out); err != nil {
		return res, err
	}

	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	obs := &observer{out: out, keep: o.Keep, w: w}
	if err := resetPeakRSS(); err != nil {
		fmt.Fprintf(w, "soak: cannot reset the peak RSS (%v): it includes what ran before\n", err)
	}
	runtime.GC()
	res.GoroutinesBefore = runtime.NumGoroutine()
	var maxHeap atomic.Uint64
	stopHeap := sampleHeap(&maxHeap)

	fmt.Fprintf(w, "soak: %d samples in %d shards, stages %s, into %s\n", res.Inputs, nShards, o.Stages, out)
	start := time.Now()
	done := make(chan error, 1)
	var sum pipelines.Summary
	go func() {
		var err error
		sum, err = pipelines.Preprocess(ctx, pipelines.PreprocessOptions{
			Input: in, Output: out, Config: cfg, Split: pipelines.Split{Index: 0, Count: 1},
			Logger: log, Observer: obs,
		})
		done <- err
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
wait:
	for {
		select {
		case runErr = <-done:
			break wait
		case <-tick.C:
			if last := obs.lastRead.Load(); last != 0 && time.Since(time.Unix(0, last)) > o.Drain {
				var stacks strings.Builder
				pprof.Lookup("goroutine").WriteTo(&stacks, 2)
				stopHeap()
				return res, fmt.Errorf("soak: the run has not ended %v after its last input shard was read (hang at the end); goroutines:\n%s",
					o.Drain, stacks.String())
			}
		}
	}
	end := time.Now()
	stopHeap()
	res.MaxHeapMiB = float64(maxHeap.Load()) / (1 << 20)
	if last := obs.lastRead.Load(); last != 0 {
		res.DrainS = end.Sub(time.Unix(0, last)).Seconds()
	}
	res.Seconds = end.Sub(start).Seconds()
	res.Shards, res.Read, res.Rows, res.Rejects = sum.Processed, sum.Read, sum.Written, sum.Rejected
	res.PerS = float64(sum.Read) / res.Seconds
	res.PeakRSSMiB = obs.marks()
	if n := len(res.PeakRSSMiB); n == 0 || res.PeakRSSMiB[n-1].Samples != sum.Read {
		res.PeakRSSMiB = append(res.PeakRSSMiB, RSSMark{Samples: sum.Read, MiB: math.Round(rss.PeakMiB()*10) / 10})
	}
	res.ShardsChecked, res.OutputBytesDelete = obs.checked, obs.deleted
	if runErr != nil {
		return res, fmt.Errorf("soak: preprocess: %w", runErr)
	}
	if o.HeapProfile != "" {
		if err := writeHeapProfile(o.HeapProfile); err != nil {
			return res, err
		}
	}
	if obs.err != nil {
		return res, obs.err
	}

	// Every goroutine the run started has ended: the count is back to
	// where it was (a few tries: an ended goroutine takes a moment to go).
	for i := 0; ; i++ {
		res.GoroutinesAfter = runtime.NumGoroutine()
		if res.GoroutinesAfter <= res.GoroutinesBefore || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var errs []error
	if res.GoroutinesAfter > res.GoroutinesBefore {
		var stacks strings.Builder
		pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		errs = append(errs, fmt.Errorf("soak: %d goroutines after the run, %d before (leak):\n%s", res.GoroutinesAfter, res.GoroutinesBefore, stacks.String()))
	}
	m, err := readManifest(out)
	if err != nil {
		return res, err
	}
	t := m.Totals
	switch {
	case sum.Read != res.Inputs || t.Read != res.Inputs:
		errs = append(errs, fmt.Errorf("soak: %d samples in the input, the run read %d, the manifest says %d", res.Inputs, sum.Read, t.Read))
	case sum.Written+sum.Rejected != res.Inputs || t.Rows+t.Rejects != res.Inputs:
		errs = append(errs, fmt.Errorf("soak: rows + rejects = %d + %d (manifest %d + %d), want the %d inputs",
			sum.Written, sum.Rejected, t.Rows, t.Rejects, res.Inputs))
	case len(m.Incomplete) > 0 || t.Shards != obs.checked:
		errs = append(errs, fmt.Errorf("soak: manifest lists %d complete shards (%d checked) and incomplete %v", t.Shards, obs.checked, m.Incomplete))
	}
	// Growth is measured from the first report at 10,000 samples or more:
	// before that the run is still warming up (the heap has not reached
	// the collector's target).
	marks := res.PeakRSSMiB
	if i := slices.IndexFunc(marks, func(m RSSMark) bool { return m.Samples >= 10_000 }); o.RSSGrowth > 0 && i >= 0 && i < len(marks)-1 {
		if g := marks[len(marks)-1].MiB - marks[i].MiB; g > o.RSSGrowth {
			errs = append(errs, fmt.Errorf("soak: peak RSS grew by %.0f MiB from %d to %d samples (limit %.0f): %v",
				g, marks[i].Samples, marks[len(marks)-1].Samples, o.RSSGrowth, marks))
		}
	}
	return res, errors.Join(errs...)
}

// soakConfig loads path and keeps only the knowledge stages in list.
func soakConfig(path, list string) (pipelines.Config, error) {
	cfg, err := pipelines.LoadConfig(path)
	if err != nil {
		return cfg, err
	}
	if list == "all" {
		return cfg, nil
	}
	on := map[string]bool{}
	if list != "none" {
		for _, s := range strings.Split(list, ",") {
			switch s = strings.TrimSpace(s); s {
			case "captioner", "detect", "pos", "vae":
				on[s] = true
			default:
				return cfg, fmt.Errorf("soak: -stages: unknown stage %q (want all, none or a list of captioner, detect, pos, vae)", s)
			}
		}
	}
	cfg.Captioner.Enabled, cfg.Detect.Enabled, cfg.POS.Enabled, cfg.VAE.Enabled = on["captioner"], on["detect"], on["pos"], on["vae"]
	return cfg, cfg.Validate()
}

// ensureUnique renders the distinct samples once and returns the number of
// samples (goods and broken ones) in each of its shards.
func ensureUnique(ctx context.Context, dir string, n, perShard int) ([]int64, error) {
	marker := filepath.Join(dir, ".counts.json")
	var counts []int64
	if b, err := os.ReadFile(marker); err == nil && json.Unmarshal(b, &counts) == nil {
		return counts, nil
	}
	os.RemoveAll(dir)
	log.Printf("soak: rendering %d samples into %s", n, dir)
	if _, err := synth.Generate(ctx, dir, synth.Options{Samples: n, PerShard: perShard, Width: 128, Height: 128,
		Seed: 18, Quality: 85, Lang: "mixed", Photo: true, BadSamples: true}); err != nil {
		return nil, err
	}
	inputs, err := shards.Expand(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, in := range inputs {
		c, err := shards.Read(ctx, in, shards.ReadOptions{}, func(shards.Sample) error { return nil })
		if err != nil {
			return nil, err
		}
		counts = append(counts, int64(c))
	}
	b, _ := json.Marshal(counts)
	return counts, os.WriteFile(marker, b, 0o644)
}

// linkInput makes dir hold n input shards, hard links (or symbolic links
// where hard ones fail) to base's shards in turn, and returns their samples.
func linkInput(base, dir string, counts []int64, n int) (int64, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	var total int64
	for i := range n {
		j := i % len(counts)
		src, err := filepath.Abs(filepath.Join(base, fmt.Sprintf("%05d.tar", j)))
		if err != nil {
			return 0, err
		}
		dst := filepath.Join(dir, fmt.Sprintf("%06d.tar", i))
		if err := os.Link(src, dst); err != nil {
			if err := os.Symlink(src, dst); err != nil {
				return 0, err
			}
		}
		total += counts[j]
	}
	return total, nil
}

// observer watches the run: it notes when the last input shard has been
// read, checks (and by default deletes) every finished output shard and
// records the peak RSS at each power of ten of samples.
type observer struct {
	out  string
	keep bool
	w    io.Writer

	todo     atomic.Int64
	reads    atomic.Int64
	lastRead atomic.Int64 // unix nanoseconds, once every input is read

	mu      sync.Mutex
	read    int64
	next    int64 // next power of ten to report at
	rss     []RSSMark
	checked int
	deleted int64
	err     error
}

func (o *observer) Plan(owned, skipped, todo int) { o.todo.Store(int64(todo)) }
func (o *observer) Start(*stages.Pipeline)        {}
func (o *observer) Written(int)                   {}
func (o *observer) Rejected(string, string)       {}

func (o *observer) InputDone(context.Context, shards.Input) {
	if o.reads.Add(1) == o.todo.Load() {
		o.lastRead.Store(time.Now().UnixNano())
	}
}

func (o *observer) ShardDone(st shards.Stats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := checkShard(o.out, st); err != nil && o.err == nil {
		o.err = err
	}
	o.checked++
	if !o.keep {
		for name, size := range st.Files {
			if os.Remove(filepath.Join(o.out, name)) == nil {
				o.deleted += size
			}
		}
	}
	o.read += st.Read
	if o.next == 0 {
		o.next = 10
	}
	if o.read >= o.next {
		for o.next <= o.read {
			o.next *= 10
		}
		mark := RSSMark{Samples: o.read, MiB: math.Round(rss.PeakMiB()*10) / 10}
		o.rss = append(o.rss, mark)
		fmt.Fprintf(o.w, "soak: %d samples, peak RSS %.0f MiB, %d goroutines\n", mark.Samples, mark.MiB, runtime.NumGoroutine())
	}
}

func (o *observer) marks() []RSSMark {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rss)
}

// checkShard checks that a shard whose stats file exists is whole: its files
// have the sizes the stats list, and both Parquet files open with as many
// rows as the stats count.
func checkShard(dir string, st shards.Stats) error {
	want := map[string]int64{shards.ParquetName(st.Shard): st.Written, shards.RejectsName(st.Shard): st.Rejected}
	if len(st.Files) != len(want) {
		return fmt.Errorf("soak: shard %s: stats list files %v, want %s and %s", st.Shard, st.Files,
			shards.ParquetName(st.Shard), shards.RejectsName(st.Shard))
	}
	for name, rows := range want {
		if err := checkParquet(filepath.Join(dir, name), st.Files[name], rows); err != nil {
			return fmt.Errorf("soak: shard %s: %w", st.Shard, err)
		}
	}
	return nil
}

// checkParquet opens path and checks its size and row count.
func checkParquet(path string, size, rows int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%s: %d bytes, its stats file says %d", path, fi.Size(), size)
	}
	pf, err := parquet.OpenFile(f, size)
	if err != nil {
		return fmt.Errorf("%s: does not open as Parquet: %w", path, err)
	}
	if pf.NumRows() != rows {
		return fmt.Errorf("%s: %d rows, its stats file says %d", path, pf.NumRows(), rows)
	}
	return nil
}

func readManifest(dir string) (shards.Manifest, error) {
	var m shards.Manifest
	b, err := os.ReadFile(filepath.Join(dir, shards.ManifestName))
	if err != nil {
		return m, fmt.Errorf("soak: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("soak: %s: %w", shards.ManifestName, err)
	}
	return m, nil
}

// sampleHeap records the largest live heap every 250 ms until the returned
// function is called.
func sampleHeap(max *atomic.Uint64) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > max.Load() {
				max.Store(ms.HeapAlloc)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); wg.Wait() }) }
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux: clear_refs 5), so
// that the peak covers only what follows.
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// writeHeapProfile writes the live heap, after a collection, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
