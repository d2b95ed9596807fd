package unet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kediff/kediff/internal/atomicfile"
	"github.com/kediff/kediff/kernels"
	"github.com/kediff/kediff/safetensors"
)

// Checkpoint file names inside a checkpoint directory (DESIGN.md 3.4).
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// StateDict returns the parameters as F32 tensors named and shaped as the
// PyTorch Text2ImUNet's state_dict().
func (m *Model) StateDict() map[string]safetensors.Tensor {
	out := make(map[string]safetensors.Tensor, len(m.Params.Layout.Views()))
	host := make([]float32, len(m.Params.Data))
	m.be.CopyToHost(host, m.Params.Data)
	for _, v := range m.Params.Layout.Views() {
		out[v.Name] = safetensors.F32(v.Shape, host[v.Offset:v.Offset+v.Size])
	}
	return out
}

// LoadStateDict copies tensors into the parameters. Like PyTorch's
// load_state_dict(strict=True) it fails on a missing or unexpected name or a
// shape mismatch, listing every problem; F16, BF16 and F64 are converted.
func (m *Model) LoadStateDict(tensors map[string]safetensors.Tensor) error {
	shapes := make(map[string][]int, len(tensors))
	for name, t := range tensors {
		shapes[name] = t.Shape
	}
	if err := m.checkStateDict(shapes); err != nil {
		return err
	}
	var buf []float32
	for _, v := range m.Params.Layout.Views() {
		if err := m.loadTensor(v, tensors[v.Name], &buf); err != nil {
			return err
		}
	}
	return nil
}

// LoadWeights streams the safetensors file at path into the parameters,
// checked as LoadStateDict checks a state dict, with memory for one tensor
// besides the parameters, and returns the file's SHA-256 (hex).
func (m *Model) LoadWeights(path string) (string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	shapes := make(map[string][]int, len(f.Tensors))
	for name, e := range f.Tensors {
		shapes[name] = e.Shape
	}
	if err := m.checkStateDict(shapes); err != nil {
		return "", err
	}
	var buf []float32
	err = f.Each(func(name string, e safetensors.Entry, data []byte) error {
		v, _ := m.Params.Layout.Lookup(name)
		return m.loadTensor(v, safetensors.Tensor{DType: e.DType, Shape: e.Shape, Data: data}, &buf)
	})
	if err != nil {
		return "", err
	}
	return f.SHA256(), nil
}

// loadTensor converts t into parameter v through the host buffer *buf.
func (m *Model) loadTensor(v kernels.View, t safetensors.Tensor, buf *[]float32) error {
	if cap(*buf) < v.Size {
		*buf = make([]float32, v.Size)
	}
	host := (*buf)[:v.Size]
	if err := t.DecodeFloat32(host); err != nil {
		return fmt.Errorf("unet: checkpoint tensor %s: %w", v.Name, err)
	}
	m.be.CopyToDevice(m.p(v), host)
	return nil
}

// CheckWeights compares the tensor names and shapes of a state dict (as a
// safetensors header lists them) with the model cfg describes, without
// allocating it, and reports every problem as LoadStateDict would.
func CheckWeights(cfg Config, shapes map[string][]int) error {
	m, err := build(cfg, nil)
	if err != nil {
		return err
	}
	return m.checkStateDict(shapes)
}

// checkStateDict compares a state dict's names and shapes with the model's.
func (m *Model) checkStateDict(shapes map[string][]int) error {
	var missing, unexpected, wrong []string
	for _, v := range m.Params.Layout.Views() {
		shape, ok := shapes[v.Name]
		if !ok {
			missing = append(missing, v.Name)
			continue
		}
		if !slices.Equal(shape, v.Shape) {
			wrong = append(wrong, fmt.Sprintf("%s: checkpoint %v, model %v", v.Name, shape, v.Shape))
		}
	}
	for name := range shapes {
		if _, ok := m.Params.Layout.Lookup(name); !ok {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing)+len(unexpected)+len(wrong) == 0 {
		return nil
	}
	sort.Strings(unexpected)
	var b strings.Builder
	b.WriteString("unet: checkpoint does not match the model config")
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		const show = 8
		fmt.Fprintf(&b, "; %d %s: %s", len(names), what, strings.Join(names[:min(show, len(names))], ", "))
		if len(names) > show {
			b.WriteString(", ...")
		}
	}
	list("missing", missing)
	list("unexpected", unexpected)
	list("with the wrong shape", wrong)
	return fmt.Errorf("%s", b.String())
}

// Save writes dir/config.json and dir/model.safetensors (float32, state_dict
// names), creating dir. The weights load into glide-text2im's Text2ImUNet
// built with the same config with load_state_dict(strict=True).
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("unet: save: %w", err)
	}
	if err := WriteConfig(filepath.Join(dir, ConfigFile), m.Config); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt", "model": "glide-text2im Text2ImUNet (kediff)"}
	return safetensors.WriteFile(filepath.Join(dir, WeightsFile), m.StateDict(), meta)
}

// Load builds the model described by dir/config.json on backend be (nil:
// CPU) and loads dir/model.safetensors into it.
func Load(dir string, be kernels.Backend) (*Model, error) {
	// A save killed between its renames is finished first (train.Save
	// writes checkpoints as an atomicfile.Batch).
	if err := atomicfile.Recover(dir); err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	m, err := NewModel(cfg, be)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	if _, err := m.LoadWeights(path); err != nil {
		return nil, fmt.Errorf("%w (%s against %s)", err, path, filepath.Join(dir, ConfigFile))
	}
	return m, nil
}
