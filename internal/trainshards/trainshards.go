// Package trainshards writes small training shards with random latents, as
// kediff preprocess lays them out (prompts, words, POS, keyword flags,
// special text on every other row, a loss mask on every third), for the
// trainer's tests and the data-parallel benchmark.
package trainshards

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/vae"
)

// Options describe the shards.
type Options struct {
	Shards, Rows int
	Size         int  // latent side (the model's image_size)
	Chans        int  // latent channels (default 4)
	NoLatent     bool // leave the latent columns out
	NaNRow       int  // global row index whose latent is NaN (-1: none)
}

// Write writes the shards and their manifest into the folder dir (created
// if missing) and returns its file:// URL. Row r of shard s is keyed
// "s<s>-r<r>"; latents are N(0, 1) float16 from a fixed seed.
func Write(ctx context.Context, dir string, o Options) (string, error) {
	if o.Chans == 0 {
		o.Chans = 4
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := shards.OpenDir(ctx, dir, true)
	if err != nil {
		return "", err
	}
	defer b.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	md := shards.Metadata{Version: "test", Config: []byte(`{}`)}
	S, C := o.Size, o.Chans
	g := 0
	for s := range o.Shards {
		w, err := shards.NewShardWriter(ctx, b, fmt.Sprintf("%05d", s), md, shards.WriterOptions{})
		if err != nil {
			return "", err
		}
		for r := range o.Rows {
			key := fmt.Sprintf("s%d-r%d", s, r)
			row := shards.Row{Key: key, Caption: "a red apple", Prompt: "a red apple " + key,
				Words: []string{"a ", "red ", "apple"}, POS: []string{"numeral", "adjective", "noun"},
				POSRaw: []string{"m", "a", "n"}, Keyword: []bool{true, true, true}, TextKnowledge: r%2 == 0}
			if row.TextKnowledge {
				row.SpecialText = "[m]a [a]red [n]apple"
			}
			if r%3 == 0 {
				row.VisualKnowledge = true
				row.LossMask = make([]byte, S*S)
				row.LossMask[0] = 1
				row.LossMaskShape = []int32{int32(S), int32(S)}
			}
			if !o.NoLatent {
				lat := make([]byte, 2*C*S*S)
				for i := range C * S * S {
					v := float32(rng.NormFloat64())
					if g == o.NaNRow {
						v = float32(math.NaN())
					}
					binary.LittleEndian.PutUint16(lat[2*i:], vae.Float16(v))
				}
				row.Latent, row.LatentShape, row.LatentDType = lat, []int32{int32(C), int32(S), int32(S)}, "float16"
			}
			if err := w.Write(&row); err != nil {
				return "", err
			}
			g++
		}
		if err := w.Close(shards.Stats{Read: int64(o.Rows), Started: time.Unix(0, 0), Finished: time.Unix(1, 0)}); err != nil {
			return "", err
		}
	}
	if _, err := shards.WriteManifest(ctx, b, md); err != nil {
		return "", err
	}
	return "file://" + dir, nil
}
