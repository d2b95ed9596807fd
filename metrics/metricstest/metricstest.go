// Package metricstest scrapes and parses Prometheus metrics and runs a
// Pushgateway, for the tests of package metrics and of the kediff command.
package metricstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/pyref"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/kediff/kediff/shards"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Parse reads the Prometheus text format with the client's own parser.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Scrape gets url (a /metrics endpoint) as text and parses it.
func Scrape(url string) (Families, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return Parse(bytes.NewReader(body))
}

// Series is one sample of a family: its labels and value.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Series lists the samples of family name whose labels include want
// (name, value pairs).
func (f Families) Series(name string, want ...string) []Series {
	mf := f[name]
	if mf == nil {
		return nil
	}
	var out []Series
	for _, m := range mf.Metric {
		s := Series{Labels: map[string]string{}}
		for _, l := range m.Label {
			s.Labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.Labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			s.Value = m.Counter.GetValue()
		case m.Gauge != nil:
			s.Value = m.Gauge.GetValue()
		case m.Untyped != nil:
			s.Value = m.Untyped.GetValue()
		}
		out = append(out, s)
	}
	return out
}

// Value is the sum of the samples of family name whose labels include want;
// ok is false when there are none.
func (f Families) Value(name string, want ...string) (v float64, ok bool) {
	for _, s := range f.Series(name, want...) {
		v += s.Value
		ok = true
	}
	return v, ok
}

// By sums the samples of family name whose labels include want, by the
// value of label.
func (f Families) By(name, label string, want ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range f.Series(name, want...) {
		out[s.Labels[label]] += s.Value
	}
	return out
}

// PushgatewayVersion is the Pushgateway that Pushgateway builds.
const PushgatewayVersion = "v1.11.5"

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Pushgateway starts a Pushgateway on a free loopback port for the rest of
// the test and returns its URL. It is the real one, built once with go
// install from the module proxy (cached under the module's .cache), when
// that works; otherwise a stand-in that implements the push API's PUT,
// POST and DELETE of the text and protobuf formats and GET /metrics, and
// real is false. KEDIFF_TEST_PUSHGATEWAY=stand-in picks the stand-in; under
// CI (CI set) without it, a Pushgateway that does not build or start fails
// the test.
func Pushgateway(t testing.TB) (url string, real bool) {
	t.Helper()
	if os.Getenv("KEDIFF_TEST_PUSHGATEWAY") == "stand-in" {
		buildOnce.Do(func() { buildErr = errors.New("KEDIFF_TEST_PUSHGATEWAY=stand-in") })
	}
	standIn := os.Getenv("KEDIFF_TEST_PUSHGATEWAY") == "stand-in"
	root := pyref.Root(t)
	buildOnce.Do(func() { buildBin, buildErr = buildPushgateway(root) })
	if buildErr == nil {
		url, err := startPushgateway(t, buildBin)
		if err == nil {
			return url, true
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("the real Pushgateway did not start: %v", err)
		}
		t.Logf("the real Pushgateway did not start (%v); using the stand-in", err)
	} else {
		if os.Getenv("CI") != "" && !standIn {
			t.Fatalf("the real Pushgateway could not be built: %v", buildErr)
		}
		t.Logf("the real Pushgateway could not be built (%v); using the stand-in", buildErr)
	}
	srv := httptest.NewServer(newFakeGateway())
	t.Cleanup(srv.Close)
	return srv.URL, false
}

func buildPushgateway(root string) (string, error) {
	dir := filepath.Join(root, ".cache", "pushgateway-"+PushgatewayVersion)
	bin := filepath.Join(dir, "pushgateway")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/prometheus/pushgateway@"+PushgatewayVersion)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install github.com/prometheus/pushgateway@%s: %v\n%s", PushgatewayVersion, err, out)
	}
	return bin, nil
}

