package dashboard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Files of a checkpoint folder the dashboard reads (package train writes
// them: train.MetricsFile, train.GridDir, train.StateFile).
const (
	MetricsFile = "metrics.jsonl"
	GridDir     = "samples"
	StateFile   = "state.json"
)

// Step is one line of metrics.jsonl: what the dashboard plots of it.
type Step struct {
	Step        int     `json:"step"`
	Loss        float64 `json:"loss"`
	GradNorm    float64 `json:"grad_norm"`
	LR          float64 `json:"lr"`
	SamplesPerS float64 `json:"samples_per_s"`
	CommS       float64 `json:"comm_s"`
}

// Run is one training run (a checkpoint folder) on the page.
type Run struct {
	Name string // its label on the charts (the folder's name)
	Dir  string // the checkpoint folder: grids are Dir/samples/step-NNNNNN.png
	// Note says what the run trains ("base", "expert 3 of 10").
	Note  string
	Steps []Step
	// Skipped counts the lines of metrics.jsonl that did not parse (a line
	// cut by a crash mid-write).
	Skipped int
}

// ReadMetrics reads metrics.jsonl lines, skipping (and counting) the ones
// that are not JSON objects.
func ReadMetrics(r io.Reader) (steps []Step, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var s Step
		if json.Unmarshal(line, &s) != nil {
			skipped++
			continue
		}
		steps = append(steps, s)
	}
	return steps, skipped, sc.Err()
}

// ReadRun reads the run in checkpoint folder dir: its metrics.jsonl and,
// for the note, its state.json (which expert it trains), if there.
func ReadRun(dir string) (Run, error) {
	r := Run{Name: RunName(dir), Dir: dir}
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		return r, fmt.Errorf("dashboard: %s is not a training checkpoint folder (kediff train --out): %w", dir, err)
	}
	defer f.Close()
	if r.Steps, r.Skipped, err = ReadMetrics(f); err != nil {
		return r, fmt.Errorf("dashboard: %s: %w", filepath.Join(dir, MetricsFile), err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, StateFile)); err == nil {
		var st struct {
			Expert  *int `json:"expert"`
			Experts int  `json:"experts"`
		}
		if json.Unmarshal(raw, &st) == nil && st.Expert != nil {
			r.Note = Note(*st.Expert, st.Experts)
		}
	}
	return r, nil
}

// Note describes what a run trains: "base" for expert < 0, else "expert N
// of n".
func Note(expert, experts int) string {
	if expert < 0 {
		return "base"
	}
	return fmt.Sprintf("expert %d of %d", expert, experts)
}

// RunName is a checkpoint folder's label on the charts: its base name
// (of the absolute path, so "." is named too).
func RunName(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Base(dir)
}

// FindRuns reads the runs of paths for one page: a path holding
// metrics.jsonl is one run; any other folder stands for its subfolders that
// hold one (out/train: base, expert-0, ...), in natural order (expert-2
// before expert-10). Runs whose names clash are named by their paths.
func FindRuns(paths []string) ([]Run, error) {
	var runs []Run
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, MetricsFile)); err == nil {
			r, err := ReadRun(p)
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		var subs []string
		for _, e := range entries {
			if e.IsDir() {
				if _, err := os.Stat(filepath.Join(p, e.Name(), MetricsFile)); err == nil {
					subs = append(subs, e.Name())
				}
			}
		}
		if len(subs) == 0 {
			return nil, fmt.Errorf("dashboard: %s has no %s, nor has any folder in it: give checkpoint folders (kediff train --out DIR) or a folder of them", p, MetricsFile)
		}
		slices.SortFunc(subs, naturalCompare)
		for _, s := range subs {
			r, err := ReadRun(filepath.Join(p, s))
			if err != nil {
				return nil, err
			}
			runs = append(runs, r)
		}
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Name]++
	}
	for i := range runs {
		if count[runs[i].Name] > 1 {
			runs[i].Name = filepath.ToSlash(filepath.Clean(runs[i].Dir))
		}
	}
	return runs, nil
}

var digits = regexp.MustCompile(`\d+|\D+`)

// naturalCompare orders names with their numbers compared as numbers.
func naturalCompare(a, b string) int {
	pa, pb := digits.FindAllString(a, -1), digits.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		nx, ex := strconv.ParseUint(x, 10, 64)
		ny, ey := strconv.ParseUint(y, 10, 64)
		if ex == nil && ey == nil {
			if nx != ny {
				if nx < ny {
					return -1
				}
				return 1
			}
			continue
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

// Grid is one sample grid drawn while training.
type Grid struct {
	Step int
	Path string
}

var gridName = regexp.MustCompile(`^step-(\d+)\.png$`)

// ListGrids lists dir's sample grids (dir/samples/step-NNNNNN.png) by step;
// none (and no error) when there is no samples folder.
func ListGrids(dir string) ([]Grid, error) {
	entries, err := os.ReadDir(filepath.Join(dir, GridDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var out []Grid
	for _, e := range entries {
		m := gridName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		out = append(out, Grid{Step: n, Path: filepath.Join(dir, GridDir, e.Name())})
	}
	slices.SortFunc(out, func(a, b Grid) int { return a.Step - b.Step })
	return out, nil
}

// spread picks at most n of grids, evenly over the run, always keeping the
// first and the last.
func spread(grids []Grid, n int) []Grid {
	if n <= 0 || len(grids) <= n {
		return grids
	}
	if n == 1 {
		return grids[len(grids)-1:]
	}
	out := make([]Grid, 0, n)
	for i := range n {
		out = append(out, grids[i*(len(grids)-1)/(n-1)])
	}
	return out
}
