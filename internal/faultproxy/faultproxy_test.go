package faultproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Each fault reaches the client as a store would deliver it, and is
// counted.
func TestFaults(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "65536")
		w.Write(body)
	}))
	defer backend.Close()
	tests := []struct {
		name    string
		fault   Fault
		wantErr string // of the body read; "" for the whole body
		status  int
		minTime time.Duration
	}{
		{"none", Fault{Kind: Latency}, "", 200, 0},
		{"reset", Fault{Kind: Reset, After: 1000}, "connection reset", 200, 0},
		{"slowdown", SlowDown, "", 503, 0},
		{"internal_error", InternalError, "", 500, 0},
		{"access_denied", AccessDenied, "", 403, 0},
		{"latency", Fault{Kind: Latency, Delay: 200 * time.Millisecond}, "", 200, 200 * time.Millisecond},
		{"throttle", Fault{Kind: Throttle, BytesPerSec: 256 << 10}, "", 200, 200 * time.Millisecond},
		{"stall_body", Fault{Kind: StallBody, After: 1000, Delay: time.Minute}, "deadline exceeded", 200, 300 * time.Millisecond},
		{"stall_headers", Fault{Kind: StallHeaders, Delay: time.Minute}, "deadline exceeded", 0, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Start(t, backend.URL, Rule{Method: "GET", Nth: 1, Fault: tt.fault})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond+tt.minTime)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/b/key", nil)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				if tt.status != 0 || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("request: %v", err)
				}
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("body read error %v, want %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tt.status == 200 && !bytes.Equal(got, body):
				t.Fatalf("body of %d bytes, want the backend's %d", len(got), len(body))
			case tt.status != 200 && !strings.Contains(string(got), "<Code>"+tt.fault.Code+"</Code>"):
				t.Fatalf("error body %q, want S3's XML with code %s", got, tt.fault.Code)
			}
			if took < tt.minTime {
				t.Errorf("took %v, want at least %v", took, tt.minTime)
			}
			if p.Injected()[tt.fault.Kind] != 1 || p.Requests() != 1 {
				t.Errorf("injected %v of %d requests, want one %s", p.Injected(), p.Requests(), tt.fault.Kind)
			}
		})
	}
}

// Rules fire on the Nth request, on a fraction, on matching paths only,
// and at most Times times.
func TestRules(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	tests := []struct {
		name string
		rule Rule
		want []int // statuses of 10 GETs of /b/a then 10 of /b/c
	}{
		{"nth", Rule{Nth: 3, Fault: SlowDown}, []int{200, 200, 503}},
		{"path", Rule{Path: "/c", Times: 2, Fault: InternalError}, []int{10: 500, 11: 500, 12: 200}},
		{"method", Rule{Method: "PUT", Fault: SlowDown}, []int{200, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Start(t, backend.URL, tt.rule)
			for i, want := range tt.want {
				key := "/b/a"
				if i >= 10 {
					key = "/b/c"
				}
				resp, err := http.Get(p.URL + key)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if want != 0 && resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
			}
		})
	}
	p := Start(t, backend.URL, Rule{Fraction: 0.1, Fault: SlowDown})
	for range 1000 {
		resp, err := http.Get(p.URL + "/b/a")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := p.InjectedStatus()[503]; n < 70 || n > 130 {
		t.Errorf("a 10%% rule fired on %d of 1000 requests", n)
	}
}
