package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kediff/kediff/internal/atomicfile"
)

// TestMain runs this test binary as a trainer that a test kills inside a
// checkpoint save (killSaveChild); otherwise it runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("KEDIFF_KILLSAVE_OUT") != "" {
		killSaveChild()
	}
	os.Exit(m.Run())
}

func killSaveConfig() TrainConfig {
	cfg := tinyTrainConfig()
	cfg.Steps, cfg.EMA = 9, 0.9 // checkpoints at 3, 6 and 9
	return cfg
}

// killSaveChild trains into KEDIFF_KILLSAVE_OUT and kills itself with
// SIGKILL right after model.safetensors of the second checkpoint (step 6)
// is renamed into place: the old optimizer, EMA and state.json are still
// those of step 3.
func killSaveChild() {
	commits := 0
	atomicfile.TestHookAfterRename = func(i int) {
		if i == 0 {
			commits++
		}
		if commits == 2 && i == 1 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	ctx := context.Background()
	tr, err := NewTrainer(ctx, killSaveConfig(), os.Getenv("KEDIFF_KILLSAVE_DATA"), os.Getenv("KEDIFF_KILLSAVE_OUT"), "", false)
	if err == nil {
		err = tr.Run(ctx)
	}
	fmt.Fprintln(os.Stderr, "the trainer was not killed:", err)
	os.Exit(2)
}

// A trainer killed with SIGKILL between two renames of a checkpoint save
// leaves new weights beside the old optimizer state; the next reader
// finishes that save from its journal, so --resume continues from step 6
// and ends on the uninterrupted run's weights and losses (without the
// journal it would resume step 3's state with step 6's weights).
func TestResumeAfterKillInsideSave(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 2, rows: 5, size: 8, nanRow: -1})
	ctx := context.Background()
	full := t.TempDir()
	tr, err := NewTrainer(ctx, killSaveConfig(), data, full, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEDIFF_KILLSAVE_OUT="+out, "KEDIFF_KILLSAVE_DATA="+data)
	msg, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("trainer: %v, want killed by SIGKILL inside the step-6 save\n%s", err, msg)
	}
	var st TrainState
	raw, _ := os.ReadFile(filepath.Join(out, StateFile))
	if err := json.Unmarshal(raw, &st); err != nil || st.Step != 3 {
		t.Fatalf("state.json after the kill: step %d (%v), want 3 (the save was cut before it)", st.Step, err)
	}
	if _, err := os.Stat(filepath.Join(out, atomicfile.JournalFile)); err != nil {
		t.Fatalf("no commit journal after the kill: %v", err)
	}

	tr, err = NewTrainer(ctx, killSaveConfig(), data, out, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if tr.State.Step != 6 {
		t.Fatalf("resumed at step %d, want 6 (the save the kill cut, finished)", tr.State.Step)
	}
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	sameAsUninterrupted(t, full, out)
	a, _ := os.ReadFile(filepath.Join(full, StateFile))
	b, _ := os.ReadFile(filepath.Join(out, StateFile))
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from the uninterrupted run's after the resume", StateFile)
	}
}
