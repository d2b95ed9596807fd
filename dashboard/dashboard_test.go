package dashboard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeRun makes a checkpoint folder: metrics.jsonl of n steps (comm_s if
// comm), state.json, and a grid of width w at each of grids.
func writeRun(t *testing.T, dir string, n int, comm bool, expert int, gridW int, grids ...int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, GridDir), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		s := Step{Step: i, Loss: 1/float64(i) + 0.05*math.Sin(float64(i)), GradNorm: 2 / math.Sqrt(float64(i)),
			LR: 1e-4 * math.Min(1, float64(i)/10), SamplesPerS: 100 + float64(i%7)}
		if comm {
			s.CommS = 0.01 * float64(i%3)
		}
		line, _ := json.Marshal(s)
		b.Write(append(line, '\n'))
	}
	b.WriteString("{\"step\": 99, \"loss\n") // cut by a crash mid-write
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(map[string]int{"step": n, "expert": expert, "experts": 4})
	os.WriteFile(filepath.Join(dir, StateFile), st, 0o644)
	for _, g := range grids {
		img := image.NewRGBA(image.Rect(0, 0, gridW, 32))
		for i := range img.Pix {
			img.Pix[i] = uint8(g*37 + i)
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		os.WriteFile(filepath.Join(dir, GridDir, fmt.Sprintf("step-%06d.png", g)), buf.Bytes(), 0o644)
	}
	os.WriteFile(filepath.Join(dir, GridDir, "notes.txt"), []byte("not a grid"), 0o644)
}

var (
	imgTag  = regexp.MustCompile(`<img\b[^>]*>`)
	srcAttr = regexp.MustCompile(`\b(?:src|href|xlink:href)="([^"]*)"`)
	figure  = regexp.MustCompile(`(?s)<figure class="chart" id="chart-([a-z_]+)">(.*?)</figure>`)
)

// selfContained fails t unless page names nothing outside itself: no URL,
// no script, every image a PNG data: URI that decodes, every chart an
// inline <svg>. It returns the page's charts by metric and its images.
func selfContained(t *testing.T, page string) (charts map[string]string, imgs []image.Image) {
	t.Helper()
	low := strings.ToLower(page)
	for _, bad := range []string{"http://", "https://", "<script", "<link", "<iframe", "url(", "@import", "file://"} {
		if i := strings.Index(low, bad); i >= 0 {
			t.Errorf("page holds %q: ...%s...", bad, page[max(0, i-80):min(len(page), i+80)])
		}
	}
	for _, m := range srcAttr.FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "data:image/png;base64,") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("reference %.80q is not a data: URI", m[1])
		}
	}
	for _, tag := range imgTag.FindAllString(page, -1) {
		m := srcAttr.FindStringSubmatch(tag)
		if m == nil {
			t.Errorf("<img> without src: %s", tag)
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(m[1], "data:image/png;base64,"))
		if err != nil {
			t.Fatalf("img data: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("img data is not a PNG: %v", err)
		}
		imgs = append(imgs, img)
	}
	charts = map[string]string{}
	for _, m := range figure.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[2], "<svg") || !strings.Contains(m[2], "</svg>") {
			t.Errorf("chart %s is not an inline <svg>", m[1])
		}
		charts[m[1]] = m[2]
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(page, "</html>\n") {
		t.Error("not a whole HTML document")
	}
	return charts, imgs
}

// svgText is whether the chart's SVG writes s as a text element.
func svgText(chart, s string) bool { return strings.Contains(chart, ">"+s+"</text>") }

