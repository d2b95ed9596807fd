package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kediff/kediff/internal/faultproxy"
	"github.com/kediff/kediff/internal/s3test"
	"github.com/kediff/kediff/metrics"
	"github.com/kediff/kediff/shards"
)

// faultyStore is 4 input shards of 10 synthetic photos each in a real
// object store server, bucket "raw", reached through a fault proxy; bucket
// "train" takes outputs. The server is S3 (gofakes3) or GCS
// (fake-gcs-server's JSON and XML APIs).
type faultyStore struct {
	kind   string // "s3" or "gs"
	proxy  *faultproxy.Proxy
	query  string // URL query reaching the store through the proxy
	direct string // ... and directly (S3)
	clean  string // output folder of a run without faults
	cfg    Config
	reg    *prometheus.Registry // the last run's metrics
}

func newFaultyStore(t *testing.T) *faultyStore { return newFaultyStoreOn(t, "s3") }

func newFaultyStoreOn(t *testing.T, kind string) *faultyStore {
	t.Helper()
	local := makeSample(t, 40, 10)
	paths, _ := filepath.Glob(filepath.Join(local, "*.tar"))
	if len(paths) != 4 {
		t.Fatalf("%d input shards, want 4", len(paths))
	}
	fs := &faultyStore{kind: kind}
	switch kind {
	case "s3":
		endpoint := s3test.Start(t, "raw", "train")
		fs.proxy, fs.direct = faultproxy.Start(t, endpoint), s3test.Query(endpoint)
		fs.query = s3test.Query(fs.proxy.URL)
		ctx := context.Background()
		in, err := shards.OpenDir(ctx, "s3://raw/in?"+fs.direct, false)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			if err := in.WriteAll(ctx, filepath.Base(p), b, nil); err != nil {
				t.Fatal(err)
			}
		}
	case "gs":
		// The client reads objects through the XML API at host/bucket/key
		// (storage.googleapis.com's); the server serves it to 127.0.0.1.
		gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, Writer: io.Discard,
			PublicHost: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(gcs.HTTPHandler())
		t.Cleanup(srv.Close)
		for _, b := range []string{"raw", "train"} {
			gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
		}
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{
				BucketName: "raw", Name: "in/" + filepath.Base(p)}, Content: b})
		}
		fs.proxy = faultproxy.Start(t, srv.URL)
		// The GCS client goes to an emulator given by this variable, with
		// no credentials (anonymous=true).
		t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(fs.proxy.URL, "http://"))
		fs.query = "anonymous=true"
	default:
		t.Fatalf("store kind %q", kind)
	}

	fs.cfg = testConfig()
	fs.cfg.POS.Enabled = false // the tagger's dictionary takes seconds to load
	fs.cfg.Workers.Readers = 4
	fs.cfg.Store = StoreConfig{Attempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
		RequestTimeout: 2 * time.Second, StallTimeout: time.Second}
	fs.clean = filepath.Join(t.TempDir(), "clean")
	preprocess(t, fs.input(), fs.clean, fs.cfg, Split{0, 1})
	if fs.proxy.InjectedTotal() != 0 {
		t.Fatal("faults in the clean run")
	}
	return fs
}

func (fs *faultyStore) input() string { return fs.kind + "://raw/in/*.tar?" + fs.query }

// run preprocesses the inputs through the proxy with rules into a new
// folder, and returns the folder, the summary, the error and the time.
func (fs *faultyStore) run(t *testing.T, rules ...faultproxy.Rule) (string, Summary, error, time.Duration) {
	t.Helper()
	fs.proxy.SetRules(rules...)
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	fs.reg = prometheus.NewRegistry()
	sum, err := Preprocess(context.Background(), PreprocessOptions{Input: fs.input(), Output: out,
		Config: fs.cfg, Split: Split{0, 1}, Logger: quietLog, Observer: metrics.NewPreprocess(fs.reg, quietLog)})
	return out, sum, err, time.Since(start)
}

