package shards

import (
	"context"
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
