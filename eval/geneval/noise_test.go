package geneval

import (
	"image"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/vae"
)

// TestNoiseFloor scores images decoded from random latents (what an
// untrained generator draws) against real prompts. The fixture detector
// fires on such colourful noise, so the floor is not zero; it must stay far
// below real renders, and counting (exactly the asked objects, nothing else)
// must fail. The toy reproduction reports this floor next to its models.
func TestNoiseFloor(t *testing.T) {
	c := openChecker(t)
	dec, err := vae.OpenDecoder(filepath.Join("..", "..", "vae", "testdata", "model"), vae.Options{Session: onnx.SessionOptions{IntraOpThreads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	const n = 48
	rng := rand.New(rand.NewPCG(3, 4))
	lat := make([]vae.Latent, n)
	for k := range lat {
		d := make([]float32, 4*16*16)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		lat[k] = vae.Latent{Data: d, Shape: [3]int{4, 16, 16}}
	}
	imgs, err := dec.Decode(lat)
	if err != nil {
		t.Fatal(err)
	}
	ims := make([]image.Image, n)
	prompts := make([]string, n)
	for i, s := range scenes(n) {
		ims[i], prompts[i] = imgs[i], s.sc.CaptionEn
	}
	r := rates(t, c, ims, prompts)
	for _, cat := range Categories {
		t.Logf("%-13s %2d/%2d", cat, r.Categories[cat].Passed, r.Categories[cat].Total)
	}
	t.Logf("overall %.3f", r.Overall())
	if r.Overall() > 0.3 || r.Categories[Counting].Passed > n/10 {
		t.Errorf("noise: overall %.3f (want <= 0.3), counting %d/%d (want about 0)", r.Overall(), r.Categories[Counting].Passed, n)
	}
}
