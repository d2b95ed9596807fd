package train

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/tmpfstest"
	"github.com/kediff/kediff/unet"
)

// A checkpoint write that fills the disk (a small tmpfs with room for one
// checkpoint and a little more) fails with an error naming the file and the
// full disk; the previous checkpoint stays whole, and --resume from it, on
// the disk made roomier, gives the uninterrupted run's losses and final
// weights exactly.
func TestCheckpointOnFullDisk(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 2, rows: 5, size: 8, nanRow: -1})
	cfg := tinyTrainConfig() // 6 steps, checkpoints at 3 and 6
	cfg.EMA = 0.9
	ctx := context.Background()
	full := t.TempDir()
	tr, err := NewTrainer(ctx, cfg, data, full, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}

	// Room for one checkpoint and the new weights of the next: the disk
	// fills while the optimizer state of step 6 is written, after
	// model.safetensors.
	const page = 4096
	var used int64
	filepath.WalkDir(full, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			used += (fi.Size() + page - 1) / page * page
		}
		return err
	})
	fi, err := os.Stat(filepath.Join(full, unet.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	model := (fi.Size() + page - 1) / page * page
	out := tmpfstest.Mount(t, used+model+4*page)
	tr, err = NewTrainer(ctx, cfg, data, out, "", false)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(ctx)
	if err == nil {
		t.Fatalf("training into a tmpfs of %d bytes (a checkpoint takes %d) succeeded", used+model+4*page, used)
	}
	if msg := err.Error(); !strings.Contains(msg, out) || !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, "step 6") {
		t.Errorf("error %q: want it to name the checkpoint in %s, its step and the full disk", msg, out)
	}
	t.Logf("full disk: %v", err)
	if ents, _ := os.ReadDir(out); len(ents) == 0 {
		t.Fatal("no checkpoint left")
	} else {
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	}

	tmpfstest.Resize(t, out, 4*used)
	tr, err = NewTrainer(ctx, cfg, data, out, "", true)
	if err != nil {
		t.Fatalf("resume from the checkpoint kept on the full disk: %v", err)
	}
	if tr.State.Step != 3 {
		t.Fatalf("resumed at step %d, want 3", tr.State.Step)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sameAsUninterrupted(t, full, out)
}
