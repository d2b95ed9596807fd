package pipelines

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/caption"
	"github.com/kediff/kediff/detect"
	"github.com/kediff/kediff/internal/duckdbtest"
	"github.com/kediff/kediff/internal/selection"
	"github.com/kediff/kediff/onnx"
)

// needONNX skips model tests where the onnxruntime library is missing
// (CI=1 makes that a failure, as duckdbtest does for DuckDB).
func needONNX(t *testing.T) {
	t.Helper()
	if err := onnx.Init(""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("onnxruntime: %v", err)
		}
		t.Skipf("onnxruntime not available (go tool task setup): %v", err)
	}
}

// sampleConfig is pipelines/sample.yaml with small row groups.
func sampleConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig("sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Output.RowGroupRows = 8
	return cfg
}

func TestSampleConfigResolvesPaths(t *testing.T) {
	cfg := sampleConfig(t)
	if !cfg.Detect.Enabled || !cfg.Captioner.Enabled || !cfg.VAE.Enabled {
		t.Fatalf("sample.yaml enables %v %v %v", cfg.Detect.Enabled, cfg.Captioner.Enabled, cfg.VAE.Enabled)
	}
	if got := cfg.resolve(cfg.Detect.Model); got != filepath.Join("..", "detect", "testdata", "shapes_yolov8.onnx") {
		t.Fatalf("detect.model resolves to %q", got)
	}
	if _, err := os.Stat(cfg.resolve(cfg.Captioner.Model)); err != nil {
		t.Fatal(err)
	}
	// The recorded config keeps the paths as written, not resolved.
	if !strings.Contains(string(cfg.JSON()), `"model":"../vae/testdata/model"`) {
		t.Fatalf("config JSON: %s", cfg.JSON())
	}
	d := Default()
	if d.Detect.Enabled || d.Captioner.Enabled || d.VAE.Enabled || d.Detect.Seed != 2 || d.Captioner.Seed != 3 {
		t.Fatalf("defaults: %+v %+v %+v", d.Detect, d.Captioner, d.VAE)
	}
	bad := Default()
	bad.Detect.Enabled = true
	bad.Detect.Format = "yolo9000"
	bad.Captioner.Enabled = true
	bad.Captioner.Fraction = 2
	err := bad.Validate()
	for _, want := range []string{"detect.model is required", "detect.format", "captioner.model", "captioner.fraction"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want %q", err, want)
		}
	}
}

