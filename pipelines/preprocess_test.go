package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/synth"
)

// makeSample writes a synthetic WebDataset input (with broken samples) and
// returns its folder.
func makeSample(t *testing.T, samples, perShard int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "in")
	_, err := synth.Generate(context.Background(), dir, synth.Options{
		Samples: samples, PerShard: perShard, Width: 160, Height: 120, Seed: 7, Quality: 85,
		Lang: "mixed", Photo: true, BadSamples: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// quietLog keeps test output to failures; the CLI tests cover the logs.
var quietLog = slog.New(slog.DiscardHandler)

func testConfig() Config {
	cfg := Default()
	cfg.Image.Size = 64
	cfg.Output.RowGroupRows = 8
	return cfg
}

func preprocess(t *testing.T, in, out string, cfg Config, split Split) Summary {
	t.Helper()
	sum, err := Preprocess(context.Background(), PreprocessOptions{Input: in, Output: out, Config: cfg, Split: split, Logger: quietLog})
	if err != nil {
		t.Fatalf("preprocess %s -> %s (worker %d/%d): %v", in, out, split.Index, split.Count, err)
	}
	return sum
}

// shardFiles returns the contents of the files that must be reproducible
// (Parquet rows and rejects) by name.
func shardFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		b, err := os.ReadFile(p)
		files[filepath.Base(p)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: reference has no files", what)
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got[n]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, n)
		case !bytes.Equal(g, want[n]):
			t.Errorf("%s: %s differs (%d vs %d bytes)", what, n, len(g), len(want[n]))
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: unexpected %s", what, n)
		}
	}
}

type statsFile struct {
	Shard    string           `json:"shard"`
	Read     int64            `json:"read"`
	Written  int64            `json:"written"`
	Rejected int64            `json:"rejected"`
	Reasons  map[string]int64 `json:"reasons"`
}

func readStats(t *testing.T, dir string) []statsFile {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*_stats.json"))
	var out []statsFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var s statsFile
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, s)
	}
	return out
}

func TestPreprocessAccountsForEverySample(t *testing.T) {
	in := makeSample(t, 40, 10)
	out := filepath.Join(t.TempDir(), "out")
	sum := preprocess(t, in, out, testConfig(), Split{0, 1})
	if sum.Processed != 4 || sum.Inputs != 4 {
		t.Fatalf("summary %+v: want 4 shards processed", sum)
	}
	if sum.Read != sum.Written+sum.Rejected {
		t.Fatalf("read %d != written %d + rejected %d", sum.Read, sum.Written, sum.Rejected)
	}
	if sum.Written < 40 || sum.Rejected == 0 {
		t.Fatalf("summary %+v: want the 40 good samples written and the broken ones rejected", sum)
	}
	stats := readStats(t, out)
	if len(stats) != 4 {
		t.Fatalf("%d stats files, want 4", len(stats))
	}
	var read, written, rejected int64
	for _, s := range stats {
		read += s.Read
		written += s.Written
		rejected += s.Rejected
		var reasons int64
		for _, n := range s.Reasons {
			reasons += n
		}
		if reasons != s.Rejected {
			t.Errorf("shard %s: reasons add up to %d, rejected %d", s.Shard, reasons, s.Rejected)
		}
	}
	if read != sum.Read || written != sum.Written || rejected != sum.Rejected {
		t.Fatalf("stats files say %d/%d/%d, run summary %d/%d/%d", read, written, rejected, sum.Read, sum.Written, sum.Rejected)
	}

	// A second run finds everything complete and writes nothing.
	again := preprocess(t, in, out, testConfig(), Split{0, 1})
	if again.Skipped != 4 || again.Processed != 0 {
		t.Fatalf("re-run %+v: want all 4 shards skipped", again)
	}
}

// Two and three workers write together exactly the shards of one.
func TestWorkersTogetherEqualOne(t *testing.T) {
	in := makeSample(t, 60, 6)
	cfg := testConfig()
	one := filepath.Join(t.TempDir(), "one")
	preprocess(t, in, one, cfg, Split{0, 1})
	want := shardFiles(t, one)
	for _, n := range []int{2, 3} {
		out := filepath.Join(t.TempDir(), "split")
		for w := range n {
			sum := preprocess(t, in, out, cfg, Split{w, n})
			if sum.Owned == 0 || sum.Owned == sum.Inputs {
				t.Errorf("%d workers: worker %d owns %d of %d shards; the split should share them", n, w, sum.Owned, sum.Inputs)
			}
		}
		sameFiles(t, "workers", want, shardFiles(t, out))
	}
}

