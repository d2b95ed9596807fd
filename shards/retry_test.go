package shards

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/faultproxy"
	"github.com/kediff/kediff/internal/s3test"
)

// faultyS3 serves a real S3 API (gofakes3) with bucket "in" behind a fault
// proxy, and returns the proxy and the URL queries that reach the store
// through the proxy and directly.
func faultyS3(t *testing.T) (p *faultproxy.Proxy, viaProxy, direct string) {
	t.Helper()
	endpoint := s3test.Start(t, "in")
	p = faultproxy.Start(t, endpoint)
	return p, s3test.Query(p.URL), s3test.Query(endpoint)
}

// fastRetry is the retry policy of the tests: the defaults' shape at a
// scale that keeps them short.
var fastRetry = RetryOptions{Attempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
	RequestTimeout: 2 * time.Second, StallTimeout: time.Second}

// Every transient fault of the store is survived with the object's exact
// bytes, counted; every permanent one fails at once, naming the key.
func TestRetryBucketFaults(t *testing.T) {
	p, viaProxy, direct := faultyS3(t)
	ctx := context.Background()
	data := make([]byte, 300<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	put(t, "s3://in/obj.bin?"+direct, data)

	tests := []struct {
		name        string
		rule        faultproxy.Rule
		wantErr     string // "" for success
		wantReason  string // a reason counted, for success
		maxDuration time.Duration
	}{
		{"reset_mid_body", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 100 << 10}}, "", "reset", 2 * time.Second},
		{"reset_before_body", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.Reset}}, "", "reset", 2 * time.Second},
		{"resets_every_body", faultproxy.Rule{Method: "GET", Times: 3,
			Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 50 << 10}}, "", "reset", 3 * time.Second},
		{"stall_after_headers", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.StallBody, After: 64 << 10, Delay: time.Minute}}, "", "stall", 3 * time.Second},
		{"stall_before_headers", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.StallHeaders, Delay: time.Minute}}, "", "stall", 3 * time.Second},
		// Three in a row: one less than the attempts.
		{"slowdown_3_times", faultproxy.Rule{Method: "GET", Times: 3, Fault: faultproxy.SlowDown}, "", "throttled", time.Second},
		{"internal_error_3_times", faultproxy.Rule{Method: "GET", Times: 3, Fault: faultproxy.InternalError}, "", "server_error", time.Second},
		{"slowdown_always", faultproxy.Rule{Method: "GET", Fault: faultproxy.SlowDown}, "gave up after 4 tries", "", time.Second},
		{"latency", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.Latency, Delay: 300 * time.Millisecond}}, "", "", 2 * time.Second},
		{"throttle", faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.Throttle, BytesPerSec: 1 << 20}}, "", "", 2 * time.Second},
		{"access_denied", faultproxy.Rule{Method: "GET", Fault: faultproxy.AccessDenied}, "PermissionDenied", "", 500 * time.Millisecond},
		{"no_such_key", faultproxy.Rule{Method: "GET",
			Fault: faultproxy.Fault{Kind: faultproxy.Status, Status: 404, Code: "NoSuchKey"}}, "NotFound", "", 500 * time.Millisecond},
		{"no_such_bucket", faultproxy.Rule{Method: "GET",
			Fault: faultproxy.Fault{Kind: faultproxy.Status, Status: 404, Code: "NoSuchBucket"}}, "NotFound", "", 500 * time.Millisecond},
		{"always_resets", faultproxy.Rule{Method: "GET",
			Fault: faultproxy.Fault{Kind: faultproxy.Reset}}, "gave up", "", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.SetRules(tt.rule)
			var counts RetryCounts
			ctx := WithRetryCounts(WithRetry(ctx, fastRetry), &counts)
			b, err := OpenDir(ctx, "s3://in?"+viaProxy, false)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			start := time.Now()
			got, err := b.ReadAll(ctx, "obj.bin")
			took := time.Since(start)
			retries, resumes, reasons := counts.Snapshot()
			t.Logf("%v: injected %v, %d retries, %d resumes %v, err %v", took.Round(time.Millisecond), p.Injected(), retries, resumes, reasons, err)
			if took > tt.maxDuration {
				t.Errorf("took %v, want at most %v", took, tt.maxDuration)
			}
			if p.InjectedTotal() == 0 {
				t.Fatalf("the proxy injected nothing")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "obj.bin") {
					t.Fatalf("err = %v, want one naming obj.bin that says %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(tt.wantErr, "gave up") && retries+resumes > 0 {
					t.Errorf("a permanent fault was retried: %d retries, %d resumes", retries, resumes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the object's %d", len(got), len(data))
			}
			if tt.wantReason != "" && reasons[tt.wantReason] == 0 {
				t.Errorf("reasons %v, want %q counted", reasons, tt.wantReason)
			}
		})
	}
}

