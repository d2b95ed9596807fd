package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/trainshards"
	"github.com/kediff/kediff/tokenizer"
)

type shardOpts struct {
	shards, rows, size int
	noLatent           bool
	nanRow             int // global row index whose latent is NaN (-1: none)
}

// writeTestShards writes opts.shards shards of opts.rows rows with random
// float16 latents under a temp dir and returns its file:// URL.
func writeTestShards(t testing.TB, o shardOpts) string {
	t.Helper()
	url, err := trainshards.Write(context.Background(), t.TempDir(), trainshards.Options{
		Shards: o.shards, Rows: o.rows, Size: o.size, NoLatent: o.noLatent, NaNRow: o.nanRow})
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func tinyTok(t testing.TB) *tokenizer.Tokenizer {
	tok, err := tokenizer.New(append(tokenizer.SpecialTokens(), "a", "red", "apple", "s", "##0", "##1", "##2", "##3", "##4", "##5", "##6", "##7", "##8", "##9", "r", "-"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func loaderCfg(data string) LoaderConfig {
	return LoaderConfig{Data: data, Batch: 4, LatentSize: 8, LatentChans: 4, TextCtx: 12, Seed: 3, ShuffleBuffer: 8, CFGDrop: 0.1, WA: 0.01, WL: 0.1}
}

func collectKeys(t *testing.T, cfg LoaderConfig, st LoaderState, batches int) ([]string, []*TrainBatch) {
	t.Helper()
	l, err := NewLoader(context.Background(), cfg, tinyTok(t), st)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var keys []string
	var bs []*TrainBatch
	for range batches {
		b, err := l.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b.Keys...)
		bs = append(bs, b)
	}
	return keys, bs
}

func TestLoaderDeterministicAndResume(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 3, rows: 8, size: 8, nanRow: -1})
	cfg := loaderCfg(data)
	a, ba := collectKeys(t, cfg, LoaderState{}, 12) // two epochs of 24 rows
	b, _ := collectKeys(t, cfg, LoaderState{}, 12)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different order")
	}
	first := slices.Clone(a[:24])
	slices.Sort(first)
	if len(slices.Compact(first)) != 24 {
		t.Fatalf("epoch does not cover every row once: %v", a[:24])
	}
	if slices.Equal(a[:24], a[24:]) {
		t.Error("epochs in the same order")
	}
	cfg2 := cfg
	cfg2.Seed = 4
	c, _ := collectKeys(t, cfg2, LoaderState{}, 6)
	if slices.Equal(a[:24], c) {
		t.Error("different seeds, same order")
	}
	// resume from batch 4 (mid-epoch) and batch 6 (epoch end)
	for _, k := range []int{4, 6, 7} {
		r, rb := collectKeys(t, cfg, ba[k-1].State, 12-k)
		if !slices.Equal(r, a[4*k:]) {
			t.Fatalf("resume at batch %d: %v, want %v", k, r, a[4*k:])
		}
		for i := range rb {
			if !slices.Equal(rb[i].Tokens, ba[k+i].Tokens) || !slices.Equal(rb[i].Latents, ba[k+i].Latents) || !slices.Equal(rb[i].Dropped, ba[k+i].Dropped) {
				t.Fatalf("resume at batch %d: batch %d differs", k, k+i)
			}
		}
	}
	// contents
	bt := ba[0]
	if len(bt.Latents) != 4*4*64 || len(bt.Weight) != 4*64 || len(bt.Tokens) != 4*12 {
		t.Fatalf("batch sizes %d %d %d", len(bt.Latents), len(bt.Weight), len(bt.Tokens))
	}
	for i := range 4 {
		var row int
		fmt.Sscanf(bt.Keys[i][strings.Index(bt.Keys[i], "-r")+2:], "%d", &row)
		tk := row%2 == 0 && !bt.Dropped[i]
		if (bt.WA[i] != 0) != tk {
			t.Errorf("%s: wa %v", bt.Keys[i], bt.WA[i])
		}
		if tk && bt.Tokens[i*12] != tinyTok(t).ID("[m]") {
			t.Errorf("%s: special text not first: %v", bt.Keys[i], bt.Tokens[i*12:i*12+12])
		}
		if want := float32(1); row%3 == 0 {
			want = 1.1
			if bt.Weight[i*64] != want || bt.Weight[i*64+1] != 1 {
				t.Errorf("%s: weight %v", bt.Keys[i], bt.Weight[i*64:i*64+2])
			}
		} else if bt.Weight[i*64] != want {
			t.Errorf("%s: weight %v", bt.Keys[i], bt.Weight[i*64])
		}
	}
}

