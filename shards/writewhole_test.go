package shards

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kediff/kediff/internal/tmpfstest"
)

// A stats file or manifest that does not fit on the disk leaves nothing
// behind, not a truncated file a reader would take for a complete one.
func TestWriteWholeOnFullDisk(t *testing.T) {
	dir := tmpfstest.Mount(t, 64<<10)
	ctx := context.Background()
	b, err := OpenDir(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big := []byte(strings.Repeat("x", 256<<10))
	err = writeWhole(ctx, b, ManifestName, big, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 256 KiB on a 64 KiB disk: %v, want ENOSPC", err)
	}
	left, _ := os.ReadDir(dir)
	for _, e := range left {
		t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
	}
	if err := writeWhole(ctx, b, ManifestName, []byte("{}"), nil); err != nil {
		t.Fatalf("a small write after: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, ManifestName)); err != nil || string(got) != "{}" {
		t.Errorf("manifest %q, %v", got, err)
	}
}
