package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/shards"
)

// TestInspectCommand runs kediff inspect's flag handling in process: flags
// before and after SHARD_URL, --sample, --png, --keys, and the errors.
func TestInspectCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "shards")
	b, err := shards.OpenDir(ctx, data, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := shards.NewShardWriter(ctx, b, "00000", shards.Metadata{Version: "test", Config: []byte(`{}`)}, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := image.NewRGBA(image.Rect(0, 0, 16, 16))
		for p := 0; p < len(m.Pix); p += 4 {
			copy(m.Pix[p:], []byte{uint8(40 * i), 100, 200, 255})
		}
		var img bytes.Buffer
		png.Encode(&img, m)
		key := fmt.Sprintf("s/%d", i) // a WebDataset key with a folder
		row := shards.Row{Key: key, Caption: "a blue square", Prompt: "a blue square", PromptSource: "caption",
			Image: &shards.Image{Bytes: img.Bytes(), Path: key + ".png"}, Width: 16, Height: 16,
			Objects:  []shards.Object{{Label: "square", Score: 0.8, X0: 0.2, Y0: 0.2, X1: 0.8, Y1: 0.8, Kept: true}},
			LossMask: []byte{1, 1, 1, 1}, LossMaskShape: []int32{2, 2}}
		if err := w.Write(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(shards.Stats{Read: 5, Started: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	out := filepath.Join(dir, "report", "report.html")
	pngs := filepath.Join(dir, "png")
	if err := runInspect(ctx, []string{"--sample", "2", data, "--output", out, "--png", pngs, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("default-src 'none'")) || bytes.Count(page, []byte(`<img class="overlay"`)) != 2 {
		t.Errorf("report without its policy or without 2 overlays (%d bytes)", len(page))
	}
	names, _ := filepath.Glob(filepath.Join(pngs, "*.png"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	if got := strings.Join(names, ","); got != "s_1.png,s_3.png" {
		t.Errorf("--png wrote %s, want s_1.png,s_3.png (keys s/1 and s/3, '/' made '_')", got)
	}
	px := func(name string) color.Color {
		f, err := os.Open(filepath.Join(pngs, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		m, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		return m.At(128, 128)
	}
	if px("s_1.png") == px("s_3.png") {
		t.Error("the two overlays show the same image")
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no shard URL", []string{"--output", out}, "want one SHARD_URL"},
		{"two shard URLs", []string{data, data, "--output", out}, "want one SHARD_URL, got 2"},
		{"no output", []string{data}, "--output is required"},
		{"negative sample", []string{data, "--output", out, "--sample", "-1"}, "--sample -1"},
		{"unknown key", []string{data, "--keys", "s/0, nope", "--output", filepath.Join(dir, "x.html")}, `key "nope" not in`},
		{"not a shard", []string{filepath.Join(dir, "png", "s_1.png"), "--output", filepath.Join(dir, "x.html")}, "is not a Parquet file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runInspect(ctx, append(tc.args, "--quiet"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.html")); !os.IsNotExist(err) {
		t.Errorf("a failed report left %s behind (%v)", filepath.Join(dir, "x.html"), err)
	}
}
