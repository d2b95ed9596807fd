package sample

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/kediff/kediff/diffusion"
	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/internal/limitedfile"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/unet"
)

// Files of a checkpoint folder that sampling reads (kediff train writes them).
const (
	VocabFile       = "vocab.txt"
	TrainConfigFile = "train_config.json" // its schedule fields give the noise schedule
	StateFile       = "state.json"        // its expert and experts fields give the block
)

// Checkpoint is one model the sampler can route timesteps to: a checkpoint
// folder (read when its first step comes and dropped after its last) or a
// model already in memory (a trainer's).
type Checkpoint struct {
	Dir      string // "" for a model in memory
	Name     string // how messages name it
	Config   unet.Config
	Schedule diffusion.ScheduleConfig
	// Expert is the expert index, -1 for a base model (every timestep);
	// Experts is n of the mixture it was trained for.
	Expert, Experts int
	Vocab           *tokenizer.Tokenizer
	// SHA256 of model.safetensors, known once the weights were read.
	SHA256 string

	text  map[string]string // text-encoder tensor -> hash of dtype, shape, bytes
	model *unet.Model       // a model in memory
}

// Block is the timestep range [lo, hi) the checkpoint was trained on.
func (c *Checkpoint) Block() (lo, hi int) {
	if c.Expert < 0 {
		return 0, c.Schedule.Timesteps
	}
	return diffusion.Block(c.Expert, c.Experts, c.Schedule.Timesteps)
}

// Role says what the checkpoint is: "base" or "expert N of n (t in [lo, hi))".
func (c *Checkpoint) Role() string {
	if c.Expert < 0 {
		return "base"
	}
	lo, hi := c.Block()
	return fmt.Sprintf("expert %d of %d (t in [%d, %d))", c.Expert, c.Experts, lo, hi)
}

// trainState is the part of state.json and train_config.json a sampler
// reads.
type trainState struct {
	Expert  *int `json:"expert"`
	Experts int  `json:"experts"`
}

