package unet

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kediff/kediff/internal/limitedfile"
)

// Config holds the arguments of glide-text2im's create_model / Text2ImUNet
// for a latent model. JSON field names follow GLIDE's argument names; the
// channel counts and resolutions are the U-Net's, the xf_* fields the text
// encoder's.
type Config struct {
	ImageSize           int     `json:"image_size"`            // latent side (e.g. 32 for 256x256 images)
	InChannels          int     `json:"in_channels"`           // 4 (latents)
	OutChannels         int     `json:"out_channels"`          // 4 (eps only, no learned variance)
	ModelChannels       int     `json:"model_channels"`        // GLIDE's num_channels
	NumResBlocks        int     `json:"num_res_blocks"`        // per level
	ChannelMult         []int   `json:"channel_mult"`          // one entry per level
	AttentionResolution []int   `json:"attention_resolutions"` // downsample rates ds (1, 2, 4, ...) with attention
	NumHeadChannels     int     `json:"num_head_channels"`     // channels per attention head
	NormGroups          int     `json:"norm_groups"`           // GroupNorm groups; GLIDE hard-codes 32
	UseScaleShiftNorm   bool    `json:"use_scale_shift_norm"`  // FiLM conditioning in ResBlocks
	ResblockUpdown      bool    `json:"resblock_updown"`       // ResBlocks (not convs) resample
	Dropout             float64 `json:"dropout"`               // in each ResBlock's out_layers

	TextCtx   int  `json:"text_ctx"`    // tokens per prompt
	NVocab    int  `json:"n_vocab"`     // token_embedding rows
	XFWidth   int  `json:"xf_width"`    // text transformer width
	XFLayers  int  `json:"xf_layers"`   // text transformer depth
	XFHeads   int  `json:"xf_heads"`    // text transformer heads
	XFFinalLN bool `json:"xf_final_ln"` // LayerNorm after the transformer
	XFPadding bool `json:"xf_padding"`  // learned padding_embedding where the mask is false

	// AttentionMaskPadding masks padded text keys out of the U-Net attention
	// (DESIGN.md 1.2). GLIDE does not mask them (the padding embedding marks
	// them instead), so false reproduces GLIDE's outputs.
	AttentionMaskPadding bool `json:"attention_mask_padding"`
}

// TinyConfig is the test model: 8x8 latents, two levels (16, 32 channels),
// attention at ds 2, a 2-layer 32-wide text encoder. NormGroups is 8 because
// 16 channels cannot form GLIDE's 32 groups.
func TinyConfig() Config {
	return Config{
		ImageSize: 8, InChannels: 4, OutChannels: 4,
		ModelChannels: 16, NumResBlocks: 1, ChannelMult: []int{1, 2},
		AttentionResolution: []int{2}, NumHeadChannels: 16, NormGroups: 8,
		UseScaleShiftNorm: true, ResblockUpdown: true,
		TextCtx: 8, NVocab: 64, XFWidth: 32, XFLayers: 2, XFHeads: 2,
		XFFinalLN: true, XFPadding: true,
	}
}

// GLIDEConfig is GLIDE's base model (model_and_diffusion_defaults: 192 channels,
// 3 ResBlocks per level, channel_mult 1,2,3,4 for 64x64, attention at 32,16,8,
// 64-channel heads, a 16-layer 512-wide text encoder over 128 tokens with the
// 50257-token BPE vocabulary) on 64x64x4 latents (512x512 images) with eps
// output: about 385M U-Net and text parameters.
func GLIDEConfig() Config {
	return Config{
		ImageSize: 64, InChannels: 4, OutChannels: 4,
		ModelChannels: 192, NumResBlocks: 3, ChannelMult: []int{1, 2, 3, 4},
		AttentionResolution: []int{2, 4, 8}, NumHeadChannels: 64, NormGroups: 32,
		UseScaleShiftNorm: true, ResblockUpdown: true, Dropout: 0.1,
		TextCtx: 128, NVocab: 50257, XFWidth: 512, XFLayers: 16, XFHeads: 8,
		XFFinalLN: true, XFPadding: true,
	}
}