// Killing a run at random points and re-running gives byte-identical shards
// to one clean run: nothing duplicated, nothing missing.
func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it repeatedly")
	}
	bin := filepath.Join(t.TempDir(), "kediff")
	build := exec.Command("go", "build", "-o", bin, "../cmd/kediff")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	in := makeSample(t, 160, 10)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	// One image worker makes the run long enough to be killed mid-way.
	if err := os.WriteFile(cfgPath, []byte("image: {size: 64}\npos: {enabled: false}\noutput: {row_group_rows: 4}\nworkers: {image: 1, readers: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runTo := func(out string) *exec.Cmd {
		return exec.Command(bin, "preprocess", "--input", in, "--output", out, "--config", cfgPath, "--quiet", "--log-level", "warn")
	}

	clean := filepath.Join(t.TempDir(), "clean")
	start := time.Now()
	if b, err := runTo(clean).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, b)
	}
	cleanTime := time.Since(start)
	want := shardFiles(t, clean)

	out := filepath.Join(t.TempDir(), "killed")
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	kills := 0
	for range 5 {
		cmd := runTo(out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		at := time.Duration(rng.Int64N(int64(cleanTime)))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(at):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		case err := <-done:
			if err != nil {
				t.Fatalf("run finished with %v", err)
			}
		}
		// After every kill, each shard with a stats file must be whole.
		for _, s := range readStats(t, out) {
			if s.Read != s.Written+s.Rejected {
				t.Fatalf("after kill: shard %s stats inconsistent: %+v", s.Shard, s)
			}
		}
	}
	if kills == 0 {
		t.Fatalf("no run was killed (clean run took %v)", cleanTime)
	}
	if b, err := runTo(out).CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, b)
	}
	got := shardFiles(t, out)
	sameFiles(t, "killed and resumed", want, got)
	if t.Failed() {
		explainDiff(t, clean, out, want, got)
	}
	if got, want := len(readStats(t, out)), len(readStats(t, clean)); got != want {
		t.Fatalf("%d stats files after resume, want %d", got, want)
	}
}

// explainDiff logs, for each Parquet file that differs, both versions' rows
// as DuckDB reads them, so that a failure says what changed.
func explainDiff(t *testing.T, wantDir, gotDir string, want, got map[string][]byte) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		return
	}
	for name, w := range want {
		if bytes.Equal(w, got[name]) {
			continue
		}
		for _, dir := range []string{wantDir, gotDir} {
			cmd := exec.Command("node", "../tools/duckdb/query.mjs",
				"SELECT * EXCLUDE (image) FROM read_parquet('"+filepath.Join(dir, name)+"', union_by_name=true)")
			if strings.HasSuffix(name, "_rejects.parquet") {
				cmd.Args[len(cmd.Args)-1] = "SELECT * FROM '" + filepath.Join(dir, name) + "'"
			}
			b, err := cmd.CombinedOutput()
			t.Logf("%s/%s (%v):\n%s", filepath.Base(dir), name, err, b)
		}
	}
}

// A scheduled run over a glob (deploy/k8s/cronjob.yaml) processes only the
// input shards that arrived since the last run; the earlier output shards are
// left as they were, and the manifest lists all of them.
func TestScheduledRunTakesOnlyNewShards(t *testing.T) {
	all := makeSample(t, 40, 10) // 00000..00003.tar
	in := filepath.Join(t.TempDir(), "incoming")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	arrive := func(names ...string) {
		for _, n := range names {
			if err := os.Rename(filepath.Join(all, n), filepath.Join(in, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := testConfig()
	out := filepath.Join(t.TempDir(), "out")
	glob := filepath.Join(in, "*.tar")
	run := func() (skipped, processed int) {
		for w := range 2 { // two pods of the Indexed Job
			sum := preprocess(t, glob, out, cfg, Split{w, 2})
			skipped += sum.Skipped
			processed += sum.Processed
		}
		return skipped, processed
	}

	arrive("00000.tar", "00002.tar")
	if s, p := run(); s != 0 || p != 2 {
		t.Fatalf("first run: %d skipped, %d processed; want 0 and 2", s, p)
	}
	first := shardFiles(t, out)
	stamps := map[string]time.Time{}
	for n := range first {
		fi, err := os.Stat(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		stamps[n] = fi.ModTime()
	}

	arrive("00001.tar", "00003.tar")
	if s, p := run(); s != 2 || p != 2 {
		t.Fatalf("second run: %d skipped, %d processed; want the 2 old shards skipped and the 2 new ones processed", s, p)
	}
	for n, when := range stamps {
		fi, err := os.Stat(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(when) {
			t.Errorf("%s was rewritten by the second run", n)
		}
	}

	// Together the two runs wrote what one run over all four shards writes.
	once := filepath.Join(t.TempDir(), "once")
	preprocess(t, glob, once, cfg, Split{0, 1})
	sameFiles(t, "two scheduled runs", shardFiles(t, once), shardFiles(t, out))

	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m shards.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range m.Shards {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, " "); got != "00000 00001 00002 00003" || len(m.Incomplete) != 0 {
		t.Fatalf("manifest lists shards %q, incomplete %v; want all four complete", got, m.Incomplete)
	}
}