// OpenCheckpoint reads what routing and checking need from a checkpoint
// folder: config.json, vocab.txt, the schedule of train_config.json (absent:
// DESIGN.md's default), the expert index of state.json (absent: a base
// model) and the header and text-encoder tensors of model.safetensors. The
// U-Net weights are read later, by the sampler, when their steps come.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("sample: checkpoint %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("sample: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("sample: %s is a file, not a checkpoint folder", dir)
	}
	// A trainer killed while it renamed a checkpoint's files into place
	// leaves a journal: finish that save before reading any of them.
	if err := atomicfile.Recover(dir); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, unet.ConfigFile)); err != nil {
		return nil, fmt.Errorf("sample: %s is not a kediff checkpoint: it has no %s (kediff train writes %s, %s, %s, %s and %s)",
			dir, unet.ConfigFile, unet.ConfigFile, unet.WeightsFile, VocabFile, TrainConfigFile, StateFile)
	}
	c := &Checkpoint{Dir: dir, Name: dir, Expert: -1, Schedule: diffusion.DefaultScheduleConfig()}
	if c.Config, err = unet.ReadConfig(filepath.Join(dir, unet.ConfigFile)); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	weights := filepath.Join(dir, unet.WeightsFile)
	h, err := safetensors.ReadHeader(weights)
	if err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	shapes := map[string][]int{}
	for name, e := range h.Tensors {
		shapes[name] = e.Shape
	}
	if err := unet.CheckWeights(c.Config, shapes); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w (%s against %s)", dir, err, weights, unet.ConfigFile)
	}
	if c.Vocab, err = tokenizer.ReadVocab(filepath.Join(dir, VocabFile)); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	if c.Vocab.Size() > c.Config.NVocab {
		return nil, fmt.Errorf("sample: checkpoint %s: %s has %d tokens but the model's n_vocab is %d", dir, VocabFile, c.Vocab.Size(), c.Config.NVocab)
	}
	if raw, err := readJSON(filepath.Join(dir, TrainConfigFile)); err == nil {
		if err := json.Unmarshal(raw, &c.Schedule); err != nil {
			return nil, fmt.Errorf("sample: checkpoint %s: %s: %w", dir, TrainConfigFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	if _, err := c.Schedule.New(); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %s: %w", dir, TrainConfigFile, err)
	}
	if raw, err := readJSON(filepath.Join(dir, StateFile)); err == nil {
		var s trainState
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("sample: checkpoint %s: %s: %w", dir, StateFile, err)
		}
		if s.Expert != nil && *s.Expert >= 0 {
			if s.Experts < 1 || *s.Expert >= s.Experts || s.Experts > c.Schedule.Timesteps {
				return nil, fmt.Errorf("sample: checkpoint %s: %s names expert %d of %d, which is not an expert of %d timesteps", dir, StateFile, *s.Expert, s.Experts, c.Schedule.Timesteps)
			}
			c.Expert, c.Experts = *s.Expert, s.Experts
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	if c.text, err = textHashes(weights, h); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", dir, err)
	}
	return c, nil
}

// InMemory makes a Checkpoint of a model in memory (a trainer's), with its
// vocabulary and schedule; expert is -1 for a base model.
func InMemory(name string, m *unet.Model, tok *tokenizer.Tokenizer, schedule diffusion.ScheduleConfig, expert, experts int) *Checkpoint {
	c := &Checkpoint{Name: name, Config: m.Config, Schedule: schedule, Expert: expert, Experts: experts, Vocab: tok, model: m, text: map[string]string{}}
	host := make([]float32, len(m.Params.Data))
	m.Backend().CopyToHost(host, m.Params.Data)
	for _, v := range m.Params.Layout.Views() {
		if unet.IsTextEncoder(v.Name) {
			c.text[v.Name] = tensorHash(safetensors.F32(v.Shape, host[v.Offset:v.Offset+v.Size]))
		}
	}
	return c
}

// textHashes hashes the text-encoder tensors of a weights file, read one by
// one with ReadAt (the U-Net's tensors are not read).
func textHashes(path string, h safetensors.Header) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	for name, e := range h.Tensors {
		if !unet.IsTextEncoder(name) {
			continue
		}
		data := make([]byte, e.End-e.Begin)
		if _, err := f.ReadAt(data, h.DataStart+int64(e.Begin)); err != nil {
			return nil, fmt.Errorf("reading tensor %s of %s: %w", name, path, err)
		}
		t := safetensors.Tensor{DType: e.DType, Shape: e.Shape, Data: data}
		if e.DType != "F32" { // compare values, whatever the stored precision
			v, err := t.Float32s()
			if err != nil {
				return nil, fmt.Errorf("tensor %s of %s: %w", name, path, err)
			}
			t = safetensors.F32(e.Shape, v)
		}
		out[name] = tensorHash(t)
	}
	return out, nil
}

func tensorHash(t safetensors.Tensor) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %v ", t.DType, t.Shape)
	h.Write(t.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// load returns the model: the one in memory, or the folder's weights read
// into a new model in inference mode on be (SHA256 is set then).
func (c *Checkpoint) load(be kernels.Backend) (*unet.Model, error) {
	if c.model != nil {
		return c.model, nil
	}
	m, err := unet.NewInferenceModel(c.Config, be)
	if err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", c.Name, err)
	}
	path := filepath.Join(c.Dir, unet.WeightsFile)
	if c.SHA256, err = m.LoadWeights(path); err != nil {
		return nil, fmt.Errorf("sample: checkpoint %s: %w", c.Name, err)
	}
	for _, v := range m.Params.Layout.Views() {
		if unet.IsTextEncoder(v.Name) {
			host := make([]float32, v.Size)
			m.Backend().CopyToHost(host, m.Params.Get(v.Name))
			if tensorHash(safetensors.F32(v.Shape, host)) != c.text[v.Name] {
				return nil, fmt.Errorf("sample: checkpoint %s: the text encoder tensor %s changed since the checkpoint was opened", c.Name, v.Name)
			}
		}
	}
	return m, nil
}