// Ranks that each take a slice of every global batch together deliver the
// batches one process would: the same samples in the same order, the same
// CFG drops, the same data position, for any number of ranks and from a
// resumed position.
func TestLoaderSlicesMakeTheGlobalBatch(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 3, rows: 8, size: 8, nanRow: -1})
	cfg := loaderCfg(data)
	cfg.Batch = 6
	const batches = 9 // two epochs and more of 24 rows
	_, whole := collectKeys(t, cfg, LoaderState{}, batches)
	for _, world := range []int{2, 3, 6} {
		for _, from := range []int{0, 5} { // a fresh start and a resumed one
			parts := make([][]*TrainBatch, world)
			for r := range world {
				c := cfg
				c.SliceLo, c.SliceHi = r*6/world, (r+1)*6/world
				st := LoaderState{}
				if from > 0 {
					st = whole[from-1].State
				}
				_, parts[r] = collectKeys(t, c, st, batches-from)
			}
			for i := from; i < batches; i++ {
				var keys []string
				var lat []float32
				var drop []bool
				for r := range world {
					b := parts[r][i-from]
					if !reflect.DeepEqual(b.State, whole[i].State) {
						t.Fatalf("world %d rank %d batch %d: state %+v, one process %+v", world, r, i, b.State, whole[i].State)
					}
					keys, lat, drop = append(keys, b.Keys...), append(lat, b.Latents...), append(drop, b.Dropped...)
				}
				w := whole[i]
				if !slices.Equal(keys, w.Keys) || !slices.Equal(lat, w.Latents) || !slices.Equal(drop, w.Dropped) {
					t.Fatalf("world %d (from batch %d) batch %d: the ranks' slices %v do not make the global batch %v", world, from, i, keys, w.Keys)
				}
			}
		}
	}
	c := cfg
	c.SliceLo, c.SliceHi = 4, 7
	if _, err := NewLoader(context.Background(), c, tinyTok(t), LoaderState{}); err == nil || !strings.Contains(err.Error(), "not inside the global batch") {
		t.Errorf("slice past the batch: %v", err)
	}
}

func TestLoaderCFGDrop(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 2, rows: 50, size: 8, nanRow: -1})
	cfg := loaderCfg(data)
	cfg.Batch = 10
	_, bs := collectKeys(t, cfg, LoaderState{}, 100) // 1000 samples
	drops := 0
	for _, b := range bs {
		for i, d := range b.Dropped {
			if d {
				drops++
				if slices.Contains(b.Mask[i*12:(i+1)*12], true) || b.WA[i] != 0 || slices.Contains(b.Tokens[i*12:(i+1)*12], 1) {
					t.Fatal("dropped sample keeps text")
				}
			}
		}
	}
	if drops < 70 || drops > 130 {
		t.Errorf("%d of 1000 dropped, want about 100", drops)
	}
}

func TestLoaderErrors(t *testing.T) {
	data := writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 8, noLatent: true, nanRow: -1})
	l, err := NewLoader(context.Background(), loaderCfg(data), tinyTok(t), LoaderState{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Next(context.Background())
	l.Close()
	if err == nil || !strings.Contains(err.Error(), "has no latents") || !strings.Contains(err.Error(), "vae") {
		t.Fatalf("missing latents: %v", err)
	}
	// corrupt shard
	dir := strings.TrimPrefix(writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 8, nanRow: -1}), "file://")
	if err := os.WriteFile(filepath.Join(dir, "00000.parquet"), []byte("PAR1 garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = NewLoader(context.Background(), loaderCfg("file://"+dir), tinyTok(t), LoaderState{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Next(context.Background())
	l.Close()
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "00000.parquet") {
		t.Fatalf("corrupt shard: %v", err)
	}
	// wrong latent size
	cfg := loaderCfg(writeTestShards(t, shardOpts{shards: 1, rows: 4, size: 4, nanRow: -1}))
	l, _ = NewLoader(context.Background(), cfg, tinyTok(t), LoaderState{})
	_, err = l.Next(context.Background())
	l.Close()
	if err == nil || !strings.Contains(err.Error(), "latent shape") {
		t.Fatalf("latent size: %v", err)
	}
}

