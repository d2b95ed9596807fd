package imageset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/synth"
)

// pngBytes encodes a w x h image of one colour.
func pngBytes(t *testing.T, w, h int, c color.RGBA) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteSampleFolder writes a sample output folder in package sample's
// format: NNNNN.png and samples.jsonl with one record per image.
func writeSampleFolder(t *testing.T, dir string, prompts []string) {
	t.Helper()
	var index bytes.Buffer
	for i, p := range prompts {
		rec := sample.Record{Index: i, File: sample.ImageFile(i), Prompt: p, Width: 8 + i, Height: 8}
		writeFile(t, filepath.Join(dir, rec.File), pngBytes(t, rec.Width, rec.Height, color.RGBA{uint8(40 * i), 0, 0, 255}))
		line, _ := json.Marshal(rec)
		index.Write(append(line, '\n'))
	}
	writeFile(t, filepath.Join(dir, sample.GridFile), pngBytes(t, 4, 4, color.RGBA{A: 255}))
	writeFile(t, filepath.Join(dir, sample.IndexFile), index.Bytes())
}

// writeShards writes kediff output shards with ShardWriter: each row's
// caption differs from its prompt, and each shard has one reject.
func writeShards(t *testing.T, dir string, ids []string, rows int, manifest bool) {
	t.Helper()
	ctx := context.Background()
	b, err := shards.OpenDir(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	md := shards.Metadata{Version: "test", Config: []byte("{}")}
	for _, id := range ids {
		w, err := shards.NewShardWriter(ctx, b, id, md, shards.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			key := fmt.Sprintf("%s-%d", id, i)
			err := w.Write(&shards.Row{Key: key, Caption: "caption " + key, Prompt: "prompt " + key, PromptSource: "caption",
				Image: &shards.Image{Bytes: pngBytes(t, 16, 12, color.RGBA{0, uint8(30 * i), 0, 255}), Path: key + ".png"}})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteReject(&shards.Reject{Key: id + "-bad", Stage: "image", Reason: "decode", Detail: "test"}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(shards.Stats{Input: "test://" + id, Read: int64(rows + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if manifest {
		if _, err := shards.WriteManifest(ctx, b, md); err != nil {
			t.Fatal(err)
		}
	}
}

// collect runs Each and returns the items' keys and prompts, and its error.
func collect(t *testing.T, s *Set) (keys, prompts []string, err error) {
	t.Helper()
	err = s.Each(context.Background(), func(it Item) error {
		if it.Image == nil || it.Image.Bounds().Empty() {
			t.Errorf("item %s: no image", it.Key)
		}
		keys = append(keys, it.Key)
		prompts = append(prompts, it.Prompt)
		return nil
	})
	return keys, prompts, err
}

func TestIndexFileIsSamples(t *testing.T) {
	if indexFile != sample.IndexFile {
		t.Errorf("indexFile = %q, package sample writes %q", indexFile, sample.IndexFile)
	}
}

func TestOpenReadsEveryKind(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()

	samples := filepath.Join(root, "samples")
	writeSampleFolder(t, samples, []string{"a red circle", "两个蓝色的正方形", "a green star"})

	withManifest := filepath.Join(root, "shards")
	writeShards(t, withManifest, []string{"00000", "00001"}, 2, true)
	noManifest := filepath.Join(root, "shards-running")
	writeShards(t, noManifest, []string{"00000"}, 3, false)

	folder := filepath.Join(root, "folder")
	writeFile(t, filepath.Join(folder, "a.png"), pngBytes(t, 10, 10, color.RGBA{255, 0, 0, 255}))
	writeFile(t, filepath.Join(folder, "a.txt"), []byte("a caption\n"))
	writeFile(t, filepath.Join(folder, "b.png"), pngBytes(t, 7, 5, color.RGBA{0, 0, 255, 255})) // no .txt

	tars := filepath.Join(root, "tars")
	if _, err := synth.Generate(ctx, tars, synth.Options{Samples: 5, PerShard: 3, Width: 32, Height: 32, Lang: "en"}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		url     string
		kind    Kind
		keys    []string
		prompts []string // nil: not checked
	}{
		{"sample_folder_prompts_from_index", samples, KindSamples,
			[]string{"00000.png", "00001.png", "00002.png"}, []string{"a red circle", "两个蓝色的正方形", "a green star"}},
		{"shards_with_manifest_prompt_column", withManifest, KindShards,
			[]string{"00000/00000-0", "00000/00000-1", "00001/00001-0", "00001/00001-1"},
			[]string{"prompt 00000-0", "prompt 00000-1", "prompt 00001-0", "prompt 00001-1"}},
		{"shards_without_manifest_skip_rejects", noManifest, KindShards,
			[]string{"00000/00000-0", "00000/00000-1", "00000/00000-2"},
			[]string{"prompt 00000-0", "prompt 00000-1", "prompt 00000-2"}},
		{"one_shard_file", filepath.Join(noManifest, "00000.parquet"), KindShards,
			[]string{"00000/00000-0", "00000/00000-1", "00000/00000-2"}, nil},
		{"image_folder_txt_optional", folder, KindInput, []string{"folder/a", "folder/b"}, []string{"a caption", ""}},
		{"tars", tars, KindInput, []string{"00000/000000000", "00000/000000001", "00000/000000002", "00001/000000003", "00001/000000004"}, nil},
		{"tar_pattern", filepath.Join(tars, "{00000..00000}.tar"), KindInput, []string{"00000/000000000", "00000/000000001", "00000/000000002"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind() != tc.kind {
				t.Errorf("Kind = %s, want %s", s.Kind(), tc.kind)
			}
			keys, prompts, err := collect(t, s)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys, tc.keys) {
				t.Errorf("keys = %q, want %q", keys, tc.keys)
			}
			if tc.prompts != nil && !slices.Equal(prompts, tc.prompts) {
				t.Errorf("prompts = %q, want %q", prompts, tc.prompts)
			}
			if tc.prompts == nil && slices.Contains(prompts, "") {
				t.Errorf("an empty prompt in %q", prompts)
			}
		})
	}
}

func TestBadItemsAreReported(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()

	tars := filepath.Join(root, "tars")
	if _, err := synth.Generate(ctx, tars, synth.Options{Samples: 4, PerShard: 4, Width: 32, Height: 32, BadSamples: true}); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "samples")
	writeSampleFolder(t, missing, []string{"a", "b", "c"})
	os.Remove(filepath.Join(missing, "00001.png"))
	broken := filepath.Join(root, "folder")
	writeFile(t, filepath.Join(broken, "a.png"), pngBytes(t, 4, 4, color.RGBA{A: 255}))
	writeFile(t, filepath.Join(broken, "b.png"), []byte("not a png"))

	for _, tc := range []struct {
		name                           string
		url                            string
		good                           int
		undecodable, rejected, missing int
		mention                        []string
	}{
		// synth.BadKinds: truncated_jpeg and empty_image do not decode;
		// no_image and no_caption are shards.Read rejects; blank_caption and
		// invalid_utf8 have good images.
		{"synth_bad_samples", tars, 6, 2, 2, 0, []string{"00000/000000004: does not decode", "00000/000000006: no_image", "00000/000000007: no_caption"}},
		{"listed_png_missing", missing, 2, 0, 0, 1, []string{"00001.png: listed in samples.jsonl"}},
		{"folder_png_broken", broken, 1, 1, 0, 0, []string{"folder/b: does not decode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			keys, _, err := collect(t, s)
			var bad *BadItemsError
			if !errors.As(err, &bad) {
				t.Fatalf("Each error = %v, want a *BadItemsError", err)
			}
			if len(keys) != tc.good || bad.Good != tc.good || bad.Undecodable != tc.undecodable || bad.Rejected != tc.rejected || bad.Missing != tc.missing {
				t.Errorf("gave %d items; error counts good %d, undecodable %d, rejected %d, missing %d; want %d, %d, %d, %d",
					len(keys), bad.Good, bad.Undecodable, bad.Rejected, bad.Missing, tc.good, tc.undecodable, tc.rejected, tc.missing)
			}
			for _, m := range append(tc.mention, tc.url) {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	os.MkdirAll(empty, 0o755)
	emptyIndex := filepath.Join(root, "empty-samples")
	writeFile(t, filepath.Join(emptyIndex, indexFile), nil)
	badIndex := filepath.Join(root, "bad-samples")
	writeFile(t, filepath.Join(badIndex, indexFile), []byte("{\"file\": \"00000.png\"}\nnot json\n"))
	escape := filepath.Join(root, "escape-samples")
	writeFile(t, filepath.Join(escape, indexFile), []byte(`{"file": "../secret.png"}`+"\n"))
	rejectsOnly := filepath.Join(root, "shards")
	writeShards(t, rejectsOnly, []string{"00000"}, 1, false)

	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"missing_url", filepath.Join(root, "nope"), []string{filepath.Join(root, "nope"), "not found", "want a kediff sample folder"}},
		{"empty_folder", empty, []string{empty, "matched nothing"}},
		{"empty_index", emptyIndex, []string{"lists no images", "matched nothing"}},
		{"index_not_json", badIndex, []string{"samples.jsonl line 2 is not a sample record"}},
		{"index_escapes_folder", escape, []string{`names file "../secret.png" outside the folder`}},
		{"only_rejects_file", filepath.Join(rejectsOnly, "00000_rejects.parquet"), []string{"matched nothing but kediff rejects files"}},
		{"empty_url", "", []string{"empty URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.url)
			if err == nil {
				t.Fatal("Open succeeded, want an error")
			}
			for _, m := range tc.want {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestEachStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	writeSampleFolder(t, dir, []string{"a", "b", "c"})
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	err = s.Each(context.Background(), func(Item) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Each = %v after %d items, want the callback's error after 1", err, n)
	}
}

func TestFingerprintFollowsListing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeSampleFolder(t, dir, []string{"a", "b"})
	print := func() string {
		t.Helper()
		s, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.Fingerprint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := print(), print()
	if a != b {
		t.Errorf("fingerprint changed without a change: %s, %s", a, b)
	}
	writeFile(t, filepath.Join(dir, "00001.png"), pngBytes(t, 9, 9, color.RGBA{1, 2, 3, 255}))
	if c := print(); c == a {
		t.Errorf("fingerprint %s did not change when an image was rewritten", c)
	}
}
