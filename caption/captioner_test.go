package caption

import (
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kediff/kediff/onnx"
)

const fixture = "testdata/model"

// refs.json, written by tools/caption/train.py.
type refs struct {
	MaxLength int `json:"max_length"`
	NumBeams  int `json:"num_beams"`
	Samples   []struct {
		Key       string `json:"key"`
		Caption   string `json:"caption"`
		GreedyIDs []int  `json:"greedy_ids"`
		Greedy    string `json:"greedy"`
		BeamIDs   []int  `json:"beam_ids"`
		Beam      string `json:"beam"`
	} `json:"samples"`
}

func needRuntime(t *testing.T) {
	t.Helper()
	if err := onnx.Init(""); err != nil {
		t.Skipf("onnxruntime is not available (run task setup): %v", err)
	}
}

func loadRefs(t *testing.T) (refs, []image.Image) {
	t.Helper()
	data, err := os.ReadFile("testdata/refs.json")
	if err != nil {
		t.Fatal(err)
	}
	var r refs
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	imgs := make([]image.Image, len(r.Samples))
	for i, s := range r.Samples {
		f, err := os.Open(filepath.Join("testdata/heldout", s.Key+".png"))
		if err != nil {
			t.Fatal(err)
		}
		imgs[i], err = png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return r, imgs
}

func openFixture(t *testing.T, batch int) *Captioner {
	t.Helper()
	needRuntime(t)
	c, err := Open(fixture, Options{BatchSize: batch, Session: onnx.SessionOptions{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func toInts(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}

// The fixture reproduces the held-out captions, and Go's greedy and beam
// decodes give PyTorch's tokens.
func TestFixtureCaptions(t *testing.T) {
	r, imgs := loadRefs(t)
	c := openFixture(t, 16)
	for _, mode := range []struct {
		name  string
		beams int
	}{{"greedy", 1}, {"beam3", r.NumBeams}} {
		t.Run(mode.name, func(t *testing.T) {
			res := c.GenerateEach(imgs, Search{NumBeams: mode.beams, MaxLength: r.MaxLength})
			exact, agree := 0, 0
			for i, s := range r.Samples {
				if res[i].Err != nil {
					t.Fatalf("%s: %v", s.Key, res[i].Err)
				}
				want, wantText := s.GreedyIDs, s.Greedy
				if mode.beams > 1 {
					want, wantText = s.BeamIDs, s.Beam
				}
				if reflect.DeepEqual(toInts(res[i].IDs), toInts(want)) && res[i].Caption == wantText {
					agree++
				} else {
					t.Errorf("%s: Go %q %v, PyTorch %q %v", s.Key, res[i].Caption, res[i].IDs, wantText, want)
				}
				if res[i].Caption == s.Caption {
					exact++
				}
			}
			t.Logf("%s: %d/%d exact captions, %d/%d agree with PyTorch", mode.name, exact, len(imgs), agree, len(imgs))
			if exact*100 < 80*len(imgs) {
				t.Errorf("%s: %d/%d exact captions, want at least 80%%", mode.name, exact, len(imgs))
			}
		})
	}
}

// Batch size does not change the result.
func TestBatchSizes(t *testing.T) {
	r, imgs := loadRefs(t)
	imgs = imgs[:min(len(imgs), 10)]
	one := openFixture(t, 1)
	many := openFixture(t, 7)
	a, err := one.Generate(imgs, Search{NumBeams: 2, MaxLength: r.MaxLength})
	if err != nil {
		t.Fatal(err)
	}
	b, err := many.Generate(imgs, Search{NumBeams: 2, MaxLength: r.MaxLength})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("batch 1 and batch 7 differ:\n%q\n%q", a, b)
	}
	short, err := many.Generate(imgs[:1], Search{MaxLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(short[0])); n > 2 {
		t.Errorf("MaxLength 2 gave %q", short[0])
	}
}

// copyFixture copies the fixture folder so a test can break one file.
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(fixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(fixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func replace(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenRejects(t *testing.T) {
	needRuntime(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"encoder_not_onnx", func(t *testing.T, dir string) {
			replace(t, dir, EncoderFile, []byte("this is not a model\n"))
		}, EncoderFile},
		{"swapped_models", func(t *testing.T, dir string) {
			enc, dec := readFile(t, filepath.Join(dir, EncoderFile)), readFile(t, filepath.Join(dir, DecoderFile))
			replace(t, dir, EncoderFile, dec)
			replace(t, dir, DecoderFile, enc)
		}, "pixel_values"},
		{"preprocessor_size_mismatch", func(t *testing.T, dir string) {
			replace(t, dir, PreprocessorFile, []byte(`{"do_resize": true, "size": {"height": 32, "width": 48}}`))
		}, "[N 3 32 48]"},
		{"no_eos", func(t *testing.T, dir string) {
			replace(t, dir, ConfigFile, []byte(`{"decoder_start_token_id": 2}`))
		}, "eos_token_id"},
		{"eos_outside_logits", func(t *testing.T, dir string) {
			replace(t, dir, ConfigFile, []byte(`{"decoder_start_token_id": 2, "eos_token_id": 100000}`))
		}, "outside"},
		{"missing_tokenizer", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, TokenizerFile))
		}, TokenizerFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t)
			tc.setup(t, dir)
			c, err := Open(dir, Options{})
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestBadImagesAndOutputs(t *testing.T) {
	_, imgs := loadRefs(t)
	needRuntime(t)

	// Without resizing, an image of another size is rejected on its own row.
	dir := copyFixture(t)
	replace(t, dir, PreprocessorFile, []byte(`{"do_resize": false}`))
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := c.GenerateEach([]image.Image{imgs[0], image.NewRGBA(image.Rect(0, 0, 30, 20)), nil, imgs[1]}, Search{})
	if res[0].Err != nil || res[3].Err != nil || res[0].Caption == "" {
		t.Fatalf("good rows failed: %+v", res)
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "do_resize") || res[2].Err == nil {
		t.Fatalf("bad rows: %v / %v", res[1].Err, res[2].Err)
	}
	if _, err := c.Generate([]image.Image{nil}, Search{}); err == nil {
		t.Fatal("Generate with a nil image: want an error")
	}

	// With resizing, any size works.
	ok := openFixture(t, 4)
	big := image.NewRGBA(image.Rect(0, 0, 100, 37))
	if _, err := ok.Generate([]image.Image{big}, Search{}); err != nil {
		t.Fatal(err)
	}

	// An encoder with NaN outputs fails its rows with a clear error.
	dir = copyFixture(t)
	replace(t, dir, EncoderFile, readFile(t, "testdata/bad/encoder_nan.onnx"))
	nan, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nan.Close()
	_, err = nan.Generate(imgs[:2], Search{NumBeams: 2})
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN encoder: err = %v", err)
	}
	var se *onnx.ShapeError
	_ = errors.As(err, &se)
}
