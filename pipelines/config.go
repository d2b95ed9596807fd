package pipelines

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kediff/kediff/detect"
	"github.com/kediff/kediff/shards"
)

// Config is the preprocessing configuration. Every field has a default
// (Default); a YAML or JSON file overrides any subset. The effective config is
// recorded in every output file, and its hash in every stats file.
type Config struct {
	Read    ReadConfig    `yaml:"read" json:"read"`
	Caption CaptionConfig `yaml:"caption" json:"caption"`
	Image   ImageConfig   `yaml:"image" json:"image"`
	POS     POSConfig     `yaml:"pos" json:"pos"`
	// Model-driven stages (DESIGN.md 1.4), all disabled by default.
	Detect    DetectConfig    `yaml:"detect" json:"detect"`
	Captioner CaptionerConfig `yaml:"captioner" json:"captioner"`
	VAE       VAEConfig       `yaml:"vae" json:"vae"`
	ONNX      ONNXConfig      `yaml:"onnx" json:"onnx"`
	Output    OutputConfig    `yaml:"output" json:"output"`
	Workers   WorkersConfig   `yaml:"workers" json:"workers"`
	// Store changes how faults of the object store are survived, not the
	// rows: it is left out of the recorded config and its hash.
	Store StoreConfig `yaml:"store" json:"-"`

	// base is the folder of the config file that relative model and label
	// paths are resolved against ("" = the working folder). It is not part
	// of the recorded config, so that moving a checkout keeps the hash.
	base string
}

// DetectConfig configures the object-detection stage (package detect):
// detections, eye-catching objects, loss masks and caption additions.
type DetectConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Model is the ONNX detector file.
	Model string `yaml:"model" json:"model"`
	// Format is the output layout: yolov8 (also YOLO11), yolov5 or yolox.
	Format string `yaml:"format" json:"format"`
	// Labels is a label file (one class per line, optional TAB and Chinese
	// name) or the built-in lists "coco" and "shapes"; empty names classes
	// class<id>.
	Labels string `yaml:"labels" json:"labels"`
	// InputSize is the model input's side (square letterbox).
	InputSize int        `yaml:"input_size" json:"input_size"`
	BGR       bool       `yaml:"bgr" json:"bgr"`
	Scale     float32    `yaml:"scale" json:"scale"` // pixel scale before mean/std (1/255 or 1)
	Mean      [3]float32 `yaml:"mean" json:"mean"`
	Std       [3]float32 `yaml:"std" json:"std"`
	Align     string     `yaml:"align" json:"align"` // center or topleft
	Pad       float32    `yaml:"pad" json:"pad"`     // letterbox pad value, 0-255
	Strides   []int      `yaml:"strides" json:"strides"`
	Conf      float32    `yaml:"conf" json:"conf"`
	IoU       float32    `yaml:"iou" json:"iou"`
	MaxDet    int        `yaml:"max_det" json:"max_det"`
	// Batch is the most samples per model run; Threads the onnxruntime
	// intra-op threads of this model (0: onnx.intra_op_threads).
	Batch   int `yaml:"batch" json:"batch"`
	Threads int `yaml:"threads" json:"-"`
	// Eye-catching selection: the detector runs on Fraction of the samples
	// (hash of key and Seed); objects with score >= MinScore covering at
	// least MinArea of the image are kept, at most MaxObjects.
	Fraction   float64 `yaml:"fraction" json:"fraction"`
	Seed       uint64  `yaml:"seed" json:"seed"`
	MinScore   float32 `yaml:"min_score" json:"min_score"`
	MinArea    float32 `yaml:"min_area" json:"min_area"`
	MaxObjects int     `yaml:"max_objects" json:"max_objects"`
}

// CaptionerConfig configures the image-captioning stage (package caption):
// generated_caption, and the prompt replaced by it for Fraction of the
// samples (hash of key and Seed).
type CaptionerConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Model is the folder of a vision-encoder-decoder export.
	Model     string  `yaml:"model" json:"model"`
	Batch     int     `yaml:"batch" json:"batch"`
	Threads   int     `yaml:"threads" json:"-"`
	NumBeams  int     `yaml:"num_beams" json:"num_beams"`
	MaxLength int     `yaml:"max_length" json:"max_length"` // 0: the model's config
	Fraction  float64 `yaml:"fraction" json:"fraction"`
	Seed      uint64  `yaml:"seed" json:"seed"`
}