func TestPageOfOneRun(t *testing.T) {
	tests := []struct {
		name       string
		steps      int
		comm       bool
		grids      []int
		gridW      int
		wantCharts []string
		wantGrids  []int
	}{
		{"comm_and_grids", 60, true, []int{20, 40, 60}, 96, []string{"loss", "grad_norm", "lr", "samples_per_s", "comm_s"}, []int{20, 40, 60}},
		{"one_process_no_comm_chart", 30, false, []int{10}, 96, []string{"loss", "grad_norm", "lr", "samples_per_s"}, []int{10}},
		{"no_grids", 5, false, nil, 0, []string{"loss", "grad_norm", "lr", "samples_per_s"}, nil},
		{"wide_grids_scaled", 10, false, []int{5, 10}, 1500, []string{"loss", "grad_norm", "lr", "samples_per_s"}, []int{5, 10}},
		{"many_grids_spread", 100, false, []int{2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60}, 64,
			[]string{"loss", "grad_norm", "lr", "samples_per_s"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "base")
			writeRun(t, dir, tc.steps, tc.comm, -1, tc.gridW, tc.grids...)
			run, err := ReadRun(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Steps) != tc.steps || run.Skipped != 1 || run.Note != "base" || run.Name != "base" {
				t.Fatalf("ReadRun: %d steps, %d skipped, note %q, name %q", len(run.Steps), run.Skipped, run.Note, run.Name)
			}
			out := filepath.Join(t.TempDir(), "dashboard.html")
			if err := WriteFile(out, []Run{run}, Options{Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(out)
			page := string(raw)
			charts, imgs := selfContained(t, page)
			if len(charts) != len(tc.wantCharts) {
				t.Errorf("charts %v, want %v", keys(charts), tc.wantCharts)
			}
			for _, id := range tc.wantCharts {
				c, ok := charts[id]
				if !ok {
					t.Errorf("no chart of %s", id)
					continue
				}
				m := metric(id)
				for _, s := range []string{m.Title, "step", m.YLabel, "base", "raw", "smoothed (EMA 0.9)"} {
					if !svgText(c, s) {
						t.Errorf("chart %s lacks the text %q", id, s)
					}
				}
			}
			wantGrids := tc.wantGrids
			if wantGrids == nil && len(tc.grids) > 24 {
				for _, g := range spread(gridsOf(dir, tc.grids), 24) {
					wantGrids = append(wantGrids, g.Step)
				}
				if !strings.Contains(page, fmt.Sprintf("24 of the %d grids", len(tc.grids))) {
					t.Error("the page does not say it shows some of the grids")
				}
			}
			if len(imgs) != len(wantGrids) {
				t.Fatalf("%d images, want the %d grids", len(imgs), len(wantGrids))
			}
			last := -1
			for i, g := range wantGrids {
				label := fmt.Sprintf("<figcaption>step %d</figcaption>", g)
				at := strings.Index(page, label)
				if at < 0 {
					t.Errorf("no grid labelled step %d", g)
				}
				if at < last {
					t.Errorf("grid of step %d before an older one: want newest last", g)
				}
				last = at
				if w := imgs[i].Bounds().Dx(); w != min(tc.gridW, 512) {
					t.Errorf("grid %d shown %d px wide, want %d", g, w, min(tc.gridW, 512))
				}
			}
			if len(tc.grids) == 0 && !strings.Contains(page, "No sample grids yet") {
				t.Error("a run without grids does not say so")
			}
			if !strings.Contains(page, "1 unreadable lines of metrics.jsonl skipped") {
				t.Error("the cut metrics line is not reported")
			}
		})
	}
}

func gridsOf(dir string, steps []int) []Grid {
	var g []Grid
	for _, s := range steps {
		g = append(g, Grid{Step: s, Path: filepath.Join(dir, GridDir, fmt.Sprintf("step-%06d.png", s))})
	}
	return g
}

func metric(id string) Metric {
	for _, m := range Metrics {
		if m.ID == id {
			return m
		}
	}
	panic(id)
}

func keys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

// TestPageOfSeveralRuns: a base and experts on one page, found from their
// parent folder in natural order; every chart has a line per run, and each
// run's latest grid is shown.
func TestPageOfSeveralRuns(t *testing.T) {
	root := t.TempDir()
	writeRun(t, filepath.Join(root, "base"), 40, false, -1, 64, 20, 40)
	writeRun(t, filepath.Join(root, "expert-10"), 12, false, 3, 64, 6, 12)
	writeRun(t, filepath.Join(root, "expert-2"), 15, true, 2, 64, 15)
	os.MkdirAll(filepath.Join(root, "logs"), 0o755) // not a run
	runs, err := FindRuns([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Name+"/"+r.Note)
	}
	if got := strings.Join(names, " "); got != "base/base expert-2/expert 2 of 4 expert-10/expert 3 of 4" {
		t.Fatalf("runs %s", got)
	}
	var b bytes.Buffer
	if err := Write(&b, runs, Options{Smooth: 0.6}); err != nil {
		t.Fatal(err)
	}
	charts, imgs := selfContained(t, b.String())
	for _, id := range []string{"loss", "grad_norm", "lr", "samples_per_s", "comm_s"} {
		for _, r := range runs {
			if !svgText(charts[id], r.Name) {
				t.Errorf("chart %s has no line named %s", id, r.Name)
			}
		}
		if !svgText(charts[id], "smoothed (EMA 0.6)") {
			t.Errorf("chart %s does not say its smoothing", id)
		}
	}
	if len(imgs) != 3 {
		t.Errorf("%d grids, want each run's latest", len(imgs))
	}
	for _, l := range []string{"base: step 40 (latest)", "expert-2: step 15 (latest)", "expert-10: step 12 (latest)"} {
		if !strings.Contains(b.String(), l) {
			t.Errorf("no grid labelled %q", l)
		}
	}
	if !strings.Contains(b.String(), "kediff training: 3 runs") {
		t.Error("no default title")
	}
}

func TestFindRunsErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := FindRuns([]string{root}); err == nil || !strings.Contains(err.Error(), "has no metrics.jsonl, nor has any folder in it") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := FindRuns([]string{filepath.Join(root, "missing")}); err == nil {
		t.Error("missing folder: no error")
	}
	// two runs named base: named by their paths
	writeRun(t, filepath.Join(root, "a", "base"), 3, false, -1, 0)
	writeRun(t, filepath.Join(root, "b", "base"), 3, false, -1, 0)
	runs, err := FindRuns([]string{filepath.Join(root, "a", "base"), filepath.Join(root, "b", "base")})
	if err != nil {
		t.Fatal(err)
	}
	if runs[0].Name == runs[1].Name || !strings.HasSuffix(runs[0].Name, "a/base") {
		t.Errorf("clashing names: %q %q", runs[0].Name, runs[1].Name)
	}
}