func startPushgateway(t testing.TB, bin string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return "", fmt.Errorf("pushgateway exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("pushgateway not ready at %s after 20s: %s", url, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(stop)
	return url, nil
}

// fakeGateway is the stand-in: groups of pushed families, keyed by the
// path's labels.
type fakeGateway struct {
	mu     sync.Mutex
	groups map[string]map[string]*dto.MetricFamily
}

func newFakeGateway() *fakeGateway {
	return &fakeGateway{groups: map[string]map[string]*dto.MetricFamily{}}
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/-/ready":
		return
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
		g.mu.Lock()
		defer g.mu.Unlock()
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		merged := map[string]*dto.MetricFamily{}
		for _, fams := range g.groups {
			for name, mf := range fams {
				if m := merged[name]; m != nil {
					m.Metric = append(m.Metric, mf.Metric...)
				} else {
					merged[name] = proto.Clone(mf).(*dto.MetricFamily)
				}
			}
		}
		for _, mf := range merged {
			if err := enc.Encode(mf); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/metrics/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts)%2 != 0 || parts[0] != "job" {
		http.Error(w, "want /metrics/job/JOB{/LABEL/VALUE}", http.StatusBadRequest)
		return
	}
	var labels []*dto.LabelPair
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		if n, ok := strings.CutSuffix(name, "@base64"); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			name, value = n, string(b)
		}
		labels = append(labels, &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)})
	}
	// A group is its set of labels, in whatever order the path gives them.
	var names []string
	for _, l := range labels {
		names = append(names, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(names)
	key := strings.Join(names, "\x00")
	g.mu.Lock()
	defer g.mu.Unlock()
	switch r.Method {
	case http.MethodDelete:
		delete(g.groups, key)
	case http.MethodPut, http.MethodPost:
		fams := map[string]*dto.MetricFamily{}
		if old := g.groups[key]; r.Method == http.MethodPost && old != nil {
			fams = old
		}
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err == io.EOF {
				break
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for _, m := range mf.Metric {
				m.Label = append(m.Label, labels...)
			}
			fams[mf.GetName()] = &mf
		}
		g.groups[key] = fams
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Must is Value that fails t when the series is missing.
func (f Families) Must(t testing.TB, name string, want ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, want...)
	if !ok {
		t.Fatalf("no %s%v in the metrics", name, want)
	}
	return v
}

// CheckPreprocess fails t unless the kediff_preprocess_* metrics in f (the
// series whose labels include want) add up to the stats files of the
// output folder out, and the input bytes to the files matching inputGlob:
// samples through every stage and read, rows written, rejects by reason and
// by stage, image bytes, and the Parquet bytes as the files are on disk. It
// returns the number of shards.
func CheckPreprocess(t testing.TB, f Families, out, inputGlob string, want ...string) int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(out, "*"+shards.StatsSuffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no stats files in %s (%v)", out, err)
	}
	var read, written, rejected, imageBytes, retries, resumes float64
	reasons, byStage, files := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var st shards.Stats
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		read += float64(st.Read)
		written += float64(st.Written)
		rejected += float64(st.Rejected)
		imageBytes += float64(st.ImageBytes)
		retries += float64(st.Retries)
		resumes += float64(st.Resumes)
		for k, v := range st.Reasons {
			reasons[k] += float64(v)
		}
		for k, v := range st.ByStage {
			byStage[k] += float64(v)
		}
		for name, size := range st.Files {
			fi, err := os.Stat(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != size {
				t.Fatalf("%s: %d bytes, its stats file says %d", name, fi.Size(), size)
			}
			kind := "rows"
			if strings.HasSuffix(name, "_rejects.parquet") {
				kind = "rejects"
			}
			files[kind] += float64(fi.Size())
		}
	}
	if written == 0 || rejected == 0 {
		t.Errorf("the run wrote %v rows and %v rejects: the check wants both", written, rejected)
	}
	with := func(kv ...string) []string { return append(append([]string{}, want...), kv...) }
	for _, s := range f.Series("kediff_preprocess_samples_total", want...) {
		if s.Value != read {
			t.Errorf("samples through stage %s: %v, the stats files read %v", s.Labels["stage"], s.Value, read)
		}
	}
	if got := f.Must(t, "kediff_preprocess_stage_items_in_total", with("stage", "write")...); got != read+float64(len(paths)) {
		t.Errorf("items into write: %v, want %v samples + %d shard ends", got, read, len(paths))
	}
	check := func(name string, wantV float64, kv ...string) {
		t.Helper()
		if got := f.Must(t, name, with(kv...)...); got != wantV {
			t.Errorf("%s%v: %v, the stats files say %v", name, kv, got, wantV)
		}
	}
	check("kediff_preprocess_samples_total", read, "stage", "read")
	check("kediff_preprocess_rows_written_total", written)
	check("kediff_preprocess_rejects_total", rejected)
	check("kediff_preprocess_image_bytes_total", imageBytes)
	check("kediff_preprocess_parquet_bytes_total", files["rows"], "file", "rows")
	check("kediff_preprocess_parquet_bytes_total", files["rejects"], "file", "rejects")
	check("kediff_preprocess_shards_total", float64(len(paths)), "result", "written")
	check("kediff_preprocess_store_faults_total", retries, "action", "retried")
	check("kediff_preprocess_store_faults_total", resumes, "action", "resumed")
	var in float64
	inputs, _ := filepath.Glob(inputGlob)
	for _, p := range inputs {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		in += float64(fi.Size())
	}
	check("kediff_preprocess_input_bytes_total", in)
	sameMap(t, "rejects by reason", f.By("kediff_preprocess_rejects_total", "reason", want...), reasons)
	sameMap(t, "rejects by stage", f.By("kediff_preprocess_rejects_total", "stage", want...), byStage)
	return len(paths)
}

func sameMap(t testing.TB, what string, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %q: metrics %v, stats files %v", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s %q: metrics %v, not in the stats files", what, k, v)
		}
	}
}

// CheckGrowth fails t if a kediff_* counter of the earlier scrape is
// missing from the later one or is larger there: counters only grow.
func CheckGrowth(t testing.TB, earlier, later Families) {
	t.Helper()
	for name, mf := range earlier {
		if !strings.HasPrefix(name, "kediff_") || mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, s := range earlier.Series(name) {
			var want []string
			for k, v := range s.Labels {
				want = append(want, k, v)
			}
			if got, ok := later.Value(name, want...); !ok || got < s.Value {
				t.Errorf("%s%v: %v, later %v (present: %v)", name, s.Labels, s.Value, got, ok)
			}
		}
	}
}