// The model stages on synthetic data with pipelines/sample.yaml: every
// column they add, read back with DuckDB.
func TestModelStages(t *testing.T) {
	needONNX(t)
	duckdbtest.Require(t)
	in := makeSample(t, 24, 8)
	out := filepath.Join(t.TempDir(), "out")
	cfg := sampleConfig(t)
	sum := preprocess(t, in, out, cfg, Split{0, 1})
	if sum.Written+sum.Rejected != sum.Read || sum.Written < 20 {
		t.Fatalf("read %d, rows %d, rejects %d", sum.Read, sum.Written, sum.Rejected)
	}
	glob := duckdbtest.Quote(filepath.Join(out, "0*[0-9].parquet"))
	rejects := duckdbtest.Quote(filepath.Join(out, "*_rejects.parquet"))
	res := duckdbtest.QueryAll(t,
		"SELECT key, caption, prompt, prompt_source, generated_caption, visual_knowledge, objects, "+
			"loss_mask, loss_mask_shape, latent, latent_shape, latent_dtype, words FROM read_parquet("+glob+") ORDER BY key",
		"SELECT stage, reason FROM read_parquet("+rejects+")")
	rows := res[0]
	if int64(len(rows)) != sum.Written {
		t.Fatalf("DuckDB reads %d rows, the run wrote %d", len(rows), sum.Written)
	}
	for _, r := range res[1] {
		if s := r["stage"]; s == stageCaptioner || s == stageDetect || s == stageVAE {
			t.Errorf("good synthetic image rejected by a model: %v", r)
		}
	}
	grid := cfg.Image.Size / 8
	shapes := detect.Shapes()
	var selected, withObjects, generated, masked int
	for _, r := range rows {
		key := r["key"].(string)
		prompt := r["prompt"].(string)
		gen, _ := r["generated_caption"].(string)
		if gen == "" {
			t.Errorf("%s: empty generated_caption", key)
		}
		// Captioner: the replacement rule, then the detector's additions.
		wantPrompt, wantSource := caption.Choose(key, strings.TrimSpace(r["caption"].(string)), gen,
			cfg.Captioner.Seed, cfg.Captioner.Fraction)
		if r["prompt_source"] != wantSource {
			t.Errorf("%s: prompt_source %v, want %s", key, r["prompt_source"], wantSource)
		}
		if wantSource == caption.SourceGenerated {
			generated++
		}
		if prompt != wantPrompt && !strings.HasPrefix(prompt, strings.TrimRight(wantPrompt, ".!?。！？")) {
			t.Errorf("%s: prompt %q does not start with the chosen text %q", key, prompt, wantPrompt)
		}
		// Detect: selection, labels, kept objects and mask.
		vk := r["visual_knowledge"].(bool)
		if vk != selection.Selected(key, cfg.Detect.Seed, cfg.Detect.Fraction) {
			t.Errorf("%s: visual_knowledge %v disagrees with the selection", key, vk)
		}
		objs, _ := r["objects"].([]any)
		kept := 0
		for _, o := range objs {
			o := o.(map[string]any)
			if !slices.Contains(shapes, o["label"].(string)) || o["label_zh"] == "" {
				t.Errorf("%s: object %v", key, o)
			}
			if o["kept"].(bool) {
				kept++
			}
		}
		if vk {
			selected++
			if len(objs) > 0 {
				withObjects++
			}
		} else if len(objs) > 0 {
			t.Errorf("%s: objects on an unselected sample", key)
		}
		if prompt != wantPrompt && kept == 0 {
			t.Errorf("%s: prompt %q changed without kept objects", key, prompt)
		}
		mask, _ := hex.DecodeString(r["loss_mask"].(string))
		if shape := toInts(r["loss_mask_shape"]); !slices.Equal(shape, []int64{int64(grid), int64(grid)}) || len(mask) != grid*grid {
			t.Errorf("%s: loss_mask of %d bytes, shape %v, want %dx%d", key, len(mask), shape, grid, grid)
		}
		ones := 0
		for _, b := range mask {
			if b > 1 {
				t.Fatalf("%s: mask byte %d", key, b)
			}
			ones += int(b)
		}
		if ones > 0 {
			masked++
			if !vk || kept == 0 {
				t.Errorf("%s: %d mask cells set without kept objects (selected %v)", key, ones, vk)
			}
		}
		// VAE: float16 latent on the grid.
		lat, _ := hex.DecodeString(r["latent"].(string))
		if shape := toInts(r["latent_shape"]); !slices.Equal(shape, []int64{4, int64(grid), int64(grid)}) ||
			len(lat) != 2*4*grid*grid || r["latent_dtype"] != "float16" {
			t.Errorf("%s: latent of %d bytes, shape %v, dtype %v", key, len(lat), shape, r["latent_dtype"])
		}
		// POS tags the final prompt.
		var words strings.Builder
		for _, w := range r["words"].([]any) {
			words.WriteString(w.(string))
		}
		if words.String() != prompt {
			t.Errorf("%s: words %q do not make the prompt %q", key, words.String(), prompt)
		}
	}
	n := len(rows)
	if selected < n/5 || selected > n*4/5 || generated < n/5 || generated > n*4/5 {
		t.Errorf("%d rows: %d selected for detection, %d generated prompts; want about half", n, selected, generated)
	}
	if withObjects < selected*2/3 || masked == 0 {
		t.Errorf("%d selected samples, %d with objects, %d with mask cells", selected, withObjects, masked)
	}
	t.Logf("%d rows, %d rejects: %d detected (%d with objects, %d masked), %d generated prompts",
		n, sum.Rejected, selected, withObjects, masked, generated)

	// The manifest and shards record the models.
	md := duckdbtest.Query(t, "SELECT decode(key) AS k FROM parquet_kv_metadata("+glob+")")
	var keys []string
	for _, r := range md {
		keys = append(keys, r["k"].(string))
	}
	for _, want := range []string{"detect.sha256", "detect.config", "captioner.sha256.encoder_model.onnx", "vae.sha256", "vae.scaling_factor"} {
		if !slices.Contains(keys, want) {
			t.Errorf("shard metadata lacks %s (has %v)", want, keys)
		}
	}
}

