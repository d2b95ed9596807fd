package shards

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// mem:// buckets are shared by name, and closing one handle keeps the data.
func TestMemBucketShared(t *testing.T) {
	ctx := context.Background()
	a, err := OpenBucket(ctx, "mem://shared-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteAll(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b, err := OpenDir(ctx, "mem://shared-test", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.ReadAll(ctx, "k")
	if err != nil || string(got) != "v" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	other, _ := OpenBucket(ctx, "mem://other-test")
	defer other.Close()
	if ok, _ := other.Exists(ctx, "k"); ok {
		t.Fatal("differently named mem buckets must not share objects")
	}
}

// A plain path with URL-special characters names exactly that folder: the
// file:// URL kediff makes of it parses back to it.
func TestPlainPathsKeepURLCharacters(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"a%41b", "100%", "x?y=1", "h#1", "sp ace"} {
		dir := filepath.Join(t.TempDir(), name)
		b, err := OpenDir(ctx, dir, true)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if err := b.WriteAll(ctx, "f.txt", []byte("ok"), nil); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		b.Close()
		if got, err := os.ReadFile(filepath.Join(dir, "f.txt")); err != nil || string(got) != "ok" {
			t.Errorf("%q: the file is not in the folder of that name: %v", name, err)
		}
	}
}
