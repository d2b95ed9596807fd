// Package faultproxy is an HTTP reverse proxy on loopback that injects the
// faults of a real object store between a client and a server: connection
// resets in the middle of a body, S3 error responses (503 SlowDown, 500,
// 403 AccessDenied, ...), latency spikes, bandwidth limits and reads that
// stall before or after the headers. It is for tests.
//
//	p := faultproxy.Start(t, s3.URL, faultproxy.Rule{Fraction: 0.1, Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 4096}})
//	// point the client at p.URL; p.Injected() counts what was done
//
// Rules are tried in order for each request; the first that matches and
// fires decides the request's fault, and the others are not consulted.
package faultproxy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is one kind of fault.
type Kind string

// Fault kinds.
const (
	// Reset forwards the response headers and After bytes of the body, then
	// resets the connection (RST).
	Reset Kind = "reset"
	// Status answers Fault.Status with an S3 XML error of Fault.Code
	// instead of forwarding the request.
	Status Kind = "status"
	// Latency waits Fault.Delay, then forwards the request.
	Latency Kind = "latency"
	// Throttle forwards the body at Fault.BytesPerSec.
	Throttle Kind = "throttle"
	// StallHeaders waits Fault.Delay (or until the client gives up) before
	// forwarding; nothing at all arrives meanwhile.
	StallHeaders Kind = "stall_headers"
	// StallBody forwards the headers and After bytes of the body, then
	// sends nothing for Fault.Delay (or until the client gives up).
	StallBody Kind = "stall_body"
)

// Fault says what to do to a request.
type Fault struct {
	Kind Kind
	// Status and Code for Kind Status: 503 "SlowDown", 500 "InternalError",
	// 403 "AccessDenied", 404 "NoSuchKey" or "NoSuchBucket".
	Status int
	Code   string
	// After is the number of body bytes forwarded before a Reset or a
	// StallBody.
	After int64
	// Delay is the wait of Latency, StallHeaders and StallBody.
	Delay time.Duration
	// BytesPerSec is Throttle's bandwidth.
	BytesPerSec int64
}

// Common S3 faults.
var (
	SlowDown      = Fault{Kind: Status, Status: 503, Code: "SlowDown"}
	InternalError = Fault{Kind: Status, Status: 500, Code: "InternalError"}
	AccessDenied  = Fault{Kind: Status, Status: 403, Code: "AccessDenied"}
)

// Rule picks the requests that get a fault.
type Rule struct {
	// Method, if set, matches only requests of that method ("GET").
	Method string
	// Path, if set, matches only requests whose URL path contains it (a key
	// or a bucket name).
	Path string
	// Nth, if set, fires on the Nth matching request only (1 is the first).
	// Else Fraction, if set, fires on that fraction of matching requests,
	// drawn from a generator seeded by Proxy.Seed; else every matching
	// request fires.
	Nth      int
	Fraction float64
	// Times, if set, stops the rule after it fired that many times.
	Times int
	// Fault is the fault to inject, or (Mix) one drawn at random for each
	// request that fires.
	Fault Fault
	Mix   []Fault

	seen, fired int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's address (http://127.0.0.1:PORT).
	URL string

	target *url.URL
	srv    *httptest.Server
	client *http.Client
	done   chan struct{}

	mu       sync.Mutex
	rules    []*Rule
	rng      *rand.Rand
	requests int
	injected map[Kind]int
	statuses map[int]int
}

// Start starts a proxy in front of target (a base URL) with rules, seeded
// by 1, and stops it at the end of the test.
func Start(t testing.TB, target string, rules ...Rule) *Proxy {
	t.Helper()
	p, err := New(target, 1, rules...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a proxy in front of target with rules; seed seeds the draws
// of Fraction and Mix. Close stops it.
func New(target string, seed uint64, rules ...Rule) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	p := &Proxy{
		target:   u,
		done:     make(chan struct{}),
		rng:      rand.New(rand.NewPCG(seed, 0)),
		injected: map[Kind]int{},
		statuses: map[int]int{},
		client: &http.Client{
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	p.SetRules(rules...)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve)) // binds 127.0.0.1
	p.URL = p.srv.URL
	return p, nil
}

// SetRules replaces the rules and starts every count afresh.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = 0
	clear(p.injected)
	clear(p.statuses)
	p.rules = p.rules[:0]
	for _, r := range rules {
		r.seen, r.fired = 0, 0
		p.rules = append(p.rules, &r)
	}
}