// VAEConfig configures the latent stage (package vae).
type VAEConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Model is a vae_encoder .onnx file or a folder holding one.
	Model   string `yaml:"model" json:"model"`
	Batch   int    `yaml:"batch" json:"batch"`
	Threads int    `yaml:"threads" json:"-"`
	// ScalingFactor multiplies the latents; 0 takes the model folder's
	// config.json, else 0.18215.
	ScalingFactor float32 `yaml:"scaling_factor" json:"scaling_factor"`
	// Sample draws the latent instead of taking the mean (seeded by key and
	// Seed).
	Sample bool   `yaml:"sample" json:"sample"`
	Seed   uint64 `yaml:"seed" json:"seed"`
}

// ONNXConfig sets how models run. Library and threads change speed, not
// rows, and are left out of the recorded config.
type ONNXConfig struct {
	Library        string `yaml:"library" json:"-"`
	IntraOpThreads int    `yaml:"intra_op_threads" json:"-"`
	CUDA           bool   `yaml:"cuda" json:"cuda"`
}

// ReadConfig controls the input readers.
type ReadConfig struct {
	// MaxMemberBytes bounds one image or caption read into memory; larger
	// members become rejects.
	MaxMemberBytes int64 `yaml:"max_member_bytes" json:"max_member_bytes"`
	// Column overrides for Parquet inputs; empty means auto-detect.
	ImageColumn   string `yaml:"image_column" json:"image_column"`
	CaptionColumn string `yaml:"caption_column" json:"caption_column"`
	KeyColumn     string `yaml:"key_column" json:"key_column"`
}

// CaptionConfig holds the caption checks.
type CaptionConfig struct {
	// MaxBytes rejects captions longer than this many bytes (UTF-8).
	MaxBytes int `yaml:"max_bytes" json:"max_bytes"`
}

// ImageConfig mirrors imaging.Options.
type ImageConfig struct {
	Size            int     `yaml:"size" json:"size"`
	ResizeMode      string  `yaml:"resize_mode" json:"resize_mode"`
	MinImageSize    int     `yaml:"min_image_size" json:"min_image_size"`
	MaxImageArea    int     `yaml:"max_image_area" json:"max_image_area"`
	MaxAspectRatio  float64 `yaml:"max_aspect_ratio" json:"max_aspect_ratio"`
	MaxDecodePixels int     `yaml:"max_decode_pixels" json:"max_decode_pixels"`
	Format          string  `yaml:"format" json:"format"`
	Quality         int     `yaml:"quality" json:"quality"`
}

// POSConfig configures the textual-knowledge stage (package pos).
type POSConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Fraction of samples selected for textual knowledge (special text,
	// keyword attention) by a hash of key and Seed.
	Fraction float64 `yaml:"fraction" json:"fraction"`
	Seed     uint64  `yaml:"seed" json:"seed"`
	// UserDicts are files of "word freq tag" lines added to the dictionary.
	UserDicts []string `yaml:"user_dicts" json:"user_dicts"`
	// Classes overrides the class of raw tags (tag -> class name).
	Classes map[string]string `yaml:"classes" json:"classes"`
}

// OutputConfig shapes the output files.
type OutputConfig struct {
	RowGroupRows int `yaml:"row_group_rows" json:"row_group_rows"`
}

// WorkersConfig sets each stage's concurrency; 0 picks a default from the
// core count (see imageWorkers).
// These do not change the output, so they are left out of the config hash.
type WorkersConfig struct {
	Readers int `yaml:"readers" json:"readers"` // input shards read at once
	Image   int `yaml:"image" json:"image"`
	POS     int `yaml:"pos" json:"pos"`
	Queue   int `yaml:"queue" json:"queue"` // capacity of each edge
}

