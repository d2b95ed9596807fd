package unet

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigFiles(t *testing.T) {
	for file, want := range map[string]Config{"tiny.json": TinyConfig(), "glide.json": GLIDEConfig()} {
		got, err := ReadConfig(filepath.Join("../tools/train/configs", file))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want the preset %+v", file, got, want)
		}
	}
	dir := t.TempDir()
	if err := WriteConfig(filepath.Join(dir, "c.json"), GLIDEConfig()); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadConfig(filepath.Join(dir, "c.json")); err != nil || !reflect.DeepEqual(got, GLIDEConfig()) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"groups":        {func(c *Config) { c.NormGroups = 5 }, "not divisible by norm_groups"},
		"heads":         {func(c *Config) { c.NumHeadChannels = 12 }, "num_head_channels"},
		"attention_ds":  {func(c *Config) { c.AttentionResolution = []int{4} }, "not a downsample rate"},
		"image_size":    {func(c *Config) { c.ImageSize = 7 }, "image_size 7"},
		"xf_heads":      {func(c *Config) { c.XFHeads = 3 }, "xf_width 32 not divisible by xf_heads 3"},
		"dropout_range": {func(c *Config) { c.Dropout = 1 }, "dropout"},
	} {
		c := TinyConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

// TestGLIDESize builds the GLIDE-size preset's layout (no buffers): about 385M
// parameters, the size quoted for glide-text2im's base model (which differs
// only in its 3-channel input and 6-channel output convs).
func TestGLIDESize(t *testing.T) {
	m, err := build(GLIDEConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Params.Layout.Size(); got < 384_500_000 || got > 385_500_000 {
		t.Errorf("GLIDE-size model has %d parameters, want about 385M", got)
	}
	for _, name := range []string{"input_blocks.0.0.weight", "transformer.resblocks.15.mlp.c_proj.weight", "output_blocks.11.1.encoder_kv.weight", "padding_embedding"} {
		if _, ok := m.Params.Layout.Lookup(name); !ok {
			t.Errorf("no parameter %s", name)
		}
	}
}

// TestDropout checks that dropout is active only in training mode.
func TestDropout(t *testing.T) {
	cfg := TinyConfig()
	cfg.Dropout = 0.5
	m := randomModel(t, cfg, 3)
	b, noise, w := testBatch(cfg, 2, 4)
	eval := func() []float32 {
		e, err := m.Forward(b)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), e...)
	}
	e1, e2 := eval(), eval()
	if relErr(e1, e2) != 0 {
		t.Fatal("eval forward not deterministic")
	}
	m.Train = true
	e3 := eval()
	if relErr(e3, e1) < 1e-3 {
		t.Fatal("dropout 0.5 in training mode changed nothing")
	}
	m.Params.ZeroGrad()
	if l, err := m.Loss(b, noise, w, true); err != nil || l <= 0 {
		t.Fatalf("loss %v, %v", l, err)
	}
}
