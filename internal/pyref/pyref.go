// Package pyref finds the Python interpreters that tests run their
// independent reference implementations with: Debian's /usr/bin/python3 with
// python3-torch, and the tools venv (.cache/venv, made by task setup from
// tools/requirements.txt) with the pinned PyPI packages (diffusers, ...).
//
// Outside CI a missing interpreter skips the test with the command that
// installs it; under CI (CI set) it fails, so a reference is never skipped
// silently there.
package pyref

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Root is the module root (the folder holding go.mod) above the working
// directory.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("pyref: no go.mod above the working directory")
		}
		dir = up
	}
}

// Venv returns the tools venv's python after checking that it imports
// modules (e.g. "diffusers").
func Venv(t testing.TB, modules ...string) string {
	t.Helper()
	py := filepath.Join(Root(t), ".cache", "venv", "bin", "python")
	need(t, py, "go tool task setup (it makes .cache/venv from tools/requirements.txt)", modules)
	return py
}

// Torch returns Debian's /usr/bin/python3 after checking that it imports
// torch, numpy and modules.
func Torch(t testing.TB, modules ...string) string {
	t.Helper()
	const py = "/usr/bin/python3"
	need(t, py, "go tool task setup (Debian's python3-torch)", append([]string{"torch", "numpy"}, modules...))
	return py
}

func need(t testing.TB, py, install string, modules []string) {
	t.Helper()
	code := "import sys"
	for _, m := range modules {
		code += "; import " + m
	}
	out, err := exec.Command(py, "-c", code).CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("reference interpreter %s cannot run %q: %v %s; run %s", py, code, err, out, install)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
