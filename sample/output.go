package sample

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/vae"
)

// Files of an output folder (DESIGN.md 3.5).
const (
	IndexFile = "samples.jsonl" // one Record per image, written last
	GridFile  = "grid.png"
)

// ImageFile and LatentsFile name an image's PNG and a batch's latents.
func ImageFile(index int) string   { return fmt.Sprintf("%05d.png", index) }
func LatentsFile(batch int) string { return fmt.Sprintf("latents-%05d.safetensors", batch) }

// Record is one line of samples.jsonl: an image and everything that made
// it, with diffusers' option names.
type Record struct {
	Index         int             `json:"index"`
	File          string          `json:"file"`
	Prompt        string          `json:"prompt"`
	Seed          uint64          `json:"seed"`
	Scheduler     string          `json:"scheduler"`
	Steps         int             `json:"num_inference_steps"`
	Guidance      float64         `json:"guidance_scale"`
	Eta           float64         `json:"eta"`
	Spacing       string          `json:"timestep_spacing"`
	StepsOffset   int             `json:"steps_offset"`
	SetAlphaToOne bool            `json:"set_alpha_to_one"`
	Width         int             `json:"width"`
	Height        int             `json:"height"`
	TokensDropped int             `json:"tokens_dropped,omitempty"`
	InitNoise     string          `json:"init_noise,omitempty"`
	Batch         int             `json:"batch"`
	Latents       string          `json:"latents,omitempty"`
	Checkpoints   []CheckpointUse `json:"checkpoints"`
}

// CheckpointUse is one checkpoint of a run and the timesteps it denoised.
type CheckpointUse struct {
	Path      string `json:"path"`
	Role      string `json:"role"`
	Expert    int    `json:"expert"`
	Experts   int    `json:"experts,omitempty"`
	Block     [2]int `json:"block"`
	SHA256    string `json:"sha256"`
	Timesteps []int  `json:"timesteps"`
}

// Uses lists the checkpoints of a run in the order they ran, each once with
// all its timesteps.
func (r *Result) Uses() []CheckpointUse {
	var out []CheckpointUse
	at := map[*Checkpoint]int{}
	for _, s := range r.Segments {
		c := s.Checkpoint
		k, ok := at[c]
		if !ok {
			lo, hi := c.Block()
			role := "base"
			if c.Expert >= 0 {
				role = "expert"
			}
			path := c.Dir
			if path == "" {
				path = c.Name
			}
			out = append(out, CheckpointUse{Path: path, Role: role, Expert: c.Expert, Experts: c.Experts, Block: [2]int{lo, hi}, SHA256: c.SHA256})
			k = len(out) - 1
			at[c] = k
		}
		out[k].Timesteps = append(out[k].Timesteps, s.Timesteps...)
	}
	return out
}

// DecodeImages decodes the final latents into images with a
// Stable-Diffusion-style decoder.
func DecodeImages(dec *vae.Decoder, res *Result) ([]*image.RGBA, error) {
	if ch := dec.LatentChannels(); ch >= 0 && ch != res.LatentShape[0] {
		return nil, fmt.Errorf("sample: the decoder takes %d latent channels, the latents have %d", ch, res.LatentShape[0])
	}
	lat := make([]vae.Latent, len(res.Images))
	for i, img := range res.Images {
		lat[i] = vae.Latent{Data: img.X0, Shape: res.LatentShape}
	}
	imgs, err := dec.Decode(lat)
	if err != nil {
		return nil, fmt.Errorf("sample: decoding the latents: %w", err)
	}
	return imgs, nil
}

// WriteOptions say what Write adds besides the images.
type WriteOptions struct {
	SaveLatents bool   // a latents-NNNNN.safetensors per batch
	GridCols    int    // 0: ImagesPerPrompt when above 1, else about the square root
	InitNoise   string // the file x_T came from, recorded in samples.jsonl
}

// Write stores a run in dir: one PNG per image with its parameters in text
// chunks, grid.png, with SaveLatents a safetensors file per batch, and
// samples.jsonl, written last; every file through a temporary file and a
// rename.
func Write(dir string, res *Result, imgs []*image.RGBA, wo WriteOptions) error {
	if len(imgs) != len(res.Images) {
		return fmt.Errorf("sample: %d images for %d samples", len(imgs), len(res.Images))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	o := res.Options
	uses := res.Uses()
	batchOf := map[int]int{}
	for bi, b := range res.Batches {
		for _, i := range b.Images {
			batchOf[i] = bi
		}
	}
	var index bytes.Buffer
	grid := make([]image.Image, len(imgs))
	for i, im := range res.Images {
		rec := Record{Index: im.Index, File: ImageFile(im.Index), Prompt: im.Prompt, Seed: im.Seed,
			Scheduler: o.Scheduler, Steps: o.Steps, Guidance: o.Guidance, Eta: o.Eta,
			Spacing: o.Timesteps.TimestepSpacing, StepsOffset: o.Timesteps.StepsOffset, SetAlphaToOne: o.Timesteps.SetAlphaToOne,
			Width: imgs[i].Bounds().Dx(), Height: imgs[i].Bounds().Dy(), TokensDropped: im.Dropped,
			InitNoise: wo.InitNoise, Batch: batchOf[i], Checkpoints: uses}
		if wo.SaveLatents {
			rec.Latents = LatentsFile(rec.Batch)
		}
		line, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		png, err := EncodePNG(imgs[i], pngTexts(rec, line))
		if err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(filepath.Join(dir, rec.File), png); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		index.Write(line)
		index.WriteByte('\n')
		grid[i] = imgs[i]
	}
	cols := wo.GridCols
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(len(imgs)))))
		if o.ImagesPerPrompt > 1 {
			cols = o.ImagesPerPrompt
		}
	}
	g, err := EncodePNG(Grid(grid, cols), []Text{{"prompts", strconv.Itoa(len(imgs)) + " images; see " + IndexFile}})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, GridFile), g); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if wo.SaveLatents {
		for bi := range res.Batches {
			if err := WriteLatents(filepath.Join(dir, LatentsFile(bi)), res, bi); err != nil {
				return err
			}
		}
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, IndexFile), index.Bytes()); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}

