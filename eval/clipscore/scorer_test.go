package clipscore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reference is testdata/clip_reference.json, written by
// tools/eval/clip_fixture.py with open_clip and PyTorch.
type reference struct {
	ImageSize       int         `json:"image_size"`
	EmbedDim        int         `json:"embed_dim"`
	Images          []string    `json:"images"`
	Prompts         []string    `json:"prompts"`
	TokenIDs        [][]int64   `json:"token_ids"`
	ImageEmbeds     [][]float64 `json:"image_embeds"`
	TextEmbeds      [][]float64 `json:"text_embeds"`
	Scores          []float64   `json:"scores"`
	Mean            float64     `json:"mean"`
	SmallIDs        [][]int64   `json:"small_ids"`
	SmallMask       [][]int64   `json:"small_mask"`
	SmallTextEmbeds [][]float64 `json:"small_text_embeds"`
}

func loadReference(t *testing.T) reference {
	t.Helper()
	data, err := os.ReadFile("testdata/clip_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

func loadPNG(t *testing.T, name string) image.Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// smallTokenizer writes a tokenizer.json for the 64-token fixture models
// (start 62, end 63) and returns its path, so they open without open_clip.
func smallTokenizer(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	vocab := map[string]int{"<|startoftext|>": 62, "<|endoftext|>": 63}
	for i := 0; i < 62; i++ {
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

// openOrSkip opens a scorer, skipping the test when onnxruntime is missing
// (task setup fetches it) and failing on any other error.
func openOrSkip(t *testing.T, imageModel, textModel, tokenizer string) *Scorer {
	t.Helper()
	s, err := Open(filepath.Join("testdata", imageModel), filepath.Join("testdata", textModel), tokenizer, Options{})
	if err != nil && strings.Contains(err.Error(), "onnxruntime") && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// relErr is the largest |got - want| over the largest |want| of a row.
func relErr(got []float32, want []float64) float64 {
	var diff, scale float64
	for i := range want {
		diff = max(diff, math.Abs(float64(got[i])-want[i]))
		scale = max(scale, math.Abs(want[i]))
	}
	return diff / scale
}

func TestPreprocessingMatchesOpenCLIP(t *testing.T) {
	ref := loadReference(t)
	p := preprocessor{size: ref.ImageSize, mean: clipMean, std: clipStd, filter: 1}
	for _, name := range ref.Images {
		t.Run(name, func(t *testing.T) {
			want := rgb8(loadPNG(t, strings.Replace(name, ".png", "_crop.png", 1)))
			got := p.crop(loadPNG(t, name))
			if !bytes.Equal(got, want) {
				diff := 0
				for i := range got {
					if got[i] != want[i] {
						diff++
					}
				}
				t.Errorf("resized and cropped pixels differ from torchvision's in %d of %d values", diff, len(got))
			}
		})
	}
}

func TestEmbeddingsMatchPyTorch(t *testing.T) {
	ref := loadReference(t)
	s := openOrSkip(t, "clip_image.onnx", "small_text_int64.onnx", smallTokenizer(t))
	var imgs []image.Image
	for _, name := range ref.Images {
		imgs = append(imgs, loadPNG(t, name))
	}
	s.batch = 2 // several batches, one partial
	got, err := s.ImageEmbeddings(imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range ref.Images {
		if e := relErr(got[i], ref.ImageEmbeds[i]); e > 1e-4 {
			t.Errorf("image %s: relative error %.2g, want <= 1e-4", name, e)
		} else {
			t.Logf("image %s: relative error %.2g", name, e)
		}
	}
}

func TestTextInputForms(t *testing.T) {
	ref := loadReference(t)
	var ids []int64
	var lens []int
	for i, row := range ref.SmallIDs {
		ids = append(ids, row...)
		n := 0
		for _, m := range ref.SmallMask[i] {
			n += int(m)
		}
		lens = append(lens, n)
	}
	for _, model := range []string{"small_text_int64.onnx", "small_text_int32.onnx", "small_text_mask.onnx"} {
		t.Run(model, func(t *testing.T) {
			s := openOrSkip(t, "clip_image.onnx", model, smallTokenizer(t))
			got, err := s.embedIDs(ids, lens)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if e := relErr(got[i], ref.SmallTextEmbeds[i]); e > 1e-4 {
					t.Errorf("row %d: relative error %.2g, want <= 1e-4", i, e)
				}
			}
		})
	}
}

func TestScoreMatchesOpenCLIP(t *testing.T) {
	ref := loadReference(t)
	tok := loadOpenCLIPTokenizer(t)
	for i, p := range ref.Prompts {
		if got := tok.Tokenize(p, 77); !equalIDs(got, ref.TokenIDs[i]) {
			t.Errorf("prompt %d %q: ids %v, open_clip %v", i, p, got, ref.TokenIDs[i])
		}
	}
	s := openOrSkip(t, "clip_image.onnx", "clip_text.onnx", vocabPath(t))
	te, err := s.TextEmbeddings(ref.Prompts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range te {
		if e := relErr(te[i], ref.TextEmbeds[i]); e > 1e-4 {
			t.Errorf("prompt %d: text embedding relative error %.2g, want <= 1e-4", i, e)
		} else {
			t.Logf("prompt %d: text embedding relative error %.2g", i, e)
		}
	}
	var imgs []image.Image
	for _, name := range ref.Images {
		imgs = append(imgs, loadPNG(t, name))
	}
	mean, per, err := s.Score(imgs, ref.Prompts)
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i := range per {
		worst = max(worst, math.Abs(per[i]-ref.Scores[i]))
		if d := math.Abs(per[i] - ref.Scores[i]); d > 1e-3 {
			t.Errorf("pair %d: score %.5f, open_clip %.5f (|diff| %.2g > 1e-3)", i, per[i], ref.Scores[i], d)
		}
	}
	if d := math.Abs(mean - ref.Mean); d > 1e-3 {
		t.Errorf("mean score %.5f, open_clip %.5f (|diff| %.2g > 1e-3)", mean, ref.Mean, d)
	}
	t.Logf("mean %.6f, open_clip %.6f; largest per-pair |diff| %.2g", mean, ref.Mean, worst)
}

func equalIDs(a, b []int64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// vocabPath is the bpe_simple_vocab_16e6.txt.gz that open_clip ships.
func vocabPath(t *testing.T) string {
	t.Helper()
	vocab, _ := openCLIPReference(t, nil, "")
	return vocab
}

func TestPairScoreClampsAtZero(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []float32
		want float64
	}{
		{"same_direction", []float32{1, 2}, []float32{2, 4}, 100},
		{"orthogonal", []float32{1, 0}, []float32{0, 3}, 0},
		{"opposite_clamps", []float32{1, 1}, []float32{-1, -1}, 0},
		{"45_degrees", []float32{1, 0}, []float32{1, 1}, 100 / math.Sqrt2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pairScore(tc.a, tc.b); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("pairScore = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	tok := smallTokenizer(t)
	for _, tc := range []struct {
		name, image, text, tokenizer, want string
	}{
		{"text_output_per_token", "clip_image.onnx", "bad_text_tokens.onnx", tok,
			`clipscore: text model bad_text_tokens.onnx: output "text_embeds" has shape [N 77 32], want [N E] (export the projected, pooled embedding)`},
		{"embedding_widths_differ", "bad_image_16.onnx", "small_text_int64.onnx", tok,
			"clipscore: image model bad_image_16.onnx gives 16-wide embeddings, text model small_text_int64.onnx 32-wide"},
		{"models_swapped", "small_text_int64.onnx", "clip_image.onnx", tok,
			`clipscore: image model small_text_int64.onnx: input "input_ids" has element type int64, want float32`},
		{"missing_tokenizer", "clip_image.onnx", "small_text_int64.onnx", filepath.Join(t.TempDir(), "tokenizer.json"),
			"clipscore: tokenizer: open"},
		{"missing_model", "nope.onnx", "small_text_int64.onnx", tok, "clipscore: image model: onnx: model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join("testdata", tc.image), filepath.Join("testdata", tc.text), tc.tokenizer, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tc.want)
			}
			if strings.Contains(err.Error(), "onnxruntime") && os.Getenv("CI") == "" {
				t.Skip(err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

func TestScoreRejects(t *testing.T) {
	s := openOrSkip(t, "clip_image.onnx", "small_text_int64.onnx", smallTokenizer(t))
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for _, tc := range []struct {
		name    string
		imgs    []image.Image
		prompts []string
		want    string
	}{
		{"more_prompts_than_images", []image.Image{img}, []string{"a", "b"}, "1 images but 2 prompts"},
		{"more_images_than_prompts", []image.Image{img, img}, []string{"a"}, "2 images but 1 prompts"},
		{"empty_set", nil, nil, "no images to score"},
		{"empty_image", []image.Image{image.NewRGBA(image.Rect(0, 0, 0, 5))}, []string{"a"}, "image 0 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Score(tc.imgs, tc.prompts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Score error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