// Validate reports the first inconsistency that would make the model unbuildable
// or different from GLIDE's.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("unet: model config: "+format, args...)
	}
	switch {
	case c.InChannels <= 0 || c.OutChannels <= 0:
		return bad("in_channels %d and out_channels %d must be positive", c.InChannels, c.OutChannels)
	case c.ModelChannels <= 0 || c.NumResBlocks <= 0 || len(c.ChannelMult) == 0:
		return bad("model_channels %d, num_res_blocks %d and channel_mult %v must be positive/non-empty", c.ModelChannels, c.NumResBlocks, c.ChannelMult)
	case c.NormGroups <= 0:
		return bad("norm_groups %d must be positive (GLIDE uses 32)", c.NormGroups)
	case c.NumHeadChannels <= 0:
		return bad("num_head_channels %d must be positive", c.NumHeadChannels)
	case c.Dropout < 0 || c.Dropout >= 1:
		return bad("dropout %g outside [0, 1)", c.Dropout)
	case c.TextCtx <= 0 || c.NVocab <= 0 || c.XFWidth <= 0 || c.XFLayers < 0 || c.XFHeads <= 0:
		return bad("text_ctx %d, n_vocab %d, xf_width %d, xf_heads %d must be positive", c.TextCtx, c.NVocab, c.XFWidth, c.XFHeads)
	case c.XFWidth%c.XFHeads != 0:
		return bad("xf_width %d not divisible by xf_heads %d", c.XFWidth, c.XFHeads)
	case c.ModelChannels%c.NormGroups != 0:
		return bad("model_channels %d not divisible by norm_groups %d", c.ModelChannels, c.NormGroups)
	}
	levels := len(c.ChannelMult)
	if side := c.ImageSize >> (levels - 1); side <= 0 || side<<(levels-1) != c.ImageSize {
		return bad("image_size %d is not divisible by 2^%d (one halving per level after the first)", c.ImageSize, levels-1)
	}
	for _, m := range c.ChannelMult {
		ch := m * c.ModelChannels
		if m <= 0 || ch%c.NormGroups != 0 {
			return bad("channel_mult %v: %d channels must be positive and divisible by norm_groups %d", c.ChannelMult, ch, c.NormGroups)
		}
	}
	for _, ds := range c.AttentionResolution {
		if ds <= 0 || ds&(ds-1) != 0 || ds > 1<<(levels-1) {
			return bad("attention_resolutions %v: %d is not a downsample rate of this U-Net (1..%d, powers of 2)", c.AttentionResolution, ds, 1<<(levels-1))
		}
		ch := c.ChannelMult[bitsLen(ds)] * c.ModelChannels
		if ch%c.NumHeadChannels != 0 {
			return bad("attention at ds %d: %d channels not divisible by num_head_channels %d", ds, ch, c.NumHeadChannels)
		}
	}
	return nil
}

// bitsLen is log2 of a power of two.
func bitsLen(ds int) int {
	n := 0
	for ds > 1 {
		ds >>= 1
		n++
	}
	return n
}

func (c Config) hasAttention(ds int) bool { return slices.Contains(c.AttentionResolution, ds) }

// TimeEmbedDim is GLIDE's time_embed_dim, 4 * model_channels.
func (c Config) TimeEmbedDim() int { return 4 * c.ModelChannels }

// ParseConfig decodes a JSON Config, rejecting unknown fields, and
// validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("unet: model config: %w", err)
	}
	return c, c.Validate()
}

// ReadConfig reads a JSON Config file.
// MaxJSONBytes bounds the JSON files of a checkpoint folder (config.json,
// state.json, train_config.json; real ones are a few KB): a checkpoint
// from elsewhere with a larger one is refused before it is read.
const MaxJSONBytes = 1 << 20

func ReadConfig(path string) (Config, error) {
	data, err := limitedfile.Read(path, MaxJSONBytes, "a model config.json is a short JSON file")
	if err != nil {
		return Config{}, fmt.Errorf("unet: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return c, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// WriteConfig writes c as indented JSON.
func WriteConfig(path string, c Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("unet: %w", err)
	}
	return nil
}