func toInts(v any) []int64 {
	var out []int64
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, toInt(x))
	}
	return out
}

// A model that does not load or does not match its configured layout stops
// the run before any shard is written.
func TestModelErrorsFailEarly(t *testing.T) {
	needONNX(t)
	in := makeSample(t, 4, 4)
	notONNX := filepath.Join(t.TempDir(), "vae.onnx")
	os.WriteFile(notONNX, []byte("not a model"), 0o644)
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"yolox layout on a yolov8 model": {func(c *Config) { c.Detect.Format = "yolox" }, "detect"},
		"labels of the wrong count":      {func(c *Config) { c.Detect.Labels = "coco" }, "detect"},
		"vae not ONNX":                   {func(c *Config) { c.VAE.Model = notONNX }, "vae"},
		"captioner folder missing":       {func(c *Config) { c.Captioner.Model = "no-such-folder" }, "captioner"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := sampleConfig(t)
			tc.edit(&cfg)
			out := filepath.Join(t.TempDir(), "out")
			_, err := Preprocess(context.Background(), PreprocessOptions{Input: in, Output: out, Config: cfg, Split: Split{0, 1}, Logger: quietLog})
			if err == nil || !strings.Contains(err.Error(), "config "+tc.want) {
				t.Fatalf("Preprocess: %v, want a config %s error", err, tc.want)
			}
			files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
			if len(files) > 0 {
				t.Fatalf("wrote %v before failing", files)
			}
		})
	}
}

// A model whose outputs are NaN turns each sample into a reject of its stage
// (reason model_nan); the run goes on and accounts for every sample.
func TestModelNaNBecomesRejects(t *testing.T) {
	needONNX(t)
	duckdbtest.Require(t)
	in := makeSample(t, 8, 8)
	capDir := t.TempDir()
	for _, f := range []string{caption.DecoderFile, caption.TokenizerFile, caption.PreprocessorFile, caption.ConfigFile, caption.EncoderFile} {
		src := filepath.Join("..", "caption", "testdata", "model", f)
		if f == caption.EncoderFile {
			src = filepath.Join("..", "caption", "testdata", "bad", "encoder_nan.onnx")
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(capDir, f), b, 0o644)
	}
	for stage, edit := range map[string]func(*Config){
		stageVAE:       func(c *Config) { c.VAE.Model = "../vae/testdata/bad/vae_encoder_nan.onnx" },
		stageCaptioner: func(c *Config) { c.Captioner.Model = capDir },
	} {
		t.Run(stage, func(t *testing.T) {
			cfg := sampleConfig(t)
			edit(&cfg)
			out := filepath.Join(t.TempDir(), "out")
			sum := preprocess(t, in, out, cfg, Split{0, 1})
			if sum.Written != 0 || sum.Rejected != sum.Read {
				t.Fatalf("read %d, rows %d, rejects %d: want every sample rejected", sum.Read, sum.Written, sum.Rejected)
			}
			rows := duckdbtest.Query(t, "SELECT stage, reason, count(*) AS n FROM read_parquet("+
				duckdbtest.Quote(filepath.Join(out, "*_rejects.parquet"))+") GROUP BY ALL")
			var n int64
			for _, r := range rows {
				if r["stage"] == stage {
					if r["reason"] != reasonModelNaN {
						t.Errorf("stage %s reason %v, want %s", stage, r["reason"], reasonModelNaN)
					}
					n += toInt(r["n"])
				}
			}
			if n == 0 {
				t.Fatalf("no %s rejects: %v", stage, rows)
			}
		})
	}
}
