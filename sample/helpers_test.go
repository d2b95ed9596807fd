package sample

import (
	"testing"
)

func openCheckpoint(t testing.TB, dir string) *Checkpoint {
	t.Helper()
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
