package inspect

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/shards"
)

// Chromium's own background requests (component and extension updates,
// network time, account checks), which it makes whatever the page. Any
// other request through the proxy came from the page.
var chromeServiceHosts = []string{
	"accounts.google.com", "clients1.google.com", "clients2.google.com", "android.clients.google.com",
	"update.googleapis.com", "redirector.gvt1.com", "optimizationguide-pa.googleapis.com",
	"content-autofill.googleapis.com", "safebrowsingohttpgateway.googleapis.com", "www.googleapis.com",
}

// chromium finds Debian's chromium: the browser binary itself rather than
// the /usr/bin/chromium wrapper, which adds flags that fetch extensions.
// Outside CI a missing browser skips the test; under CI it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "no chromium: install it with apt-get install --no-install-recommends chromium (go tool task setup does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browserRun is what one headless Chromium run of a page gave.
type browserRun struct {
	shot     image.Image
	console  []string // console messages (the report has no script: any is an error)
	requests []string // requests through the proxy that the page made
}

var consoleRE = regexp.MustCompile(`:CONSOLE[(:]\d*\)?\]? ?(.*)`)

// screenshot opens page (a local file) in headless Chromium with every
// request sent to a proxy that records it and fails it, and returns the
// screenshot of the w x h viewport at device scale 1, the console messages
// and the page's requests.
func screenshot(t *testing.T, bin, page string, w, h int) browserRun {
	t.Helper()
	var mu sync.Mutex
	var requests []string
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host := r.Host
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		if !slices.Contains(chromeServiceHosts, host) {
			mu.Lock()
			requests = append(requests, r.Method+" "+r.Host+r.URL.Path)
			mu.Unlock()
		}
		http.Error(rw, "no network in this test", http.StatusBadGateway)
	}))
	defer proxy.Close()

	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--force-device-scale-factor=1", "--force-color-profile=srgb",
		fmt.Sprintf("--window-size=%d,%d", w, h), "--screenshot="+shot,
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--proxy-server="+proxy.URL, "--proxy-bypass-list=<-loopback>",
		"--enable-logging=stderr", "--v=0",
		"file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	var run browserRun
	for _, line := range strings.Split(string(out), "\n") {
		if m := consoleRE.FindStringSubmatch(line); m != nil {
			run.console = append(run.console, m[1])
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	if run.shot, err = png.Decode(f); err != nil {
		t.Fatal(err)
	}
	if b := run.shot.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("screenshot is %v, want %dx%d (device scale 1)", b, w, h)
	}
	mu.Lock()
	run.requests = requests
	mu.Unlock()
	return run
}

// TestChromium renders the report in headless Chromium: it loads with no
// network, no console message, and the screenshot shows the first sample's
// overlay where the layout puts it, with the kept box's line, the tinted
// mask cells and the untouched image in their expected colours.
func TestChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	bin := chromium(t)
	const w, h = 1280, 900

	// The detectors themselves: a page that fetches and logs is caught.
	control := filepath.Join(t.TempDir(), "control.html")
	if err := os.WriteFile(control, []byte(`<!doctype html><html><head><meta charset="utf-8"></head><body>`+
		`<img src="http://kediff-test.invalid/x.png"><script>console.error("control message")</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := screenshot(t, bin, control, w, h)
	if !slices.ContainsFunc(run.console, func(s string) bool { return strings.Contains(s, "control message") }) {
		t.Errorf("the control page's console.error was not seen (console: %q): the console check does not work", run.console)
	}
	if !slices.ContainsFunc(run.requests, func(s string) bool { return strings.Contains(s, "kediff-test.invalid") }) {
		t.Errorf("the control page's request was not seen (requests: %q): the network check does not work", run.requests)
	}

	dir := t.TempDir()
	writeShard(t, dir, "00000", fixtureRows(t), fixtureRejects, shards.WriterOptions{})
	page := filepath.Join(dir, "report.html")
	if _, err := WriteFile(context.Background(), dir, page, Options{}); err != nil {
		t.Fatal(err)
	}
	run = screenshot(t, bin, page, w, h)
	for _, m := range run.console {
		t.Errorf("console: %s", m)
	}
	for _, r := range run.requests {
		t.Errorf("the report made a request: %s", r)
	}
	before := t.Failed()
	checkProbes(t, run.shot, image.Pt(overlayX, overlayY), 2)
	if t.Failed() && !before {
		keep := filepath.Join(os.TempDir(), "kediff-inspect-screenshot.png")
		if f, err := os.Create(keep); err == nil {
			png.Encode(f, run.shot)
			f.Close()
			t.Logf("screenshot kept in %s (the overlay should be at %d, %d)", keep, overlayX, overlayY)
		}
	}
}