// release frees the model read from the folder (its device memory) and
// collects it once nothing refers to it any more, so that the next
// checkpoint can take its memory rather than grow the heap to two models.
func (c *Checkpoint) release(m *unet.Model) {
	if c.model == nil {
		if m != nil {
			m.Close()
		}
		runtime.GC()
	}
}

// FindCheckpoints turns --experts arguments into checkpoint folders: each
// path is a checkpoint folder (it holds config.json) or a folder whose
// subfolders are checkpoints (e.g. out/train, holding expert-0, ...). From
// such a parent only expert checkpoints are taken; a base found there is
// returned apart, for the caller to use or ignore.
func FindCheckpoints(paths []string) (experts []string, bases []string, err error) {
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("sample: expert checkpoint %s does not exist", p)
		}
		if !st.IsDir() {
			return nil, nil, fmt.Errorf("sample: %s is a file, not a checkpoint folder", p)
		}
		if _, err := os.Stat(filepath.Join(p, unet.ConfigFile)); err == nil {
			experts = append(experts, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, nil, fmt.Errorf("sample: %w", err)
		}
		found := 0
		for _, e := range ents {
			sub := filepath.Join(p, e.Name())
			if !e.IsDir() {
				continue
			}
			if _, err := os.Stat(filepath.Join(sub, unet.ConfigFile)); err != nil {
				continue
			}
			found++
			if isExpert(sub) {
				experts = append(experts, sub)
			} else {
				bases = append(bases, sub)
			}
		}
		if found == 0 {
			return nil, nil, fmt.Errorf("sample: %s is not a checkpoint (no %s) and holds no checkpoint folders", p, unet.ConfigFile)
		}
	}
	sort.Strings(experts)
	return experts, bases, nil
}

// readJSON reads a checkpoint's JSON sidecar within unet.MaxJSONBytes.
func readJSON(path string) ([]byte, error) {
	return limitedfile.Read(path, unet.MaxJSONBytes, "a checkpoint's JSON files are a few KB")
}

func isExpert(dir string) bool {
	atomicfile.Recover(dir) // an error is OpenCheckpoint's to report
	raw, err := readJSON(filepath.Join(dir, StateFile))
	if err != nil {
		return false
	}
	var s trainState
	return json.Unmarshal(raw, &s) == nil && s.Expert != nil && *s.Expert >= 0
}

// configDiff names the JSON fields in which two model configs differ.
func configDiff(a, b unet.Config) string {
	ma, mb := map[string]any{}, map[string]any{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	var diff []string
	for k, va := range ma {
		if vb := mb[k]; fmt.Sprint(va) != fmt.Sprint(vb) {
			diff = append(diff, fmt.Sprintf("%s %v vs %v", k, va, vb))
		}
	}
	sort.Strings(diff)
	return strings.Join(diff, ", ")
}

// vocabDiff describes how two vocabularies differ ("" when they do not).
func vocabDiff(a, b *tokenizer.Tokenizer) string {
	var wa, wb bytes.Buffer
	a.WriteVocab(&wa)
	b.WriteVocab(&wb)
	if bytes.Equal(wa.Bytes(), wb.Bytes()) {
		return ""
	}
	for id := 0; id < min(a.Size(), b.Size()); id++ {
		if ta, tb := a.Token(int32(id)), b.Token(int32(id)); ta != tb {
			return fmt.Sprintf("%d and %d tokens, first difference at id %d: %q vs %q", a.Size(), b.Size(), id, ta, tb)
		}
	}
	return fmt.Sprintf("%d and %d tokens", a.Size(), b.Size())
}
