package main

import (
	"context"
	"strings"
	"testing"
)

// The store flags reach the config that Preprocess checks: a value it
// refuses from a file it refuses from the command line too.
func TestPreprocessStoreFlags(t *testing.T) {
	for _, flag := range []string{"--store-attempts=-1", "--store-timeout=-1s", "--store-stall-timeout=-2s"} {
		err := runPreprocess(context.Background(), []string{"--input", t.TempDir(), "--output", t.TempDir(), "--quiet", flag})
		if err == nil || !strings.Contains(err.Error(), "store.") {
			t.Errorf("%s: err = %v, want the store section refused", flag, err)
		}
	}
}
