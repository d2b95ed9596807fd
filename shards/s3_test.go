package shards

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kediff/kediff/internal/s3test"
)

// testStore is one blob backend the reader tests run against. url maps a
// path relative to a fresh, empty test folder to a full blob URL.
type testStore struct {
	name string
	url  func(rel string) string
}

var memSeq atomic.Int64

// stores returns file://, mem:// and s3:// stores, each with its own empty
// folder.
func stores(t *testing.T) []testStore {
	t.Helper()
	dir := t.TempDir()
	mem := fmt.Sprintf("test%d", memSeq.Add(1))
	q := s3test.Query(s3test.Start(t, "kediff-in"))
	prefix := fmt.Sprintf("t%d", memSeq.Add(1))
	return []testStore{
		{"file", func(rel string) string { return "file://" + dir + "/" + rel }},
		{"mem", func(rel string) string { return "mem://" + mem + "/" + rel }},
		{"s3", func(rel string) string { return "s3://kediff-in/" + prefix + "/" + rel + "?" + q }},
	}
}

// put writes one object through the blob API, as any producer would.
func put(t testing.TB, rawURL string, data []byte) {
	t.Helper()
	bucketURL, key, err := SplitURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDir(context.Background(), bucketURL, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatalf("put %s: %v", rawURL, err)
	}
}

func TestS3Errors(t *testing.T) {
	q := s3test.Query(s3test.Start(t, "kediff-in"))
	ctx := context.Background()
	put(t, "s3://kediff-in/x/00000.tar?"+q, makeTar(t, member{name: "a.jpg", body: "i"}))
	cases := []struct{ name, pattern, want string }{
		{"missing bucket", "s3://no-such-bucket/x/*.tar?" + q, "does not exist"},
		{"missing object", "s3://kediff-in/x/00001.tar?" + q, "not found"},
		{"empty glob", "s3://kediff-in/y/*.tar?" + q, "matched no files; check the prefix"},
		{"missing in range", "s3://kediff-in/x/{00000..00002}.tar?" + q, "2 of 3 files are missing"},
		{"no bucket name", "s3:///x.tar", "names no bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Expand(ctx, c.pattern)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Expand(%s) error = %v, want it to say %q", c.pattern, err, c.want)
			}
		})
	}
	// Read of an input that vanished after Expand is an error, not a reject.
	_, err := Read(ctx, Input{URL: "s3://kediff-in/x/gone.tar?" + q, ID: "gone", Format: FormatTar}, ReadOptions{}, func(Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Read of a missing object: err = %v", err)
	}
}