// storeFaults is the last run's kediff_preprocess_store_faults_total by
// action (retried, resumed), as a Prometheus scrape would read it.
func (fs *faultyStore) storeFaults(t *testing.T) map[string]int64 {
	t.Helper()
	fams, err := fs.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range fams {
		if f.GetName() != "kediff_preprocess_store_faults_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "action" {
					got[l.GetValue()] = int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return got
}

// sameAsClean checks that every shard file in out is byte-identical to the
// clean run's, and each stats file equal but for the times and the retry
// counts, which it returns summed.
func (fs *faultyStore) sameAsClean(t *testing.T, out string) (retries, resumes int64, reasons map[string]int64) {
	t.Helper()
	want, got := shardFiles(t, fs.clean), shardFiles(t, out)
	if len(want) != 8 || !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name := range want {
		if !bytes.Equal(got[name], want[name]) {
			t.Errorf("%s differs from the clean run's", name)
		}
	}
	reasons = map[string]int64{}
	for i := range 4 {
		name := shards.StatsName(fmt.Sprintf("%05d", i))
		w, g := statsJSON(t, filepath.Join(fs.clean, name)), statsJSON(t, filepath.Join(out, name))
		retries += int64(g["retries"].(float64))
		resumes += int64(g["resumes"].(float64))
		if rr, ok := g["retry_reasons"].(map[string]any); ok {
			for r, n := range rr {
				reasons[r] += int64(n.(float64))
			}
		}
		for _, k := range []string{"started", "finished", "duration_s", "samples_per_s", "retries", "resumes", "retry_reasons"} {
			delete(w, k)
			delete(g, k)
		}
		wj, _ := json.Marshal(w)
		gj, _ := json.Marshal(g)
		if !bytes.Equal(wj, gj) {
			t.Errorf("%s: %s, clean run %s", name, gj, wj)
		}
	}
	data, err := os.ReadFile(filepath.Join(out, shards.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m shards.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Totals.Retries != retries || m.Totals.Resumes != resumes || !maps.Equal(m.Totals.RetryReasons, reasons) {
		t.Errorf("manifest totals: %d retries, %d resumes %v; the stats files add up to %d, %d %v",
			m.Totals.Retries, m.Totals.Resumes, m.Totals.RetryReasons, retries, resumes, reasons)
	}
	return retries, resumes, reasons
}

func statsJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Transient object-store faults while reading the inputs leave the output
// byte-identical to a clean run's, and are counted in the stats files.
func TestPreprocessSurvivesStoreFaults(t *testing.T) {
	testSurvivesStoreFaults(t, newFaultyStore(t))
}

// The same faults through GCS's client (fake-gcs-server): the GCS SDK's
// own read retries are off, so this layer retries and counts them.
func TestPreprocessSurvivesGCSFaults(t *testing.T) {
	testSurvivesStoreFaults(t, newFaultyStoreOn(t, "gs"))
}

// testSurvivesStoreFaults runs one fault of each kind on shard 00001, then
// 20 runs with 10% of the requests faulted.
func testSurvivesStoreFaults(t *testing.T, fs *faultyStore) {
	// The object's download: S3's path and GCS's XML API path (its JSON
	// API's metadata reads are /storage/v1/b/raw/o/in/...).
	const obj = "raw/in/00001.tar"
	get := func(path string, f faultproxy.Fault) faultproxy.Rule {
		return faultproxy.Rule{Method: "GET", Path: path, Nth: 1, Fault: f}
	}
	tests := []struct {
		name   string
		rules  []faultproxy.Rule
		reason string // counted in the stats of shard 00001 (or "" for none)
		within time.Duration
	}{
		{"reset_mid_shard", []faultproxy.Rule{get(obj, faultproxy.Fault{Kind: faultproxy.Reset, After: 40 << 10})},
			"reset", 10 * time.Second},
		{"stall_after_headers", []faultproxy.Rule{get(obj, faultproxy.Fault{Kind: faultproxy.StallBody, After: 20 << 10, Delay: time.Minute})},
			"stall", 10 * time.Second},
		{"stall_before_headers", []faultproxy.Rule{get(obj, faultproxy.Fault{Kind: faultproxy.StallHeaders, Delay: time.Minute})},
			"stall", 10 * time.Second},
		{"slowdown_then_500", []faultproxy.Rule{get(obj, faultproxy.SlowDown), {Method: "GET", Path: obj, Nth: 2, Fault: faultproxy.InternalError}},
			"throttled", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, sum, err, took := fs.run(t, tt.rules...)
			if err != nil {
				t.Fatalf("run failed after %v: %v", took, err)
			}
			retries, resumes, reasons := fs.sameAsClean(t, out)
			if m := fs.storeFaults(t); m["retried"] != retries || m["resumed"] != resumes {
				t.Errorf("metrics count %v, the stats files %d retries and %d resumes", m, retries, resumes)
			}
			t.Logf("%v: injected %v; stats: %d retries, %d resumes %v; run: %d retries, %d resumes",
				took.Round(10*time.Millisecond), fs.proxy.Injected(), retries, resumes, reasons, sum.Retries, sum.Resumes)
			if fs.proxy.InjectedTotal() == 0 {
				t.Fatal("nothing injected")
			}
			st := statsJSON(t, filepath.Join(out, "00001_stats.json"))
			want := tt.reason
			if fs.kind == "gs" && tt.name == "reset_mid_shard" {
				// GCS's reader reopens a body cut mid-stream itself, at the
				// offset reached, whatever its retry policy: nothing is
				// left for this layer to do or count.
				want = ""
			}
			if rr, _ := st["retry_reasons"].(map[string]any); want != "" && rr[want] == nil {
				t.Errorf("00001_stats.json counts %v, want %q", rr, want)
			}
			if took > tt.within {
				t.Errorf("took %v, want at most %v", took, tt.within)
			}
		})
	}

	// 10% of all requests faulted with a mix; a run makes about 10
	// requests, so 20 runs with different seeds: every run's output is the
	// clean run's.
	t.Run("ten_percent_mix", func(t *testing.T) {
		mix := []faultproxy.Fault{
			{Kind: faultproxy.Reset, After: 8 << 10}, {Kind: faultproxy.Reset},
			faultproxy.SlowDown, faultproxy.InternalError,
			{Kind: faultproxy.Latency, Delay: 200 * time.Millisecond},
			{Kind: faultproxy.Throttle, BytesPerSec: 512 << 10},
		}
		var injected, requests int
		var retries, resumes int64
		kinds := map[faultproxy.Kind]int{}
		reasons := map[string]int64{}
		for seed := range uint64(20) {
			fs.proxy.Seed(seed + 1)
			out, sum, err, took := fs.run(t, faultproxy.Rule{Fraction: 0.1, Mix: mix})
			if err != nil {
				t.Fatalf("seed %d: run failed after %v: %v", seed+1, took, err)
			}
			r, s, rs := fs.sameAsClean(t, out)
			if testing.Verbose() && fs.proxy.InjectedTotal() > 0 {
				t.Logf("seed %d, %v: %d of %d requests faulted %v; stats: %d retries, %d resumes %v; run: %d retries, %d resumes",
					seed+1, took.Round(10*time.Millisecond), fs.proxy.InjectedTotal(), fs.proxy.Requests(), fs.proxy.Injected(),
					r, s, rs, sum.Retries, sum.Resumes)
			}
			for k, n := range fs.proxy.Injected() {
				kinds[k] += n
			}
			injected += fs.proxy.InjectedTotal()
			requests += fs.proxy.Requests()
			retries, resumes = retries+sum.Retries, resumes+sum.Resumes
			for k, n := range rs {
				reasons[k] += n
			}
		}
		t.Logf("in all: %d of %d requests faulted %v; %d retries, %d resumes %v; 0 runs failed, 0 rows lost",
			injected, requests, kinds, retries, resumes, reasons)
		if injected == 0 || retries+resumes == 0 {
			t.Errorf("%d faults injected, %d retries and %d resumes counted; want some of each", injected, retries, resumes)
		}
	})
}

// Permanent faults fail the run at once with an error naming the input,
// without retries.
func TestPreprocessFailsFastOnPermanentStoreFaults(t *testing.T) {
	for _, kind := range []string{"s3", "gs"} {
		t.Run(kind, func(t *testing.T) { testFailsFastOnPermanentStoreFaults(t, newFaultyStoreOn(t, kind)) })
	}
}

func testFailsFastOnPermanentStoreFaults(t *testing.T, fs *faultyStore) {
	tests := []struct {
		name  string
		fault faultproxy.Fault
		want  string
	}{
		{"access_denied", faultproxy.AccessDenied, "denied"},
		{"no_such_key", faultproxy.Fault{Kind: faultproxy.Status, Status: 404, Code: "NoSuchKey"}, "not found"},
		{"no_such_bucket", faultproxy.Fault{Kind: faultproxy.Status, Status: 404, Code: "NoSuchBucket"}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sum, err, took := fs.run(t, faultproxy.Rule{Method: "GET", Path: "raw/in/00002.tar", Fault: tt.fault})
			t.Logf("%v: %v", took.Round(time.Millisecond), err)
			if name := fs.kind + "://raw/in/00002.tar"; err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s that says %q", err, name, tt.want)
			}
			if sum.Retries+sum.Resumes != 0 {
				t.Errorf("a permanent fault was retried: %d retries, %d resumes", sum.Retries, sum.Resumes)
			}
			if took > 5*time.Second {
				t.Errorf("took %v to fail", took)
			}
		})
	}
}

