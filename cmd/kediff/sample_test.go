package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/unet"
)

// buildKediff builds the binary once per test binary run.
func buildKediff(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kediff")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// sampleCheckpoints writes a base and experts 0..3 of 4 (one text encoder)
// under a temp dir and returns it.
func sampleCheckpoints(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	cfg := unet.TinyConfig()
	tok := testckpt.Vocab(t)
	base := testckpt.Random(t, cfg, 1, 0.05)
	testckpt.Write(t, filepath.Join(root, "base"), base, tok, -1, 4)
	for k := range 3 { // no expert 3: the base takes [750, 1000)
		m := testckpt.Random(t, cfg, uint64(k+2), 0.05)
		testckpt.ShareTextEncoder(base, m)
		testckpt.Write(t, filepath.Join(root, fmt.Sprintf("expert-%d", k)), m, tok, k, 4)
	}
	return root
}

const fixtureDecoder = "../../vae/testdata/model"

func runKediff(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSampleCommand runs kediff sample as a user does: the same run with one
// and with two threads everywhere (Go, OpenBLAS, oneDNN) writes the same
// bytes, the saved x_T given back with --init-noise and another seed gives
// the same images, and ViLG-300's CSV column feeds prompts.
func TestSampleCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildKediff(t)
	root := sampleCheckpoints(t)
	common := []string{"sample", "--base", filepath.Join(root, "base"), "--experts", filepath.Join(root, "expert-{0..2}"),
		"--prompt", "a red circle", "--prompt", "蓝色的方块", "--prompt", "a blue square left of a red circle",
		"--vae-decoder", fixtureDecoder, "--steps", "12", "--batch", "2", "--seed", "3", "--save-latents", "--quiet"}
	outs := map[int]string{}
	for _, threads := range []int{1, 2} {
		out := filepath.Join(t.TempDir(), "samples")
		n := fmt.Sprint(threads)
		log, err := runKediff(bin, []string{"GOMAXPROCS=" + n, "OMP_NUM_THREADS=" + n, "OPENBLAS_NUM_THREADS=" + n}, append(common, "--output", out)...)
		if err != nil {
			t.Fatalf("%d threads: %v\n%s", threads, err, log)
		}
		if threads == 1 && (!strings.Contains(log, "t in [750, 1000): base") || !strings.Contains(log, "expert 2 of 4")) {
			t.Errorf("routing not described:\n%s", log)
		}
		outs[threads] = out
	}
	files, _ := filepath.Glob(filepath.Join(outs[1], "*"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"00000.png", "00001.png", "00002.png", "grid.png", "latents-00000.safetensors", "latents-00001.safetensors", "samples.jsonl"}
	if !slices.Equal(names, want) {
		t.Fatalf("output files %v, want %v", names, want)
	}
	for _, name := range names {
		a, _ := os.ReadFile(filepath.Join(outs[1], name))
		b, _ := os.ReadFile(filepath.Join(outs[2], name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between 1 and 2 threads", name)
		}
	}

	// x_T back in through --init-noise, with another seed: the same x_0
	var xT []float32
	var x0 [][]float32
	for _, f := range []string{"latents-00000.safetensors", "latents-00001.safetensors"} {
		ts, _, err := safetensors.ReadFile(filepath.Join(outs[1], f))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := ts["x_T"].Float32s()
		xT = append(xT, v...)
		w, _ := ts["x_0"].Float32s()
		x0 = append(x0, w)
	}
	noise := filepath.Join(t.TempDir(), "noise.safetensors")
	if err := safetensors.WriteFile(noise, map[string]safetensors.Tensor{"x_T": safetensors.F32([]int{3, 4, 8, 8}, xT)}, nil); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again")
	args := slices.Clone(common)
	args[slices.Index(args, "--seed")+1] = "99"
	if log, err := runKediff(bin, nil, append(args, "--output", again, "--init-noise", noise)...); err != nil {
		t.Fatalf("--init-noise: %v\n%s", err, log)
	}
	for i, f := range []string{"latents-00000.safetensors", "latents-00001.safetensors"} {
		ts, _, _ := safetensors.ReadFile(filepath.Join(again, f))
		w, _ := ts["x_0"].Float32s()
		if !slices.Equal(w, x0[i]) {
			t.Errorf("%s: x_0 from the saved x_T differs from the seeded run", f)
		}
	}

	// ViLG-300's Chinese column, the first two prompts
	vilg := filepath.Join("..", "..", "..", "shared", "data", "ViLG-300.csv")
	if _, err := os.Stat(vilg); err == nil {
		out := filepath.Join(t.TempDir(), "vilg")
		log, err := runKediff(bin, nil, "sample", "--base", filepath.Join(root, "base"), "--prompts", vilg, "--csv-column", "文本", "--limit", "2",
			"--vae-decoder", fixtureDecoder, "--steps", "3", "--output", out, "--quiet")
		if err != nil {
			t.Fatalf("ViLG-300: %v\n%s", err, log)
		}
		raw, _ := os.ReadFile(filepath.Join(out, "samples.jsonl"))
		if n := bytes.Count(raw, []byte("\n")); n != 2 {
			t.Errorf("ViLG-300 --limit 2: %d records", n)
		}
	}
}

// TestSampleBadInput: each bad flag or file fails with a message naming it,
// and nothing is written.
func TestSampleBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildKediff(t)
	root := sampleCheckpoints(t)
	base := filepath.Join(root, "base")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no_decoder", []string{"--base", base, "--prompt", "a"}, "--vae-decoder is required"},
		{"no_prompts", []string{"--base", base}, "no prompts"},
		{"empty_prompt_file", []string{"--base", base, "--prompts", os.DevNull}, "no prompts"},
		{"no_checkpoint", []string{"--prompt", "a"}, "no checkpoint"},
		{"not_a_checkpoint", []string{"--base", root, "--prompt", "a"}, "is not a kediff checkpoint"},
		{"missing_expert", []string{"--experts", filepath.Join(root, "expert-7"), "--prompt", "a"}, "expert-7 does not exist"},
		{"gap", []string{"--experts", filepath.Join(root, "expert-{0..2}"), "--prompt", "a"}, "no expert holds t in [750, 1000) (expert 3 of 4)"},
		{"negative_guidance", []string{"--base", base, "--prompt", "a", "--guidance", "-1"}, "guidance scale -1"},
		{"too_many_steps", []string{"--base", base, "--prompt", "a", "--steps", "1001"}, "1001 steps: want 1 to 1000"},
		{"bad_decoder", []string{"--base", base, "--prompt", "a", "--vae-decoder", root}, "--vae-decoder"},
		{"bad_init_noise", []string{"--base", base, "--prompt", "a", "--init-noise", filepath.Join(base, "model.safetensors")}, "has no tensor x_T"},
		{"csv_column_without_file", []string{"--base", base, "--prompt", "a", "--csv-column", "Prompt"}, "--csv-column needs --prompts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"sample", "--output", out, "--quiet"}, tc.args...)
			if !slices.Contains(tc.args, "--vae-decoder") && tc.name != "no_decoder" {
				args = append(args, "--vae-decoder", fixtureDecoder)
			}
			log, err := runKediff(bin, nil, args...)
			if err == nil {
				t.Fatalf("succeeded:\n%s", log)
			}
			if !strings.Contains(log, tc.want) {
				t.Errorf("output does not mention %q:\n%s", tc.want, log)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was created", out)
			}
		})
	}
}