func TestEmptyRun(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, []Run{{Name: "fresh", Dir: t.TempDir()}}, Options{}); err != nil {
		t.Fatal(err)
	}
	charts, _ := selfContained(t, b.String())
	if !svgText(charts["loss"], "no data") || !strings.Contains(b.String(), "no steps logged yet") {
		t.Error("a run without steps does not say so")
	}
}

func TestUnreadableGridIsNamed(t *testing.T) {
	dir := t.TempDir()
	writeRun(t, dir, 3, false, -1, 0)
	os.WriteFile(filepath.Join(dir, GridDir, "step-000003.png"), []byte("not a png"), 0o644)
	run, _ := ReadRun(dir)
	var b bytes.Buffer
	if err := Write(&b, []Run{run}, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "unreadable: ") || !strings.Contains(b.String(), "step 3") {
		t.Error("a bad grid is not named on the page")
	}
}

func TestThumbsCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.png")
	write := func(c color.Gray) {
		img := image.NewGray(image.Rect(0, 0, 600, 10))
		for i := range img.Pix {
			img.Pix[i] = c.Y
		}
		var buf bytes.Buffer
		png.Encode(&buf, img)
		os.WriteFile(path, buf.Bytes(), 0o644)
	}
	write(color.Gray{Y: 10})
	var c Thumbs
	a, err := c.get(path, 300)
	if err != nil || a.w != 300 || a.h != 5 {
		t.Fatalf("thumb %dx%d, %v; want 300x5", a.w, a.h, err)
	}
	b, _ := c.get(path, 300)
	if a.dataURI != b.dataURI || len(c.m) != 1 {
		t.Fatal("second get not from the cache")
	}
	write(color.Gray{Y: 200})
	os.Chtimes(path, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	d, _ := c.get(path, 300)
	if d.dataURI == a.dataURI {
		t.Error("a changed grid was not read again")
	}
}

func TestSpread(t *testing.T) {
	g := gridsOf("", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "1 2 3 4 5 6 7 8 9 10"}, {20, "1 2 3 4 5 6 7 8 9 10"}, {1, "10"}, {2, "1 10"}, {4, "1 4 7 10"}} {
		var got []string
		for _, x := range spread(g, tc.n) {
			got = append(got, fmt.Sprint(x.Step))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("spread %d: %v, want %s", tc.n, got, tc.want)
		}
	}
}

func TestInlineSVG(t *testing.T) {
	doc := "<?xml version=\"1.0\"?>\n<!-- Generated by SVGo -->\n<svg width=\"10pt\" height=\"5pt\" viewBox=\"0 0 10 5\"\n\txmlns=\"http://www.w3.org/2000/svg\"\n\txmlns:xlink=\"http://www.w3.org/1999/xlink\">\n<text>a</text></svg>\n"
	got := inlineSVG([]byte(doc))
	if want := "<svg width=\"10pt\" height=\"5pt\" viewBox=\"0 0 10 5\">\n<text>a</text></svg>\n"; got != want {
		t.Errorf("inlineSVG:\n%q\nwant\n%q", got, want)
	}
}
