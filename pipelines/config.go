package pipelines

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the preprocessing configuration. Every field has a default
// (Default); a YAML or JSON file overrides any subset. The effective config is
// recorded in every output file, and its hash in every stats file.
type Config struct {
	Read    ReadConfig    `yaml:"read" json:"read"`
	Caption CaptionConfig `yaml:"caption" json:"caption"`
	Image   ImageConfig   `yaml:"image" json:"image"`
	POS     POSConfig     `yaml:"pos" json:"pos"`
	Output  OutputConfig  `yaml:"output" json:"output"`
	Workers WorkersConfig `yaml:"workers" json:"workers"`
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

// WorkersConfig sets each stage's concurrency; 0 means "one per core".
// These do not change the output, so they are left out of the config hash.
type WorkersConfig struct {
	Readers int `yaml:"readers" json:"readers"` // input shards read at once
	Image   int `yaml:"image" json:"image"`
	POS     int `yaml:"pos" json:"pos"`
	Queue   int `yaml:"queue" json:"queue"` // capacity of each edge
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
		POS:     POSConfig{Enabled: true, Fraction: 0.5, Seed: 1},
		Output:  OutputConfig{RowGroupRows: 256},
		Workers: WorkersConfig{Readers: 2, POS: 1, Queue: 64},
	}
}

// LoadConfig reads a YAML (or JSON, a subset of YAML) file over the defaults.
// Unknown keys are errors, so that a misspelt option is never ignored.
func LoadConfig(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
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
		errs = append(errs, "workers.* must not be negative (0 means one per core)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// imageWorkers is the image stage's worker count.
func (c *Config) imageWorkers() int {
	if c.Workers.Image > 0 {
		return c.Workers.Image
	}
	return runtime.NumCPU()
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