// pngTexts are an image's text chunks: its prompt and settings one by one,
// an A1111-style "parameters" line, and the whole record as JSON.
func pngTexts(r Record, recJSON []byte) []Text {
	var hashes []string
	for _, c := range r.Checkpoints {
		hashes = append(hashes, fmt.Sprintf("%s %s [%d, %d) %s", c.SHA256, c.Role, c.Block[0], c.Block[1], c.Path))
	}
	params := fmt.Sprintf("Steps: %d, Sampler: %s (eta %g, %s), CFG scale: %g, Seed: %d, Size: %dx%d", r.Steps, r.Scheduler, r.Eta, r.Spacing, r.Guidance, r.Seed, r.Width, r.Height)
	if len(r.Checkpoints) > 0 && len(r.Checkpoints[0].SHA256) >= 12 {
		params += ", Model hash: " + r.Checkpoints[0].SHA256[:12]
	}
	return []Text{
		{"prompt", r.Prompt},
		{"seed", strconv.FormatUint(r.Seed, 10)},
		{"num_inference_steps", strconv.Itoa(r.Steps)},
		{"guidance_scale", strconv.FormatFloat(r.Guidance, 'g', -1, 64)},
		{"scheduler", r.Scheduler},
		{"eta", strconv.FormatFloat(r.Eta, 'g', -1, 64)},
		{"timestep_spacing", r.Spacing},
		{"checkpoints", strings.Join(hashes, "\n")},
		{"parameters", r.Prompt + "\n" + params},
		{"kediff", string(recJSON)},
	}
}

// WriteLatents writes batch bi of a run for other implementations (the
// latents-NNNNN.safetensors of --save-latents): x_T, the model's text input
// of both guidance halves as kediff model run and PyTorch read it (tokens
// int64, mask bool, unconditional half first), the final x_0, the timesteps
// and, for stochastic schedulers, the noise of each step; the options,
// prompts, seeds and checkpoints in the metadata.
func WriteLatents(path string, res *Result, bi int) error {
	uses := res.Uses()
	b := res.Batches[bi]
	B := len(b.Images)
	C, H, W := res.LatentShape[0], res.LatentShape[1], res.LatentShape[2]
	L := len(res.Images[b.Images[0]].Tokens)
	rows := len(b.Tokens) / L
	tok := make([]int64, len(b.Tokens))
	for i, v := range b.Tokens {
		tok[i] = int64(v)
	}
	ts := make([]int64, len(res.Timesteps))
	for i, v := range res.Timesteps {
		ts[i] = int64(v)
	}
	t := map[string]safetensors.Tensor{
		"x_T":       safetensors.F32([]int{B, C, H, W}, b.XT),
		"x_0":       safetensors.F32([]int{B, C, H, W}, b.X0),
		"tokens":    safetensors.I64([]int{rows, L}, tok),
		"mask":      safetensors.Bool([]int{rows, L}, b.Mask),
		"timesteps": safetensors.I64([]int{len(ts)}, ts),
	}
	if len(b.Noise) > 0 {
		flat := make([]float32, 0, len(b.Noise)*B*C*H*W)
		for _, z := range b.Noise {
			flat = append(flat, z...)
		}
		nts := make([]int64, len(b.NoiseSteps))
		for i, v := range b.NoiseSteps {
			nts[i] = int64(v)
		}
		t["noise"] = safetensors.F32([]int{len(b.Noise), B, C, H, W}, flat)
		t["noise_timesteps"] = safetensors.I64([]int{len(nts)}, nts)
	}
	var prompts []string
	var seeds []uint64
	for _, i := range b.Images {
		prompts = append(prompts, res.Images[i].Prompt)
		seeds = append(seeds, res.Images[i].Seed)
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	o := res.Options
	meta := map[string]string{
		"images": js(b.Images), "prompts": js(prompts), "seeds": js(seeds),
		"scheduler": o.Scheduler, "num_inference_steps": strconv.Itoa(o.Steps), "eta": strconv.FormatFloat(o.Eta, 'g', -1, 64),
		"guidance_scale": strconv.FormatFloat(o.Guidance, 'g', -1, 64), "timestep_spacing": o.Timesteps.TimestepSpacing,
		"steps_offset": strconv.Itoa(o.Timesteps.StepsOffset), "set_alpha_to_one": strconv.FormatBool(o.Timesteps.SetAlphaToOne),
		"halves": "unconditional,conditional", "checkpoints": js(uses),
	}
	if rows == B {
		meta["halves"] = "conditional"
	}
	enc, err := safetensors.Encode(t, meta)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, enc); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	return nil
}
