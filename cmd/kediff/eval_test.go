package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kediff/kediff/eval/clipscore"
	"github.com/kediff/kediff/sample"
	"github.com/kediff/kediff/synth"
)

const (
	tinyInception  = "../../eval/fid/testdata/tiny_inception.onnx"
	shapesFeatures = "../../eval/fid/testdata/shapes_features.onnx"
	shapesDetector = "../../detect/testdata/shapes_yolov8.onnx"
	clipTestdata   = "../../eval/clipscore/testdata"
)

// evalEnv is what every eval test shares: the binary and the sets.
type evalEnv struct {
	bin, root string
}

func (e evalEnv) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runKediff(e.bin, nil, append([]string{"eval"}, args...)...)
}

func (e evalEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(t, args...)
	if err != nil {
		if strings.Contains(out, "onnxruntime") && os.Getenv("CI") == "" {
			t.Skip(out)
		}
		t.Fatalf("kediff eval %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e evalEnv) path(name string) string { return filepath.Join(e.root, name) }

func writePNG(t *testing.T, file string, m image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeScenes writes n rendered synth scenes as a kediff sample folder with
// their English captions as prompts.
func writeScenes(t *testing.T, dir string, n int) {
	t.Helper()
	var index bytes.Buffer
	for k := range n {
		img, sc := synth.Render(rand.New(rand.NewPCG(98, uint64(k))), synth.Options{Width: 128, Height: 128, Photo: true})
		rec := sample.Record{Index: k, File: sample.ImageFile(k), Prompt: sc.Caption("en")}
		writePNG(t, filepath.Join(dir, rec.File), img)
		line, _ := json.Marshal(rec)
		index.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, sample.IndexFile), index.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastFloat is the number after prefix in out.
func parseFloatAfter(t *testing.T, out, prefix string) float64 {
	t.Helper()
	i := strings.Index(out, prefix)
	if i < 0 {
		t.Fatalf("no %q in output:\n%s", prefix, out)
	}
	f := strings.Fields(out[i+len(prefix):])
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("%q in output: %v", prefix, err)
	}
	return v
}

// newEvalEnv builds kediff and writes the sets the tests share: a and b are
// synth tars of different looks and image sizes.
func newEvalEnv(t *testing.T) evalEnv {
	t.Helper()
	e := evalEnv{bin: buildKediff(t), root: t.TempDir()}
	ctx := context.Background()
	if _, err := synth.Generate(ctx, e.path("a"), synth.Options{Samples: 8, PerShard: 4, Width: 64, Height: 64, Photo: true, Lang: "en"}); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(ctx, e.path("b"), synth.Options{Samples: 6, PerShard: 6, Width: 48, Height: 72, Seed: 5, Lang: "en"}); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(ctx, e.path("bad"), synth.Options{Samples: 4, PerShard: 4, Width: 32, Height: 32, BadSamples: true}); err != nil {
		t.Fatal(err)
	}
	one := image.NewRGBA(image.Rect(0, 0, 20, 20))
	writePNG(t, e.path("one/x.png"), one)
	os.MkdirAll(e.path("empty"), 0o755)
	return e
}

func TestEvalCommand(t *testing.T) {
	e := newEvalEnv(t)

	t.Run("fid_inception_self_zero_other_positive", func(t *testing.T) {
		out := e.mustRun(t, "fid", e.path("a"), e.path("b"), "--model", tinyInception, "--batch", "4")
		if d := parseFloatAfter(t, out, "FID "); !(d > 1e-3) {
			t.Errorf("FID of different sets = %g, want > 0\n%s", d, out)
		}
		out = e.mustRun(t, "fid", "--json", e.path("a"), e.path("a"), "--model", tinyInception)
		var r struct {
			FID float64
			A   struct{ Images int }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("--json output: %v\n%s", err, out)
		}
		if math.Abs(r.FID) > 1e-4 || r.A.Images != 8 {
			t.Errorf("FID of a set with itself = %g over %d images, want ~0 over 8", r.FID, r.A.Images)
		}
	})

	t.Run("fid_npz_round_trip_equals_direct", func(t *testing.T) {
		st := e.path("stats")
		out := e.mustRun(t, "fid", e.path("a"), e.path("b"), "--model", shapesFeatures, "--save-stats", st)
		direct := parseFloatAfter(t, out, "FID ")
		out = e.mustRun(t, "fid", filepath.Join(st, "a.npz"), filepath.Join(st, "b.npz"))
		if got := parseFloatAfter(t, out, "FID "); got != direct || direct <= 0 {
			t.Errorf("FID from the saved .npz = %v, direct %v; want equal and > 0", got, direct)
		}
		out = e.mustRun(t, "fid", filepath.Join(st, "a.npz"), e.path("b"), "--model", shapesFeatures)
		if got := parseFloatAfter(t, out, "FID "); got != direct {
			t.Errorf("FID of .npz and set = %v, direct %v", got, direct)
		}
	})

	t.Run("fid_stats_cache_follows_listing", func(t *testing.T) {
		cache := e.path("cache")
		set := e.path("cached-set")
		os.CopyFS(set, os.DirFS(e.path("b")))
		args := []string{"fid", e.path("a"), set, "--model", shapesFeatures, "--stats-cache", cache}
		first := e.mustRun(t, args...)
		second := e.mustRun(t, args...)
		if strings.Contains(first, "statistics from the cache") || strings.Count(second, "statistics from the cache") != 2 {
			t.Errorf("want the second run, not the first, to take both sets from the cache:\n%s\n%s", first, second)
		}
		if parseFloatAfter(t, first, "FID ") != parseFloatAfter(t, second, "FID ") {
			t.Errorf("cached FID differs:\n%s\n%s", first, second)
		}
		os.WriteFile(filepath.Join(set, "00000.tar"), nil, 0o644) // the set changed: B is computed again
		out, _ := e.run(t, args...)
		if strings.Count(out, "statistics from the cache") > 1 {
			t.Errorf("a changed set was taken from the cache:\n%s", out)
		}
	})

	t.Run("binding_synth_scenes_pass", func(t *testing.T) {
		scenes := e.path("scenes")
		writeScenes(t, scenes, 40)
		report := e.path("binding.json")
		out := e.mustRun(t, "binding", scenes, "--detector", shapesDetector, "--output", report)
		for _, want := range []string{"category", "two_object", "color_attr", "overall", "0 prompts unparsed"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		data, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Overall    *float64
			Images     int
			Categories map[string]struct{ Passed, Total int }
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", report, err)
		}
		if r.Overall == nil || *r.Overall < 0.95 || r.Images != 40 || r.Categories["counting"].Total != 40 {
			t.Errorf("binding on rendered scenes: overall %v over %d images, categories %v; want >= 0.95 over 40\n%s", r.Overall, r.Images, r.Categories, out)
		}
	})

	t.Run("binding_counts_unparsed_prompts", func(t *testing.T) {
		scenes := e.path("scenes-unparsed")
		writeScenes(t, scenes, 3)
		prompts := e.path("prompts.txt")
		os.WriteFile(prompts, []byte("a red circle\na photo of a cat\na blue star\n"), 0o644)
		out := e.mustRun(t, "binding", scenes, "--detector", shapesDetector, "--prompts", prompts, "--json")
		var r struct {
			Unparsed int
			Examples []string
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("--json output: %v\n%s", err, out)
		}
		if r.Unparsed != 1 || len(r.Examples) != 1 || !strings.Contains(r.Examples[0], "a photo of a cat") {
			t.Errorf("unparsed %d, examples %q; want 1 naming the cat prompt", r.Unparsed, r.Examples)
		}
	})

	t.Run("clip_score_matches_package", func(t *testing.T) {
		tok := writeSmallTokenizer(t, e.root)
		imgModel, textModel := filepath.Join(clipTestdata, "clip_image.onnx"), filepath.Join(clipTestdata, "small_text_int64.onnx")
		set := e.path("clip-set")
		names := []string{"img0_64x64_RGB.png", "img1_80x61_RGB.png", "img3_123x45_RGBA.png"}
		prompts := []string{"t1 t2", "t3", "t4 t5 t6"}
		var imgs []image.Image
		for i, n := range names {
			data, err := os.ReadFile(filepath.Join(clipTestdata, n))
			if err != nil {
				t.Fatal(err)
			}
			m, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, m)
			os.MkdirAll(set, 0o755)
			os.WriteFile(filepath.Join(set, fmt.Sprintf("%d.png", i)), data, 0o644)
			os.WriteFile(filepath.Join(set, fmt.Sprintf("%d.txt", i)), []byte(prompts[i]), 0o644)
		}
		perImage := e.path("clip.jsonl")
		out := e.mustRun(t, "clip-score", set, "--image-model", imgModel, "--text-model", textModel, "--tokenizer", tok,
			"--output", perImage, "--batch", "2", "--json")
		var r struct {
			CLIPScore float64 `json:"clip_score"`
			Images    int
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("--json output: %v\n%s", err, out)
		}
		s, err := clipscore.Open(imgModel, textModel, tok, clipscore.Options{})
		if err != nil {
			t.Skip(err) // onnxruntime: mustRun would have failed otherwise
		}
		defer s.Close()
		want, per, err := s.Score(imgs, prompts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Images != 3 || math.Abs(r.CLIPScore-want) > 1e-9 {
			t.Errorf("clip-score = %v over %d images, package %v over 3", r.CLIPScore, r.Images, want)
		}
		lines, _ := os.ReadFile(perImage)
		var got []float64
		for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
			var rec struct {
				Key, Prompt string
				CLIPScore   float64 `json:"clip_score"`
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("%s: %v", perImage, err)
			}
			got = append(got, rec.CLIPScore)
		}
		if len(got) != 3 || math.Abs(got[2]-per[2]) > 1e-9 {
			t.Errorf("per-image scores %v, package %v", got, per)
		}
		// --prompts replaces the set's prompts in order.
		pf := e.path("clip-prompts.txt")
		os.WriteFile(pf, []byte("t9\nt8\n"), 0o644)
		out, err = e.run(t, "clip-score", set, "--image-model", imgModel, "--text-model", textModel, "--tokenizer", tok, "--prompts", pf)
		if err == nil || !strings.Contains(out, "more images than the 2 prompts given") {
			t.Errorf("prompts file one short: %v\n%s", err, out)
		}
	})

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no_metric", nil, "usage: kediff eval"},
		{"unknown_metric", []string{"psnr"}, `unknown metric "psnr"`},
		{"fid_one_set", []string{"fid", e.path("a"), "--model", shapesFeatures}, "need two image sets or .npz files"},
		{"fid_no_model", []string{"fid", e.path("a"), e.path("b")}, "give --model inception.onnx"},
		{"fid_fewer_than_two_images", []string{"fid", e.path("one"), e.path("a"), "--model", shapesFeatures}, "need at least 2"},
		{"fid_empty_set", []string{"fid", e.path("empty"), e.path("a"), "--model", shapesFeatures}, "matched nothing"},
		{"fid_missing_set", []string{"fid", e.path("nope"), e.path("a"), "--model", shapesFeatures}, "not found"},
		{"fid_bad_samples_reported", []string{"fid", e.path("bad"), e.path("a"), "--model", shapesFeatures}, "4 of 10 items are unusable"},
		{"fid_model_wrong_layout", []string{"fid", e.path("a"), e.path("b"), "--model", "../../eval/fid/testdata/bad_input_shape.onnx"}, "want float32 [N 3 S S]"},
		{"fid_missing_npz", []string{"fid", e.path("nope.npz"), e.path("a"), "--model", shapesFeatures}, "nope.npz"},
		{"clip_score_no_models", []string{"clip-score", e.path("a")}, "need one image set and --image-model, --text-model and --tokenizer"},
		{"clip_score_models_swapped", []string{"clip-score", e.path("a"), "--image-model", filepath.Join(clipTestdata, "small_text_int64.onnx"),
			"--text-model", filepath.Join(clipTestdata, "clip_image.onnx"), "--tokenizer", writeSmallTokenizer(t, t.TempDir())}, "want float32"},
		{"binding_detector_not_shapes", []string{"binding", e.path("a"), "--detector", tinyInception}, "detector"},
		{"binding_empty_set", []string{"binding", e.path("empty"), "--detector", shapesDetector}, "matched nothing"},
		{"binding_unknown_flag", []string{"binding", e.path("a"), "--nope"}, "flag provided but not defined"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.run(t, tc.args...)
			if err == nil {
				t.Fatalf("kediff eval %s succeeded, want an error containing %q\n%s", strings.Join(tc.args, " "), tc.want, out)
			}
			if strings.Contains(out, "onnxruntime") && !strings.Contains(tc.want, "onnxruntime") && os.Getenv("CI") == "" {
				t.Skip(out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("kediff eval %s:\n%s\nwant a message containing %q", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}

// writeSmallTokenizer writes a tokenizer.json for the clipscore fixture's
// 64-token text models (words t0..t61, start 62, end 63), as
// clipscore's own tests do, and returns its path.
func writeSmallTokenizer(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "tokenizer.json")
	vocab := map[string]int{"<|startoftext|>": 62, "<|endoftext|>": 63}
	for i := range 62 {
		vocab[fmt.Sprintf("t%d</w>", i)] = i
	}
	j, _ := json.Marshal(map[string]any{"model": map[string]any{
		"type": "BPE", "end_of_word_suffix": "</w>", "vocab": vocab, "merges": []string{},
	}})
	if err := os.WriteFile(p, j, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
