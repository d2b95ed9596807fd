package pipelines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/kediff/kediff/internal/tmpfstest"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
)

// An output disk that fills up mid-run (a small tmpfs): the run fails with an
// error naming the output and the full disk, no shard's stats file claims
// files that are not whole, and a re-run on the same output made roomier
// resumes and ends with the Parquet files of a clean run, byte for byte.
//
// The disk fills at many points of the run (5% to 95% of what the output
// needs, in steps of 5%: while writing row groups and while closing Parquet
// files), and once exactly when the first shard's stats file is written.
func TestFullDiskFailsClearlyAndResumes(t *testing.T) {
	in := makeSample(t, 160, 10)
	cfg := testConfig()
	cfg.POS.Enabled = false // the dictionary load would only slow the runs down
	// One shard at a time, its samples in order, so that the disk's use at
	// each write is known.
	cfg.Workers.Readers, cfg.Workers.Image = 1, 1
	clean := filepath.Join(t.TempDir(), "clean")
	cleanSum := preprocess(t, in, clean, cfg, Split{0, 1})
	c := fullDiskCase{in: in, cfg: cfg, clean: clean, want: shardFiles(t, clean), shards: cleanSum.Processed, need: diskUsage(t, clean)}

	for pct := 5; pct < 100; pct += 5 {
		t.Run(fmt.Sprintf("full_at_%d_percent", pct), func(t *testing.T) {
			c.run(t, c.need*int64(pct)/100, "")
		})
	}
	// Room for exactly the first shard's Parquet files: the disk is full
	// when its stats file is written.
	t.Run("full_at_first_stats_file", func(t *testing.T) {
		size := pages(t, filepath.Join(clean, shards.ParquetName("00000"))) + pages(t, filepath.Join(clean, shards.RejectsName("00000")))
		c.run(t, size, shards.StatsName("00000"))
	})
}

type fullDiskCase struct {
	in, clean string
	cfg       Config
	want      map[string][]byte
	shards    int
	need      int64 // bytes the clean run's output takes on a tmpfs
}

// run preprocesses into a tmpfs of size bytes, expecting the disk to fill
// (while writing the file named failing, if given), checks what the failed
// run left, then makes the disk roomier and re-runs.
func (c fullDiskCase) run(t *testing.T, size int64, failing string) {
	out := tmpfstest.Mount(t, size)
	_, err := Preprocess(context.Background(), PreprocessOptions{Input: c.in, Output: out, Config: c.cfg, Split: Split{0, 1}, Logger: quietLog})
	if err == nil {
		t.Fatalf("the run into a tmpfs of %d bytes (the output takes %d) succeeded:\n%s", size, c.need, fileNames(t, out))
	}
	if pe := (*stages.PanicError)(nil); errors.As(err, &pe) {
		t.Fatalf("the run panicked: %v\n%s", err, pe.Stack)
	}
	msg := err.Error()
	if !strings.Contains(msg, out) || !strings.Contains(msg, "no space left on device") {
		t.Fatalf("error %q: want it to name the output %s and say the disk is full", msg, out)
	}
	if failing != "" && !strings.Contains(msg, failing) {
		t.Fatalf("error %q: want the disk full while writing %s", msg, failing)
	}
	t.Logf("full disk: %v", err)
	complete := checkCompleteShards(t, out)
	t.Logf("%d of %d shards complete when the disk filled", complete, c.shards)

	tmpfstest.Resize(t, out, 4*c.need)
	sum := preprocess(t, c.in, out, c.cfg, Split{0, 1})
	if sum.Skipped != complete || sum.Skipped+sum.Processed != c.shards {
		t.Errorf("re-run skipped %d and processed %d shards; want the %d complete ones skipped and the rest of %d done",
			sum.Skipped, sum.Processed, complete, c.shards)
	}
	sameFiles(t, "full disk, then resumed", c.want, shardFiles(t, out))
	if n := checkCompleteShards(t, out); n != c.shards {
		t.Errorf("%d complete shards after the re-run, want %d", n, c.shards)
	}
	// Nothing of the failed run is left behind: the same names as the
	// clean run's.
	if got, want := fileNames(t, out), fileNames(t, c.clean); got != want {
		t.Errorf("files after the re-run:\n%s\nclean run:\n%s", got, want)
	}
}

// checkCompleteShards checks every stats file in dir against the disk: the
// files it lists exist with the sizes it records and open as Parquet with
// the row counts it claims. It returns the number of stats files.
func checkCompleteShards(t *testing.T, dir string) int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"+shards.StatsSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		id := strings.TrimSuffix(filepath.Base(p), shards.StatsSuffix)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var st shards.Stats
		if err := json.Unmarshal(b, &st); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		rows := map[string]int64{shards.ParquetName(id): st.Written, shards.RejectsName(id): st.Rejected}
		if len(st.Files) != len(rows) || st.Read != st.Written+st.Rejected {
			t.Errorf("%s: files %v, read %d = %d written + %d rejected?", p, st.Files, st.Read, st.Written, st.Rejected)
		}
		for name, n := range rows {
			path := filepath.Join(dir, name)
			f, err := os.Open(path)
			if err != nil {
				t.Errorf("%s claims %s: %v", p, name, err)
				continue
			}
			fi, _ := f.Stat()
			if fi.Size() != st.Files[name] {
				t.Errorf("%s: %d bytes, %s says %d", path, fi.Size(), p, st.Files[name])
			} else if pf, err := parquet.OpenFile(f, fi.Size()); err != nil {
				t.Errorf("%s (complete by %s) does not open as Parquet: %v", path, p, err)
			} else if pf.NumRows() != n {
				t.Errorf("%s: %d rows, %s says %d", path, pf.NumRows(), p, n)
			}
			f.Close()
		}
	}
	return len(paths)
}

const page = 4096 // tmpfs allocates whole pages

// pages is the space path takes on a tmpfs.
func pages(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return (fi.Size() + page - 1) / page * page
}

// diskUsage is what dir's files take on a tmpfs: each rounded up to pages.
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += (fi.Size() + page - 1) / page * page
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fileNames lists dir's files, one a line.
func fileNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, "\n")
}
