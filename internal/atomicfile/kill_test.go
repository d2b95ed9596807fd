package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var killNames = []string{"model", "optimizer", "ema", "state.json"}

// TestMain lets a test run this binary as a child that commits a batch and
// is killed with SIGKILL after a chosen rename.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ATOMICFILE_KILL_DIR"); dir != "" {
		after, _ := strconv.Atoi(os.Getenv("ATOMICFILE_KILL_AFTER"))
		TestHookAfterRename = func(i int) {
			if i == after {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		var b Batch
		for _, n := range killNames {
			if err := b.AddBytes(filepath.Join(dir, n), []byte("new "+n)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		if err := b.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A process killed between two renames of a commit leaves old and new files
// side by side; Recover (which the next Add also runs) completes the new set.
func TestBatchKilledMidCommit(t *testing.T) {
	for after := range len(killNames) - 1 {
		t.Run(fmt.Sprintf("killed after rename %d", after), func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range killNames {
				if err := WriteBytes(filepath.Join(dir, n), []byte("old "+n)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "ATOMICFILE_KILL_DIR="+dir, "ATOMICFILE_KILL_AFTER="+strconv.Itoa(after))
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
			}
			state := func() string {
				var s []string
				for _, n := range killNames {
					b, _ := os.ReadFile(filepath.Join(dir, n))
					s = append(s, strings.Fields(string(b))[0])
				}
				return strings.Join(s, ",")
			}
			// The kill left a mixed set: the window this guards is real.
			want := strings.Repeat("new,", after+1) + strings.TrimSuffix(strings.Repeat("old,", len(killNames)-after-1), ",")
			if got := state(); got != want {
				t.Fatalf("after the kill the files are %s, want %s", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, JournalFile)); err != nil {
				t.Fatalf("no journal after the kill: %v", err)
			}
			if err := Recover(dir); err != nil {
				t.Fatal(err)
			}
			if got := state(); got != "new,new,new,new" {
				t.Errorf("after Recover the files are %s, want every one new", got)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != len(killNames) {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("folder holds %v, want the %d files only (no journal, no temporary file)", names, len(killNames))
			}
			if err := Recover(dir); err != nil {
				t.Errorf("second Recover: %v", err)
			}
		})
	}
}

// A new batch in a folder with an interrupted commit finishes it first, so
// its own journal never replaces one still needed, and removes the
// temporary files a batch killed before its commit left.
func TestBatchAddRecoversFirst(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	WriteBytes(a, []byte("old"))
	if err := os.WriteFile(filepath.Join(dir, ".a.tmp1"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, JournalFile), []byte(`{"renames":[[".a.tmp1","a"]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A batch killed before its journal left a temporary file of b.
	stale := filepath.Join(dir, ".b.tmp77")
	os.WriteFile(stale, []byte("half"), 0o644)
	var b Batch
	if err := b.AddBytes(filepath.Join(dir, "b"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "new" {
		t.Errorf("a holds %q after Add, want the interrupted commit finished (new)", got)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file of b still there after Add(b): %v", err)
	}
	b.Discard()
}

// A journal that renames anything but atomicfile's own temporary files in
// the folder is refused, and nothing is renamed.
func TestRecoverRefusesForeignJournal(t *testing.T) {
	for _, j := range []string{
		`{"renames":[[".a.tmp1","a"],["../x",".x.tmp"]]}`,
		`{"renames":[[".a.tmp1","a"],[".b.tmp1","../b"]]}`,
		`{"renames":[[".a.tmp1","a"],["secret","b"]]}`,
		`{"renames":[[".a.tmp1","a"],[".x.tmp1","` + JournalFile + `"]]}`,
		`{"renames":[[".a.tmp1","a"]`,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, ".a.tmp1"), []byte("new"), 0o644)
		os.WriteFile(filepath.Join(dir, JournalFile), []byte(j), 0o644)
		err := Recover(dir)
		if err == nil || !strings.Contains(err.Error(), JournalFile) {
			t.Errorf("journal %s: error %v, want one naming the journal", j, err)
		}
		if _, err := os.Stat(filepath.Join(dir, ".a.tmp1")); err != nil {
			t.Errorf("journal %s: a rename happened before the check: %v", j, err)
		}
	}
}

// A rename that fails after the commit point (here: a folder took b's
// name) leaves the journal and b's temporary file for Recover, even when
// the caller Discards the batch, as callers do on every error.
func TestBatchRenameFailsAfterCommitPoint(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	var bt Batch
	if err := bt.AddBytes(a, []byte("new a")); err != nil {
		t.Fatal(err)
	}
	if err := bt.AddBytes(b, []byte("new b")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := bt.Commit()
	if err == nil || !strings.Contains(err.Error(), "finishes the commit") {
		t.Fatalf("Commit: %v, want the failed rename reported", err)
	}
	if err := bt.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := Recover(dir); err == nil {
		t.Fatal("Recover succeeded while a folder holds b's name")
	}
	os.RemoveAll(b)
	if err := Recover(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if got, _ := os.ReadFile(p); string(got) != "new "+filepath.Base(p) {
			t.Errorf("%s holds %q after Recover", filepath.Base(p), got)
		}
	}
}
