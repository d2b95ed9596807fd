// Package duckdbtest lets Go tests read files with DuckDB, an independent
// Parquet reader, through node and the @duckdb/node-api module installed in
// tools/duckdb (see tools/duckdb/query.mjs).
//
// When node or the module is missing, tests skip with the command that installs
// them, or fail when the environment variable CI is set.
package duckdbtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Install is the command that installs what this package needs, run from the
// repository root.
const Install = "go tool task setup (or: npm ci --prefix tools/duckdb)"

var (
	findOnce sync.Once
	script   string
	findErr  error
)

// find locates node and tools/duckdb/query.mjs with its node_modules.
func find() (string, error) {
	findOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			findErr = fmt.Errorf("node is not on PATH")
			return
		}
		dir, err := os.Getwd()
		if err != nil {
			findErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				findErr = fmt.Errorf("no go.mod above the working directory")
				return
			}
			dir = parent
		}
		tools := filepath.Join(dir, "tools", "duckdb")
		if _, err := os.Stat(filepath.Join(tools, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
			findErr = fmt.Errorf("@duckdb/node-api is not installed in %s", tools)
			return
		}
		script = filepath.Join(tools, "query.mjs")
	})
	return script, findErr
}

// Require skips the test (or fails it when CI is set) if DuckDB cannot run.
func Require(t testing.TB) {
	t.Helper()
	if _, err := find(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("duckdb: %v; install with: %s", err, Install)
		}
		t.Skipf("duckdb: %v; install with: %s", err, Install)
	}
}

// Column is a result column's name and DuckDB type ("VARCHAR", "INTEGER",
// `STRUCT("bytes" BLOB, "path" VARCHAR)`, ...).
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Query runs sql and returns its rows as JSON-decoded objects: numbers are
// float64 (or decimal strings past 2^53), BLOBs hex strings, structs maps.
func Query(t testing.TB, sql string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	run(t, &rows, sql)
	return rows
}

// QueryAll runs several statements in one DuckDB session (one node start)
// and returns each one's rows.
func QueryAll(t testing.TB, sqls ...string) [][]map[string]any {
	t.Helper()
	if len(sqls) == 1 {
		return [][]map[string]any{Query(t, sqls[0])}
	}
	var res [][]map[string]any
	run(t, &res, sqls...)
	return res
}

// QueryTypes is Query that also returns the result columns and their types.
func QueryTypes(t testing.TB, sql string) ([]Column, []map[string]any) {
	t.Helper()
	var res struct {
		Columns []Column         `json:"columns"`
		Rows    []map[string]any `json:"rows"`
	}
	run(t, &res, "--types", sql)
	return res.Columns, res.Rows
}

func run(t testing.TB, v any, args ...string) {
	t.Helper()
	Require(t)
	s, _ := find()
	cmd := exec.Command("node", append([]string{s}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckdb %q: %v: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("duckdb %q: bad output: %v: %.200s", args, err, stdout.String())
	}
}

// Quote quotes a string (a file path) as an SQL literal.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