// A stalled stream is detected within about StallTimeout: the Read that
// waits returns with the bytes of the resumed request.
func TestStallDetectedInTime(t *testing.T) {
	p, viaProxy, direct := faultyS3(t)
	data := bytes.Repeat([]byte("kediff"), 50<<10)
	put(t, "s3://in/obj.bin?"+direct, data)
	for _, stall := range []time.Duration{500 * time.Millisecond, time.Second} {
		p.SetRules(faultproxy.Rule{Method: "GET", Nth: 1,
			Fault: faultproxy.Fault{Kind: faultproxy.StallBody, After: 100 << 10, Delay: time.Minute}})
		opt := fastRetry
		opt.StallTimeout = stall
		ctx := WithRetry(context.Background(), opt)
		b, err := OpenDir(ctx, "s3://in?"+viaProxy, false)
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.NewReader(ctx, "obj.bin", nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		var got []byte
		slowest := time.Duration(0)
		for {
			start := time.Now()
			n, err := r.Read(buf)
			slowest = max(slowest, time.Since(start))
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		b.Close()
		t.Logf("stall timeout %v: the stalled read returned after %v", stall, slowest.Round(time.Millisecond))
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, want %d", len(got), len(data))
		}
		if slowest < stall || slowest > stall+time.Second {
			t.Errorf("stall timeout %v: the stalled read took %v", stall, slowest)
		}
	}
}

// Tar inputs streamed through Read, and Parquet inputs read through
// NewBlobReaderAt's range reads, give the same samples through resets,
// each resumed.
func TestReadSurvivesResets(t *testing.T) {
	p, viaProxy, direct := faultyS3(t)
	var ms []member
	var rows []i2dRow
	for i := range 50 {
		img := strings.Repeat(keyN(i), 2000+i)
		ms = append(ms, member{name: keyN(i) + ".jpg", body: img},
			member{name: keyN(i) + ".txt", body: "caption " + keyN(i)})
		rows = append(rows, i2dRow{Key: keyN(i), Caption: ptr("caption " + keyN(i)), JPG: []byte(img)})
	}
	put(t, "s3://in/00000.tar?"+direct, makeTar(t, ms...))
	put(t, "s3://in/00000.parquet?"+direct, writeParquet(t, rows))
	tests := []struct {
		name   string
		format Format
		rule   faultproxy.Rule
	}{
		{"tar", FormatTar, faultproxy.Rule{Method: "GET", Times: 4, Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 30 << 10}}},
		{"parquet", FormatParquet, faultproxy.Rule{Method: "GET", Times: 4, Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 1000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(q string) ([]Sample, *RetryCounts) {
				counts := &RetryCounts{}
				ctx := WithRetryCounts(WithRetry(context.Background(), fastRetry), counts)
				var got []Sample
				in := Input{URL: "s3://in/00000." + string(tt.format) + "?" + q, ID: "00000", Format: tt.format}
				if _, err := Read(ctx, in, ReadOptions{}, func(s Sample) error { got = append(got, s); return nil }); err != nil {
					t.Fatal(err)
				}
				return got, counts
			}
			want, _ := read(direct)
			p.SetRules(tt.rule)
			got, counts := read(viaProxy)
			if len(got) != len(want) || len(want) != 50 {
				t.Fatalf("%d samples through resets, %d without; want 50", len(got), len(want))
			}
			for i := range got {
				if got[i].Key != want[i].Key || !bytes.Equal(got[i].Image, want[i].Image) || got[i].Caption != want[i].Caption || got[i].Reject != "" {
					t.Fatalf("sample %d differs: %q %q %q", i, got[i].Key, want[i].Key, got[i].Reject)
				}
			}
			_, resumes, _ := counts.Snapshot()
			// A reset after the whole of a short body costs nothing.
			if n := p.Injected()[faultproxy.Reset]; n == 0 || resumes == 0 || resumes > int64(n) {
				t.Errorf("%d resets injected, %d resumes counted", n, resumes)
			}
		})
	}
}

func keyN(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

func TestRetryOptions(t *testing.T) {
	o := RetryOptions{}.WithDefaults()
	if o.Attempts != 5 || o.BaseDelay != 250*time.Millisecond || o.MaxDelay != 5*time.Second ||
		o.RequestTimeout != time.Minute || o.StallTimeout != 30*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	var total time.Duration
	for n := 1; n < o.Attempts; n++ {
		d := o.backoff(n)
		want := min(o.BaseDelay<<(n-1), o.MaxDelay)
		if d < want/2 || d > want {
			t.Errorf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
		}
		total += d
	}
	if total > 4*time.Second {
		t.Errorf("the default backoffs add up to %v", total)
	}
	if ok, _ := transient(context.Background(), errors.New("boom")); !ok {
		t.Errorf("an unknown error is not retried")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, _ := transient(ctx, context.Canceled); ok {
		t.Errorf("the caller's own cancellation is retried")
	}
}

// Stats files written before the retry counts existed still read, as zero.
func TestStatsWithoutRetryCounts(t *testing.T) {
	ctx := context.Background()
	b, err := OpenBucket(ctx, "mem://old-stats")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	old := `{"shard": "00000", "input": "x.tar", "read": 2, "written": 1, "rejected": 1,
		"reasons": {"no_caption": 1}, "by_stage": {"read": 1}, "image_bytes": 10, "files": {"00000.parquet": 5}}`
	if err := b.WriteAll(ctx, StatsName("00000"), []byte(old), nil); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStats(ctx, b, "00000")
	if err != nil || st.Read != 2 || st.Retries != 0 || st.Resumes != 0 || st.RetryReasons != nil {
		t.Fatalf("ReadStats of an old file: %+v, %v", st, err)
	}
}
