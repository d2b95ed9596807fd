package shards

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateOut = flag.Bool("update-out", false, "rewrite the sample output shard in testdata/out")

// TestGoldenShard writes a small sample shard and compares it byte for byte
// with testdata/out, which doubles as a sample for opening shards in notebooks.
// After an intended format change (or a parquet-go upgrade) regenerate it with
//
//	go test ./shards -run TestGoldenShard -update-out
//
// and check the new files with DuckDB (tools/duckdb/query.mjs).
func TestGoldenShard(t *testing.T) {
	ctx := context.Background()
	dir, out := openTestDir(t)
	writeShard(t, out, "00000", testRows(t, 3), testRejects(), WriterOptions{})
	if _, err := WriteManifest(ctx, out, testMeta); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "out")
	names := []string{"00000.parquet", "00000_rejects.parquet", "00000_stats.json", ManifestName}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(golden, name)
		if *updateOut {
			if err := os.MkdirAll(golden, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (create it with: go test ./shards -run TestGoldenShard -update-out)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (%d vs %d bytes): the shard format changed; if intended, "+
				"regenerate with go test ./shards -run TestGoldenShard -update-out", name, path, len(got), len(want))
		}
	}
}