// With data streams, ranks that each read only their streams' shards
// deliver the batches one rank reading every stream does, resume from the
// merged position, and each stream delivers each of its rows once an epoch.
func TestLoaderStreams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards int
	}{
		{"shards split among streams", 6},
		{"rows split among streams (fewer shards than streams)", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := writeTestShards(t, shardOpts{shards: tc.shards, rows: 8, size: 8, nanRow: -1})
			cfg := loaderCfg(data)
			cfg.Batch, cfg.Streams = 8, 4
			const batches = 10
			_, whole := collectKeys(t, cfg, LoaderState{}, batches)

			// Every stream gives 2 samples a batch, each of its rows once an
			// epoch (the first 2 batches stay inside every stream's first
			// epoch: each has 4 rows or more).
			seen := map[string]int{}
			for _, b := range whole[:2] {
				for _, k := range b.Keys {
					seen[k]++
				}
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("%s delivered %d times in the first 2 batches", k, n)
				}
			}
			for _, world := range []int{2, 4} {
				for _, from := range []int{0, 4} {
					parts := make([][]*TrainBatch, world)
					for r := range world {
						c := cfg
						c.StreamLo, c.StreamHi = r*4/world, (r+1)*4/world
						st := LoaderState{}
						if from > 0 {
							st = whole[from-1].State
						}
						_, parts[r] = collectKeys(t, c, st, batches-from)
						if tc.shards >= 4 {
							for _, b := range parts[r] {
								for _, k := range b.Keys {
									var s, row int
									fmt.Sscanf(k, "s%d-r%d", &s, &row)
									if sid := s % 4; sid < c.StreamLo || sid >= c.StreamHi {
										t.Fatalf("world %d rank %d (streams %d-%d) got %s, a row of stream %d", world, r, c.StreamLo, c.StreamHi-1, k, sid)
									}
								}
							}
						}
					}
					for i := from; i < batches; i++ {
						var keys []string
						var drop []bool
						merged := make([]StreamState, 4)
						for r := range world {
							b := parts[r][i-from]
							keys, drop = append(keys, b.Keys...), append(drop, b.Dropped...)
							for s := r * 4 / world; s < (r+1)*4/world; s++ {
								merged[s] = b.State.Streams[s]
							}
						}
						if !slices.Equal(keys, whole[i].Keys) || !slices.Equal(drop, whole[i].Dropped) {
							t.Fatalf("world %d from %d batch %d: %v, one rank %v", world, from, i, keys, whole[i].Keys)
						}
						if !slices.Equal(merged, whole[i].State.Streams) {
							t.Fatalf("world %d batch %d: merged positions %v, one rank %v", world, i, merged, whole[i].State.Streams)
						}
					}
				}
			}
		})
	}
	data := writeTestShards(t, shardOpts{shards: 2, rows: 8, size: 8, nanRow: -1})
	for _, tc := range []struct {
		name string
		mod  func(*LoaderConfig, *LoaderState)
		want string
	}{
		{"batch not a multiple", func(c *LoaderConfig, _ *LoaderState) { c.Batch, c.Streams = 6, 4 }, "multiple of data_streams"},
		{"streams outside", func(c *LoaderConfig, _ *LoaderState) { c.Streams, c.StreamLo, c.StreamHi = 4, 2, 5 }, "not among"},
		{"position of other streams", func(c *LoaderConfig, s *LoaderState) { c.Streams, s.Streams = 4, make([]StreamState, 2) }, "data_streams it was trained with"},
		{"streams position, one stream", func(c *LoaderConfig, s *LoaderState) { s.Streams = make([]StreamState, 2) }, "data_streams it was trained with"},
	} {
		c, st := loaderCfg(data), LoaderState{}
		c.Batch = 8
		tc.mod(&c, &st)
		if _, err := NewLoader(context.Background(), c, tinyTok(t), st); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
