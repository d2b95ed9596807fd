package sample

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"strconv"

	"github.com/kediff/kediff/internal/pyref"
	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/unet"
	"github.com/kediff/kediff/vae"
)

const fixtureDecoder = "../vae/testdata/model"

// TestWriteOutputs samples with the bundled fixture decoder and checks the
// output folder with independent readers: every PNG decodes (Go's image/png
// and PIL) with its parameters in text chunks that PIL reads, samples.jsonl
// has one record per image, and the latents file holds what PyTorch needs
// in the dtypes it reads.
func TestWriteOutputs(t *testing.T) {
	mix := twoExperts(t, unet.TinyConfig())
	dec, err := vae.OpenDecoder(fixtureDecoder, vae.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if err := mix.CheckDecoder(dec); err != nil {
		t.Fatal(err)
	}
	opt := DefaultOptions()
	opt.Steps, opt.Batch, opt.ImagesPerPrompt, opt.Seed = 5, 2, 2, 40
	prompts := []string{"a red circle", "红色的圆"}
	res, err := Run(context.Background(), mix, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := DecodeImages(dec, res)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, res, imgs, WriteOptions{SaveLatents: true}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for i, r := range recs {
		if r.Prompt != prompts[i/2] || r.Seed != 40+uint64(i) || r.Steps != 5 || r.Guidance != DefaultGuidance || len(r.Checkpoints) != 2 || len(r.Checkpoints[0].SHA256) != 64 || r.Latents != LatentsFile(i/2) {
			t.Errorf("record %d: %+v", i, r)
		}
		f, err := os.Open(filepath.Join(dir, r.File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds() != image.Rect(0, 0, 64, 64) {
			t.Fatalf("%s: %v, %v", r.File, err, img.Bounds())
		}
	}
	g, err := os.Open(filepath.Join(dir, GridFile))
	if err != nil {
		t.Fatal(err)
	}
	grid, err := png.Decode(g)
	g.Close()
	if err != nil || grid.Bounds().Dx() != 2*64+2 || grid.Bounds().Dy() != 2*64+2 {
		t.Fatalf("grid: %v %v (2 images per prompt: 2 columns)", err, grid.Bounds())
	}

	// PIL reads the images and their text chunks; PyTorch's safetensors the latents
	py := pyref.Venv(t, "PIL", "safetensors.torch")
	code := `import json, sys
from PIL import Image
from safetensors.torch import load_file
d = sys.argv[1]
out = {"images": {}}
for line in open(d + "/samples.jsonl"):
    r = json.loads(line)
    im = Image.open(d + "/" + r["file"])
    im.load()
    out["images"][r["file"]] = {"size": list(im.size), "text": im.text}
t = load_file(d + "/latents-00000.safetensors")
out["latents"] = {k: f"{v.dtype} {list(v.shape)}" for k, v in t.items()}
print(json.dumps(out))`
	b, err := exec.Command(py, "-c", code, dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Images map[string]struct {
			Size []int             `json:"size"`
			Text map[string]string `json:"text"`
		} `json:"images"`
		Latents map[string]string `json:"latents"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		p := got.Images[r.File]
		if len(p.Size) != 2 || p.Size[0] != 64 || p.Text["prompt"] != prompts[i/2] || p.Text["seed"] != strconv.FormatUint(r.Seed, 10) ||
			p.Text["num_inference_steps"] != "5" || p.Text["guidance_scale"] != "2.1" || !strings.Contains(p.Text["checkpoints"], r.Checkpoints[1].SHA256) {
			t.Errorf("%s as PIL reads it: %+v", r.File, p)
		}
	}
	want := map[string]string{"x_T": "torch.float32 [2, 4, 8, 8]", "x_0": "torch.float32 [2, 4, 8, 8]", "tokens": "torch.int64 [4, 8]", "mask": "torch.bool [4, 8]", "timesteps": "torch.int64 [5]"}
	for k, w := range want {
		if v := got.Latents[k]; v != w {
			t.Errorf("latents %s: %s, want %s", k, v, w)
		}
	}
}

// TestDecoderChannels: a decoder for another latent width is refused
// before any step.
func TestDecoderChannels(t *testing.T) {
	cfg := unet.TinyConfig()
	cfg.InChannels, cfg.OutChannels = 3, 3
	c := openCheckpoint(t, testckpt.Write(t, t.TempDir(), testckpt.Random(t, cfg, 1, 0.01), testckpt.Vocab(t), -1, 1))
	mix, err := NewMixture(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := vae.OpenDecoder(fixtureDecoder, vae.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if err := mix.CheckDecoder(dec); err == nil || !strings.Contains(err.Error(), "takes 4 latent channels, but the U-Net makes 3") {
		t.Errorf("3-channel U-Net with a 4-channel decoder: %v", err)
	}
}

// TestPNGText checks the iTXt writer against Go's own PNG decoder (the
// chunks must not break the file) and a UTF-8 value.
func TestPNGText(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{200, 10, 10, 255})
	b, err := EncodePNG(img, []Text{{"prompt", "一只红色的猫\nline two"}, {"seed", "7"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(b))
	r1, g1, b1, _ := got.At(1, 1).RGBA()
	r2, g2, b2, _ := img.At(1, 1).RGBA()
	if err != nil || r1 != r2 || g1 != g2 || b1 != b2 {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Contains(b, []byte("iTXtprompt\x00\x00\x00\x00\x00一只红色的猫")) {
		t.Error("no iTXt prompt chunk")
	}
	if _, err := EncodePNG(img, []Text{{"", "x"}}); err == nil {
		t.Error("empty keyword accepted")
	}
	if _, err := EncodePNG(img, []Text{{"提示", "x"}}); err == nil {
		t.Error("non-Latin keyword accepted")
	}
}
