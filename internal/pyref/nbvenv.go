package pyref

import (
	"path/filepath"
	"testing"
)

// NotebookVenv returns the notebook venv's python (.cache/nbvenv, made by
// task setup from tools/requirements-notebook.txt: jupyter, pandas, pyarrow,
// polars, duckdb, datasets, matplotlib) after checking that it imports
// modules (e.g. "datasets").
func NotebookVenv(t testing.TB, modules ...string) string {
	t.Helper()
	py := filepath.Join(Root(t), ".cache", "nbvenv", "bin", "python")
	need(t, py, "go tool task setup (it makes .cache/nbvenv from tools/requirements-notebook.txt)", modules)
	return py
}
