package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/faultproxy"
	"github.com/kediff/kediff/internal/s3test"
	"github.com/kediff/kediff/shards"
)

// Training from shards in an object store (a real S3 API, gofakes3)
// through transient faults (a connection reset in the middle of a shard, a
// 503 and a 500 on the listing and the manifest, a read that stalls after
// its headers) gives the losses and weights of training from a local copy.
func TestTrainSurvivesStoreFaults(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 2, rows: 5, size: 8, nanRow: -1})
	endpoint := s3test.Start(t, "train")
	ctx := context.Background()
	b, err := shards.OpenDir(ctx, "s3://train/shards?"+s3test.Query(endpoint), false)
	if err != nil {
		t.Fatal(err)
	}
	local := strings.TrimPrefix(data, "file://")
	ents, _ := os.ReadDir(local)
	for _, e := range ents {
		raw, _ := os.ReadFile(filepath.Join(local, e.Name()))
		if err := b.WriteAll(ctx, e.Name(), raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	cfg := tinyTrainConfig()
	full := t.TempDir()
	tr, err := NewTrainer(ctx, cfg, data, full, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}

	proxy := faultproxy.Start(t, endpoint,
		faultproxy.Rule{Method: "GET", Path: "manifest.json", Nth: 1, Fault: faultproxy.SlowDown},
		faultproxy.Rule{Method: "GET", Path: "00000.parquet", Nth: 1, Fault: faultproxy.Fault{Kind: faultproxy.Reset, After: 4 << 10}},
		faultproxy.Rule{Method: "GET", Path: "00001.parquet", Nth: 1, Fault: faultproxy.Fault{Kind: faultproxy.StallBody, After: 2 << 10, Delay: time.Minute}},
		faultproxy.Rule{Method: "GET", Path: "00001.parquet", Nth: 2, Fault: faultproxy.InternalError},
	)
	var counts shards.RetryCounts
	fctx := shards.WithRetryCounts(shards.WithRetry(ctx, shards.RetryOptions{Attempts: 4, BaseDelay: 10 * time.Millisecond,
		MaxDelay: 100 * time.Millisecond, RequestTimeout: 2 * time.Second, StallTimeout: time.Second}), &counts)
	out := t.TempDir()
	start := time.Now()
	tr, err = NewTrainer(fctx, cfg, "s3://train/shards?"+s3test.Query(proxy.URL), out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(fctx); err != nil {
		t.Fatalf("training through the faults: %v", err)
	}
	retries, resumes, reasons := counts.Snapshot()
	t.Logf("%v: injected %v; %d retries, %d resumes %v", time.Since(start).Round(time.Millisecond), proxy.Injected(), retries, resumes, reasons)
	if proxy.InjectedTotal() != 4 || retries+resumes < 3 {
		t.Errorf("%d faults injected (want 4), %d retries and %d resumes counted", proxy.InjectedTotal(), retries, resumes)
	}
	sameAsUninterrupted(t, full, out)
}