// A reset while the manifest step reads the stats files back still writes
// manifest.json.
func TestManifestSurvivesStoreFaults(t *testing.T) {
	fs := newFaultyStore(t)
	out := "s3://train/out?" + fs.query
	preprocess(t, fs.input(), out, fs.cfg, Split{0, 1})
	ctx := context.Background()
	b, err := shards.OpenDir(ctx, "s3://train/out?"+fs.direct, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Delete(ctx, shards.ManifestName); err != nil {
		t.Fatal(err)
	}
	// The re-run reads the 4 stats files to see that the shards are done,
	// then again for the manifest: the 5th and 7th reads reset, mid-body
	// and before any byte of it.
	fs.proxy.SetRules(
		faultproxy.Rule{Method: "GET", Path: "_stats.json", Nth: 5, Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 100}},
		faultproxy.Rule{Method: "GET", Path: "_stats.json", Nth: 7, Fault: faultproxy.Fault{Kind: faultproxy.Reset}},
	)
	defer fs.proxy.SetRules()
	sum, err := Preprocess(ctx, PreprocessOptions{Input: fs.input(), Output: out, Config: fs.cfg, Split: Split{0, 1}, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("injected %v; %d retries, %d resumes", fs.proxy.Injected(), sum.Retries, sum.Resumes)
	if got := fs.proxy.Injected()[faultproxy.Reset]; got != 2 {
		t.Fatalf("%d resets injected, want 2", got)
	}
	if sum.Skipped != 4 || sum.Resumes < 2 {
		t.Errorf("re-run %+v: want 4 shards skipped and 2 resumes", sum)
	}
	data, err := b.ReadAll(ctx, shards.ManifestName)
	if err != nil {
		t.Fatalf("no manifest.json after resets reading the stats files: %v", err)
	}
	var m shards.Manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Totals.Shards != 4 || m.Totals.Read != 46 || m.Totals.Rows+m.Totals.Rejects != 46 {
		t.Fatalf("manifest totals %+v (%v), want 4 shards, 46 samples (40 and 6 bad ones)", m.Totals, err)
	}
}

// An output write that keeps failing, or stalls, fails the run with an
// error naming the shard and leaves the shard incomplete: no stats file,
// and no object committed from the failed upload.
func TestPreprocessFailsLoudlyOnWriteFaults(t *testing.T) {
	fs := newFaultyStore(t)
	ctx := context.Background()
	tests := []struct {
		name, file string
		fault      faultproxy.Fault
		want       string
	}{
		{"parquet_upload_fails", "00001.parquet", faultproxy.InternalError, "shard 00001"},
		{"stats_upload_stalls", "00002_stats.json", faultproxy.Fault{Kind: faultproxy.StallHeaders, Delay: time.Minute}, "no progress in 2s"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("w%d", i)
			fs.proxy.SetRules(faultproxy.Rule{Method: "PUT", Path: tt.file, Fault: tt.fault})
			start := time.Now()
			_, err := Preprocess(ctx, PreprocessOptions{Input: fs.input(), Output: "s3://train/" + prefix + "?" + fs.query,
				Config: fs.cfg, Split: Split{0, 1}, Logger: quietLog})
			took := time.Since(start)
			t.Logf("%v: injected %v: %v", took.Round(time.Millisecond), fs.proxy.Injected(), err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			if took > 10*time.Second {
				t.Errorf("took %v to fail", took)
			}
			b, err := shards.OpenDir(ctx, "s3://train/"+prefix+"?"+fs.direct, false)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			id := tt.file[:5]
			if done, err := shards.Complete(ctx, b, id); err != nil || done {
				t.Errorf("shard %s complete after a failed write (%v)", id, err)
			}
			if ok, _ := b.Exists(ctx, tt.file); ok {
				t.Errorf("%s exists after its upload failed", tt.file)
			}
		})
	}
}

// The store section reads durations as written, checks them, and leaves
// the config hash alone: it changes how faults are survived, not rows.
func TestStoreConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := LoadConfig(write("ok.yaml", "store:\n  attempts: 3\n  base_delay: 100ms\n  stall_timeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := shards.RetryOptions{Attempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: shards.DefaultRetryMaxDelay,
		RequestTimeout: shards.DefaultRequestTimeout, StallTimeout: 5 * time.Second}
	if got := cfg.Store.Options(); got != want {
		t.Errorf("store options %+v, want %+v", got, want)
	}
	def := Default()
	if cfg.Hash() != def.Hash() || bytes.Contains(cfg.JSON(), []byte("stall")) {
		t.Errorf("the store section changes the recorded config: %s", cfg.JSON())
	}
	if _, err := LoadConfig(write("bad.yaml", "store:\n  stall_timeout: -1s\n")); err == nil || !strings.Contains(err.Error(), "store.") {
		t.Errorf("a negative stall timeout: err = %v", err)
	}
}