// Seed reseeds the draws of Fraction and Mix.
func (p *Proxy) Seed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng = rand.New(rand.NewPCG(seed, 0))
}

// Close stops the proxy; stalled requests end at once.
func (p *Proxy) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// Requests is the number of requests the proxy has received.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Injected returns how many faults of each kind the proxy has injected.
func (p *Proxy) Injected() map[Kind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Kind]int, len(p.injected))
	for k, n := range p.injected {
		out[k] = n
	}
	return out
}

// InjectedStatus returns how many error responses of each HTTP status the
// proxy has sent.
func (p *Proxy) InjectedStatus() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]int, len(p.statuses))
	for k, n := range p.statuses {
		out[k] = n
	}
	return out
}

// InjectedTotal is the number of requests that got a fault.
func (p *Proxy) InjectedTotal() int {
	n := 0
	for _, c := range p.Injected() {
		n += c
	}
	return n
}

// pick counts the request and returns its fault, if any.
func (p *Proxy) pick(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for _, rule := range p.rules {
		if rule.Method != "" && rule.Method != r.Method {
			continue
		}
		if rule.Path != "" && !strings.Contains(r.URL.Path, rule.Path) {
			continue
		}
		if rule.Times > 0 && rule.fired >= rule.Times {
			continue
		}
		rule.seen++
		switch {
		case rule.Nth > 0:
			if rule.seen != rule.Nth {
				continue
			}
		case rule.Fraction > 0:
			if p.rng.Float64() >= rule.Fraction {
				continue
			}
		}
		rule.fired++
		f := rule.Fault
		if len(rule.Mix) > 0 {
			f = rule.Mix[p.rng.IntN(len(rule.Mix))]
		}
		p.injected[f.Kind]++
		if f.Kind == Status {
			p.statuses[f.Status]++
		}
		return f, true
	}
	return Fault{}, false
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	f, faulty := p.pick(r)
	switch {
	case !faulty:
	case f.Kind == Status:
		io.Copy(io.Discard, r.Body)
		writeS3Error(w, r, f.Status, f.Code)
		return
	case f.Kind == Latency:
		if !p.wait(r, f.Delay) {
			return
		}
	case f.Kind == StallHeaders:
		if !p.wait(r, f.Delay) {
			return
		}
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	body := io.Reader(resp.Body)
	switch {
	case !faulty:
	case f.Kind == Reset:
		io.CopyN(w, body, f.After)
		p.reset(w)
		return
	case f.Kind == StallBody:
		io.CopyN(w, body, f.After)
		w.(http.Flusher).Flush()
		if !p.wait(r, f.Delay) {
			return
		}
	case f.Kind == Throttle:
		body = &throttled{r: body, rate: f.BytesPerSec, start: time.Now()}
	}
	io.Copy(flushWriter{w}, body)
}

// forward sends r on to the target.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host // signatures cover the host the client used
	if r.ContentLength == 0 {
		out.Body = nil
	}
	for _, h := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Upgrade"} {
		out.Header.Del(h)
	}
	return p.client.Transport.RoundTrip(out)
}

// wait sleeps d, or until the client gives up or the proxy closes; it
// reports whether to go on.
func (p *Proxy) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-p.done:
	}
	return false
}

// reset flushes what was written and resets the connection.
func (p *Proxy) reset(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("faultproxy: hijack: %v", err))
	}
	buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, not FIN
	}
	conn.Close()
}

// writeS3Error answers as S3 does, with an XML error body (none for HEAD).
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code string) {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>injected by faultproxy</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, r.URL.Path)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if status == 503 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}

// throttled reads at most rate bytes per second on average.
type throttled struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (t *throttled) Read(p []byte) (int, error) {
	chunk := max(t.rate/20, 1) // 50 ms worth at a time
	if int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	if ahead := time.Duration(t.n*int64(time.Second)/t.rate) - time.Since(t.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}

// flushWriter flushes after every write, so that throttled and stalled
// bodies arrive as written.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.w.(http.Flusher).Flush()
	return n, err
}
