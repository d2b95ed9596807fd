package promptfile

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/pyref"
)

const vilg = "../../../shared/data/ViLG-300.csv"

func collect(t *testing.T, path, column string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	if err := Each(context.Background(), f, path, column, "", func(_, p string) error { out = append(out, p); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestViLG300MatchesPythonCSV reads both prompt columns of ViLG-300 (BOM,
// CRLF, quoted fields with newlines) and compares every prompt with what
// Python's csv module reads (with a CRLF inside a quoted field as LF, which
// is how encoding/csv documents it).
func TestViLG300MatchesPythonCSV(t *testing.T) {
	if _, err := os.Stat(vilg); err != nil {
		t.Skipf("%v (../shared/data is beside the checkout in CI)", err)
	}
	py := pyref.Torch(t)
	for _, col := range []string{"Prompt", "文本"} {
		got := collect(t, vilg, col)
		code := `import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    print(json.dumps([r[sys.argv[2]].replace("\r\n", "\n") for r in csv.DictReader(f)]))`
		out, err := exec.Command(py, "-c", code, vilg, col).Output()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		if len(want) != 300 || !slices.Equal(got, want) {
			t.Fatalf("%s: %d prompts, Python reads %d (equal: %v)", col, len(got), len(want), slices.Equal(got, want))
		}
		multi := 0
		for _, p := range got {
			if strings.Contains(p, "\n") {
				multi++
			}
		}
		t.Logf("%s: %d prompts, %d holding a newline", col, len(got), multi)
	}
}

func TestLinesAndErrors(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "p.txt")
	os.WriteFile(txt, []byte("\ufeffa red circle\r\n\r\n一个蓝色的方块\n"), 0o644)
	if got := collect(t, txt, ""); !slices.Equal(got, []string{"a red circle", "", "一个蓝色的方块"}) {
		t.Errorf("lines %q", got)
	}
	csvPath := filepath.Join(dir, "p.csv")
	os.WriteFile(csvPath, []byte("id,text\n1,\"a, b\"\n"), 0o644)
	f, _ := os.Open(csvPath)
	defer f.Close()
	err := Each(context.Background(), f, csvPath, "Prompt", "", func(_, _ string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `no column "Prompt"`) || !strings.Contains(err.Error(), `"text"`) {
		t.Errorf("missing column: %v", err)
	}
}