// StoreConfig sets how requests to remote object stores (s3://, gs://,
// azblob://) are retried and timed out: shards.RetryOptions, whose
// documentation says what each field does. Durations are written "250ms",
// "30s", ...
type StoreConfig struct {
	Attempts       int           `yaml:"attempts"`
	BaseDelay      time.Duration `yaml:"base_delay"`
	MaxDelay       time.Duration `yaml:"max_delay"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	StallTimeout   time.Duration `yaml:"stall_timeout"`
}

// Options is the shards package's form of the store section.
func (c StoreConfig) Options() shards.RetryOptions {
	return shards.RetryOptions{Attempts: c.Attempts, BaseDelay: c.BaseDelay, MaxDelay: c.MaxDelay,
		RequestTimeout: c.RequestTimeout, StallTimeout: c.StallTimeout}
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Read:    ReadConfig{MaxMemberBytes: 64 << 20},
		Caption: CaptionConfig{MaxBytes: 64 << 10},
		Image: ImageConfig{
			Size:            256,
			ResizeMode:      "center_crop",
			MaxDecodePixels: 100_000_000,
			Format:          "jpeg",
			Quality:         95,
		},
		POS: POSConfig{Enabled: true, Fraction: 0.5, Seed: 1},
		Detect: DetectConfig{
			Format: "yolov8", InputSize: 640, Scale: 1.0 / 255, Std: [3]float32{1, 1, 1},
			Align: "center", Pad: 114, Strides: []int{8, 16, 32},
			Conf: 0.25, IoU: 0.45, MaxDet: 300, Batch: 8,
			Fraction: 0.5, Seed: 2, MinScore: 0.5, MinArea: 0.02, MaxObjects: 3,
		},
		Captioner: CaptionerConfig{Batch: 8, NumBeams: 1, Fraction: 0.5, Seed: 3},
		VAE:       VAEConfig{Batch: 8, Seed: 4},
		Output:    OutputConfig{RowGroupRows: 256},
		Workers:   WorkersConfig{Readers: 2, POS: 1, Queue: 64},
		Store: StoreConfig{
			Attempts:       shards.DefaultRetryAttempts,
			BaseDelay:      shards.DefaultRetryBaseDelay,
			MaxDelay:       shards.DefaultRetryMaxDelay,
			RequestTimeout: shards.DefaultRequestTimeout,
			StallTimeout:   shards.DefaultStallTimeout,
		},
	}
}

// LoadConfig reads a YAML (or JSON, a subset of YAML) file over the defaults.
// Unknown keys are errors, so that a misspelt option is never ignored.
// Relative model and label paths in the file (detect.model, detect.labels,
// captioner.model, vae.model) are resolved against the file's folder.
func LoadConfig(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.validate()
	}
	data, err := readConfigFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.base = filepath.Dir(path)
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) validate() error {
	var errs []string
	if c.Read.MaxMemberBytes <= 0 {
		errs = append(errs, "read.max_member_bytes must be positive")
	}
	if c.Caption.MaxBytes <= 0 {
		errs = append(errs, "caption.max_bytes must be positive")
	}
	if c.Output.RowGroupRows <= 0 {
		errs = append(errs, "output.row_group_rows must be positive")
	}
	if c.POS.Fraction < 0 || c.POS.Fraction > 1 {
		errs = append(errs, "pos.fraction must be between 0 and 1")
	}
	if c.Workers.Readers < 0 || c.Workers.Image < 0 || c.Workers.POS < 0 || c.Workers.Queue < 0 {
		errs = append(errs, "workers.* must not be negative (0 picks a default from the core count)")
	}
	if st := c.Store; st.Attempts < 0 || st.BaseDelay < 0 || st.MaxDelay < 0 || st.RequestTimeout < 0 || st.StallTimeout < 0 {
		errs = append(errs, "store.* must not be negative (0 takes the default)")
	}
	errs = append(errs, c.validateModels()...)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Validate checks the config; LoadConfig calls it, callers that build a
// Config in code may too (Preprocess does).
func (c *Config) Validate() error { return c.validate() }

// SetBase sets the folder that relative model and label paths are resolved
// against (LoadConfig sets the config file's folder).
func (c *Config) SetBase(dir string) { c.base = dir }

// resolve returns p relative to the config file's folder.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.base == "" || strings.Contains(p, "://") {
		return p
	}
	return filepath.Join(c.base, p)
}

func (c *Config) validateModels() []string {
	var errs []string
	if c.ONNX.IntraOpThreads < 0 {
		errs = append(errs, "onnx.intra_op_threads must not be negative")
	}
	if d := &c.Detect; d.Enabled {
		if d.Model == "" {
			errs = append(errs, "detect.model is required when detect.enabled is set")
		}
		if _, err := detect.ParseFormat(d.Format); err != nil {
			errs = append(errs, "detect.format "+fmt.Sprintf("%q", d.Format)+": want yolov8, yolov5 or yolox")
		}
		if d.InputSize <= 0 || d.InputSize%32 != 0 && d.Format == "yolox" {
			errs = append(errs, "detect.input_size must be positive (a multiple of 32 for yolox)")
		}
		if d.Align != string(detect.Center) && d.Align != string(detect.TopLeft) {
			errs = append(errs, "detect.align must be center or topleft")
		}
		if d.Scale <= 0 || d.Std[0] == 0 || d.Std[1] == 0 || d.Std[2] == 0 {
			errs = append(errs, "detect.scale and detect.std must be non-zero")
		}
		if d.Conf < 0 || d.Conf > 1 || d.IoU <= 0 || d.IoU > 1 || d.MaxDet <= 0 {
			errs = append(errs, "detect.conf must be in [0,1], detect.iou in (0,1], detect.max_det positive")
		}
		if d.Batch <= 0 || d.Threads < 0 {
			errs = append(errs, "detect.batch must be positive and detect.threads not negative")
		}
		if d.Fraction < 0 || d.Fraction > 1 {
			errs = append(errs, "detect.fraction must be between 0 and 1")
		}
		if d.MinScore < 0 || d.MinScore > 1 || d.MinArea < 0 || d.MinArea > 1 || d.MaxObjects < 0 {
			errs = append(errs, "detect.min_score and detect.min_area must be in [0,1], detect.max_objects not negative")
		}
	}
	if k := &c.Captioner; k.Enabled {
		if k.Model == "" {
			errs = append(errs, "captioner.model (a folder) is required when captioner.enabled is set")
		}
		if k.Batch <= 0 || k.Threads < 0 || k.NumBeams < 0 || k.MaxLength < 0 {
			errs = append(errs, "captioner.batch must be positive; captioner.threads, num_beams and max_length not negative")
		}
		if k.Fraction < 0 || k.Fraction > 1 {
			errs = append(errs, "captioner.fraction must be between 0 and 1")
		}
	}
	if v := &c.VAE; v.Enabled {
		if v.Model == "" {
			errs = append(errs, "vae.model is required when vae.enabled is set")
		}
		if v.Batch <= 0 || v.Threads < 0 || v.ScalingFactor < 0 {
			errs = append(errs, "vae.batch must be positive; vae.threads and vae.scaling_factor not negative")
		}
	}
	if (c.Detect.Enabled || c.VAE.Enabled) && c.Image.Size%8 != 0 {
		errs = append(errs, "image.size must be a multiple of 8 for the latent grid (detect, vae)")
	}
	return errs
}

// modelsEnabled reports whether any model stage runs.
func (c *Config) modelsEnabled() bool {
	return c.Detect.Enabled || c.Captioner.Enabled || c.VAE.Enabled
}

// imageWorkers is the image stage's worker count: by default one more
// than the cores. Image work runs in C, which Go's scheduler treats as a
// blocking call: it hands the caller's P to other goroutines and takes it
// back afterwards, and an extra worker keeps every core busy meanwhile
// (bench-preprocess: ~8% less wall time, a little less CPU, than one per
// core).
func (c *Config) imageWorkers() int {
	if c.Workers.Image > 0 {
		return c.Workers.Image
	}
	return runtime.NumCPU() + 1
}

// JSON is the config that shapes the output, as recorded in output metadata.
// Worker counts are left out: they change speed, not rows, and leaving them
// out keeps shards byte-identical across machines of different sizes.
func (c *Config) JSON() []byte {
	cc := *c
	cc.Workers = WorkersConfig{}
	b, _ := json.Marshal(cc)
	return b
}

// Hash identifies the settings that shape the output: two runs with the same
// hash write the same rows.
func (c *Config) Hash() string {
	sum := sha256.Sum256(c.JSON())
	return hex.EncodeToString(sum[:8])
}
