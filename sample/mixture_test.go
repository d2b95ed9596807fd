package sample

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/allocs"
	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
)

// TestBadCheckpoints: every way a set of checkpoints can fail to be one
// mixture gives an error naming the folder and what to do.
func TestBadCheckpoints(t *testing.T) {
	cfg := unet.TinyConfig()
	tok := testckpt.Vocab(t)
	root := t.TempDir()
	write := func(name string, m *unet.Model, tok *tokenizer.Tokenizer, expert, experts int) string {
		return testckpt.Write(t, filepath.Join(root, name), m, tok, expert, experts)
	}
	base := testckpt.Random(t, cfg, 1, 0.01)
	expert := func(seed uint64) *unet.Model {
		m := testckpt.Random(t, cfg, seed, 0.01)
		testckpt.ShareTextEncoder(base, m)
		return m
	}
	baseDir := write("base", base, tok, -1, 10)
	e3 := write("expert-3", expert(3), tok, 3, 10)
	e3b := write("expert-3b", expert(4), tok, 3, 10)
	e7 := write("expert-7", expert(7), tok, 7, 10)
	e3of20 := write("expert-6-of-20", expert(5), tok, 6, 20) // [300, 350): inside expert 3 of 10
	other := testckpt.Random(t, cfg, 9, 0.01)                // its own text encoder
	eOther := write("expert-5-other-text", other, tok, 5, 10)
	wide := cfg
	wide.ModelChannels = 32
	eWide := write("expert-4-wide", testckpt.Random(t, wide, 1, 0.01), tok, 4, 10)
	tok2, _ := tokenizer.New(append(tokenizer.SpecialTokens(), "a", "red", "green"))
	eVocab := write("expert-2-vocab", expert(2), tok2, 2, 10)
	eSched := write("expert-1-cosine", expert(1), tok, 1, 10)
	raw, _ := os.ReadFile(filepath.Join(eSched, TrainConfigFile))
	os.WriteFile(filepath.Join(eSched, TrainConfigFile), []byte(strings.Replace(string(raw), "scaled_linear", "cosine", 1)), 0o644)
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	file := filepath.Join(root, "file.txt")
	os.WriteFile(file, []byte("x"), 0o644)
	noWeights := write("no-weights", expert(8), tok, 8, 10)
	os.Remove(filepath.Join(noWeights, unet.WeightsFile))
	badState := write("bad-state", expert(8), tok, 8, 10)
	os.WriteFile(filepath.Join(badState, StateFile), []byte(`{"expert": 12, "experts": 10}`), 0o644)
	// JSON sidecars from elsewhere that would cost gigabytes to read.
	hugeConfig := write("huge-config", expert(8), tok, 8, 10)
	os.Remove(filepath.Join(hugeConfig, unet.ConfigFile))
	allocs.SparseFile(t, filepath.Join(hugeConfig, unet.ConfigFile), 1<<40)
	hugeState := write("huge-state", expert(8), tok, 8, 10)
	os.Remove(filepath.Join(hugeState, StateFile))
	allocs.SparseFile(t, filepath.Join(hugeState, StateFile), 1<<40)

	open := func(t *testing.T, dirs ...string) ([]*Checkpoint, error) {
		var out []*Checkpoint
		for _, d := range dirs {
			c, err := OpenCheckpoint(d)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}
	for _, tc := range []struct {
		name    string
		base    string
		experts []string
		want    []string
	}{
		{"missing_folder", "", []string{filepath.Join(root, "nope")}, []string{"nope", "does not exist"}},
		{"file", "", []string{file}, []string{"file.txt", "not a checkpoint folder"}},
		{"not_a_checkpoint", "", []string{empty}, []string{"empty", "not a kediff checkpoint", "config.json"}},
		{"no_weights", "", []string{noWeights}, []string{"no-weights", "model.safetensors"}},
		{"bad_state", "", []string{badState}, []string{"bad-state", "expert 12 of 10"}},
		{"huge_config", "", []string{hugeConfig}, []string{"huge-config", "config.json has more than 1048576 bytes"}},
		{"huge_state", "", []string{hugeState}, []string{"huge-state", "state.json has more than 1048576 bytes"}},
		{"configs_differ", baseDir, []string{eWide}, []string{"expert-4-wide", "different model configs", "model_channels 16 vs 32"}},
		{"vocabularies_differ", baseDir, []string{eVocab}, []string{"expert-2-vocab", "different vocabularies"}},
		{"schedules_differ", baseDir, []string{eSched}, []string{"expert-1-cosine", "noise schedules"}},
		{"text_encoders_differ", baseDir, []string{e3, eOther}, []string{"text encoder of", "expert-5-other-text", "token_embedding.weight", "frozen"}},
		{"same_block", baseDir, []string{e3, e3b}, []string{"expert-3", "expert-3b", "the same block [300, 400)"}},
		{"overlap", baseDir, []string{e3, e3of20}, []string{"expert-6-of-20", "overlapping timesteps [300, 350)"}},
		{"gaps_without_base", "", []string{e3, e7}, []string{"no expert holds t in [0, 300) (expert 0, 1, 2 of 10)", "[400, 700) (expert 4, 5, 6 of 10)", "[800, 1000) (expert 8, 9 of 10)", "--base"}},
		{"expert_as_base", e3, nil, []string{"expert-3", "is expert 3 of 10", "not a base model"}},
		{"base_as_expert", "", []string{baseDir}, []string{"base", "is a base model"}},
		{"nothing", "", nil, []string{"no checkpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			var b *Checkpoint
			if tc.base != "" {
				var bs []*Checkpoint
				if bs, err = open(t, tc.base); err == nil {
					b = bs[0]
				}
			}
			var es []*Checkpoint
			if err == nil {
				es, err = open(t, tc.experts...)
			}
			if err == nil {
				_, err = NewMixture(b, es)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	// a good mixture: experts 3 and 7 with the base for the rest
	cks, err := open(t, e3, e7)
	if err != nil {
		t.Fatal(err)
	}
	mix, err := NewMixture(openCheckpoint(t, baseDir), cks)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mix.Describe(), "\n"); !strings.Contains(got, "t in [300, 400): expert 3 of 10") || !strings.Contains(got, "t in [0, 300): base") {
		t.Errorf("routing described as\n%s", got)
	}

	// bad options
	for name, tc := range map[string]struct {
		opt     func(*Options)
		prompts []string
		want    string
	}{
		"no_steps":       {func(o *Options) { o.Steps = -1 }, []string{"a"}, "steps"},
		"too_many_steps": {func(o *Options) { o.Steps = 1001 }, []string{"a"}, "1 to 1000"},
		"negative_scale": {func(o *Options) { o.Guidance = -1 }, []string{"a"}, "guidance scale -1"},
		"nan_scale":      {func(o *Options) { o.Guidance = math.NaN() }, []string{"a"}, "guidance scale"},
		"no_prompts":     {func(o *Options) {}, nil, "no prompts"},
		"bad_scheduler":  {func(o *Options) { o.Scheduler = "euler" }, []string{"a"}, "ddim or ddpm"},
		"bad_spacing":    {func(o *Options) { o.Timesteps.TimestepSpacing = "karras" }, []string{"a"}, "timestep_spacing"},
		"short_noise":    {func(o *Options) { o.InitNoise = make([]float32, 10) }, []string{"a"}, "initial noise has 10 values"},
		"bad_batch":      {func(o *Options) { o.Batch = -2 }, []string{"a"}, "batch -2"},
	} {
		opt := DefaultOptions()
		tc.opt(&opt)
		if _, err := Run(context.Background(), mix, tc.prompts, opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}

// TestNonFiniteStops: an expert that predicts NaN stops the run at its first
// step, naming the step, the timestep and the expert.
func TestNonFiniteStops(t *testing.T) {
	cfg := unet.TinyConfig()
	tok := testckpt.Vocab(t)
	root := t.TempDir()
	good := testckpt.Constant(t, cfg, 0.1)
	bad := testckpt.Constant(t, cfg, 0.1)
	bad.Params.Get("out.2.bias")[2] = float32(math.NaN())
	e0 := openCheckpoint(t, testckpt.Write(t, filepath.Join(root, "expert-0"), bad, tok, 0, 2))
	e1 := openCheckpoint(t, testckpt.Write(t, filepath.Join(root, "expert-1"), good, tok, 1, 2))
	mix, err := NewMixture(nil, []*Checkpoint{e0, e1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), mix, []string{"a red circle"}, DefaultOptions())
	// 50 leading steps: 980 ... 500 on expert 1 (25 steps), 480 first on expert 0
	for _, w := range []string{"step 26 of 50", "t=480", "expert-0", "expert 0 of 2", "not finite", "nothing written"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %q", err, w)
		}
	}
}

// TestLongPromptWarns: a prompt longer than text_ctx is cut, with a warning
// saying how many tokens were dropped, and the image records it.
func TestLongPromptWarns(t *testing.T) {
	mix := twoExperts(t, unet.TinyConfig())
	var warnings []string
	opt := DefaultOptions()
	opt.Steps, opt.Warn = 2, func(s string) { warnings = append(warnings, s) }
	long := "a red circle left of a blue square left of a red circle" // 13 tokens, text_ctx 8
	res, err := Run(context.Background(), mix, []string{long, "a red circle"}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "13 tokens") || !strings.Contains(warnings[0], "last 5 are dropped") {
		t.Errorf("warnings %q", warnings)
	}
	if res.Images[0].Dropped != 5 || res.Images[1].Dropped != 0 {
		t.Errorf("dropped %d and %d tokens", res.Images[0].Dropped, res.Images[1].Dropped)
	}
	b, _ := json.Marshal(res.Images[0].Tokens)
	if !strings.HasPrefix(string(b), "[16,17,") { // "a" "red" ...: the first tokens are kept
		t.Errorf("tokens %s", b)
	}
}
