package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // stored images are JPEG or PNG
	_ "image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kediff/kediff/caption"
	"github.com/kediff/kediff/detect"
	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
	"github.com/kediff/kediff/vae"
)

// Stage names of the model-driven stages, as they appear in rejects.
const (
	stageCaptioner = "captioner"
	stageDetect    = "detect"
	stageVAE       = "vae"
)

// Reject reasons of the model stages.
const (
	reasonModelNaN   = "model_nan"   // the model's outputs for the sample are not finite
	reasonModelInput = "model_input" // the model cannot take the sample's image
)

// batchWait is how long a model stage waits to fill a partial batch.
const batchWait = 50 * time.Millisecond

// batchWorkers run a model stage's batches, so that the gathering of one
// batch overlaps the model run of the previous one.
const batchWorkers = 2

// models are the loaded model-driven stages; nil fields are disabled.
type models struct {
	captioner *caption.Captioner
	detector  *detect.Detector
	encoder   *vae.Encoder
	selection detect.Selection
	search    caption.Search
}

func (m *models) any() bool { return m.captioner != nil || m.detector != nil || m.encoder != nil }

func (m *models) close() {
	if m.captioner != nil {
		m.captioner.Close()
	}
	if m.detector != nil {
		m.detector.Close()
	}
	if m.encoder != nil {
		m.encoder.Close()
	}
}

func sessionOptions(c ONNXConfig, threads int) onnx.SessionOptions {
	if threads == 0 {
		threads = c.IntraOpThreads
	}
	return onnx.SessionOptions{Library: c.Library, IntraOpThreads: threads, UseCUDA: c.CUDA}
}

// detectConfig is the detect.Config of the detect section.
func detectConfig(cfg *Config) (detect.Config, error) {
	d := cfg.Detect
	dc := detect.DefaultConfig()
	f, err := detect.ParseFormat(d.Format)
	if err != nil {
		return dc, err
	}
	dc.Format = f
	dc.Preprocess = detect.Preprocess{Width: d.InputSize, Height: d.InputSize, BGR: d.BGR, Scale: d.Scale,
		Mean: d.Mean, Std: d.Std, Align: detect.Align(d.Align), Pad: d.Pad}
	dc.Strides = append([]int(nil), d.Strides...)
	dc.Conf, dc.IoU, dc.MaxDet, dc.Batch = d.Conf, d.IoU, d.MaxDet, d.Batch
	if d.Labels != "" {
		path := d.Labels
		if path != "coco" && path != "shapes" {
			path = cfg.resolve(path)
		}
		if dc.Labels, dc.LabelsZh, err = detect.ReadLabels(path); err != nil {
			return dc, fmt.Errorf("detect.labels: %w", err)
		}
	}
	return dc, nil
}

// openModels loads every enabled model and checks its layout, so that a
// missing file or a mismatched model stops the run before any sample. It
// also records the models' digests and settings in extra.
func openModels(cfg *Config, extra map[string]string) (*models, error) {
	m := &models{}
	ok := false
	defer func() {
		if !ok {
			m.close()
		}
	}()
	if k := cfg.Captioner; k.Enabled {
		dir := cfg.resolve(k.Model)
		c, err := caption.Open(dir, caption.Options{Session: sessionOptions(cfg.ONNX, k.Threads), BatchSize: k.Batch})
		if err != nil {
			return nil, fmt.Errorf("config captioner: %w", err)
		}
		m.captioner = c
		m.search = caption.Search{NumBeams: k.NumBeams, MaxLength: k.MaxLength}
		for _, f := range []string{caption.EncoderFile, caption.DecoderFile, caption.TokenizerFile,
			caption.PreprocessorFile, caption.ConfigFile, caption.GenerationFile} {
			sum, err := onnx.FileSHA256(filepath.Join(dir, f))
			if errors.Is(err, os.ErrNotExist) && f == caption.GenerationFile {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("config captioner: %w", err)
			}
			extra["captioner.sha256."+f] = sum
		}
		extra["captioner.config"] = jsonString(k)
	}
	if d := cfg.Detect; d.Enabled {
		dc, err := detectConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("config detect: %w", err)
		}
		path := cfg.resolve(d.Model)
		det, err := detect.Open(path, dc, sessionOptions(cfg.ONNX, d.Threads))
		if err != nil {
			return nil, fmt.Errorf("config detect: %w", err)
		}
		m.detector = det
		m.selection = detect.Selection{MinScore: d.MinScore, MinArea: d.MinArea, MaxObjects: d.MaxObjects,
			Fraction: d.Fraction, Seed: d.Seed}
		sum, err := onnx.FileSHA256(path)
		if err != nil {
			return nil, fmt.Errorf("config detect: %w", err)
		}
		extra["detect.sha256"] = sum
		extra["detect.config"] = jsonString(d)
		eff := det.Config()
		extra["detect.labels"] = jsonString(map[string][]string{"labels": eff.Labels, "labels_zh": eff.LabelsZh})
		extra["detect.classes"] = strconv.Itoa(det.Classes())
	}
	if v := cfg.VAE; v.Enabled {
		path := cfg.resolve(v.Model)
		e, err := vae.OpenEncoder(path, vae.Options{Session: sessionOptions(cfg.ONNX, v.Threads), BatchSize: v.Batch,
			ScalingFactor: v.ScalingFactor, Sample: v.Sample, Seed: v.Seed})
		if err != nil {
			return nil, fmt.Errorf("config vae: %w", err)
		}
		m.encoder = e
		file := encoderFile(path)
		sum, err := onnx.FileSHA256(file)
		if err != nil {
			return nil, fmt.Errorf("config vae: %w", err)
		}
		extra["vae.sha256"] = sum
		extra["vae.file"] = filepath.Base(file)
		extra["vae.config"] = jsonString(v)
		extra["vae.scaling_factor"] = strconv.FormatFloat(float64(e.ScalingFactor()), 'g', -1, 32)
	}
	if m.any() {
		_, version := onnx.Loaded()
		extra["onnx.version"] = version
	}
	ok = true
	return m, nil
}

// encoderFile is the .onnx file that vae.OpenEncoder loads for path (a file,
// or a folder in one of the layouts the vae package documents).
func encoderFile(path string) string {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return path
	}
	for _, f := range []string{"vae_encoder/model.onnx", "vae_encoder.onnx", "model.onnx"} {
		p := filepath.Join(path, f)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return path
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// modelReason classifies a per-sample model error.
func modelReason(err error) string {
	s := strings.ToLower(err.Error())
	if strings.Contains(s, "nan") || strings.Contains(s, "finite") {
		return reasonModelNaN
	}
	return reasonModelInput
}

// decodeStored decodes the stored image of a processed sample for the models.
func decodeStored(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

// live returns the indices of the items that are samples still to process
// (not end markers, not rejected).
func live(items []*item) []int {
	var idx []int
	for i, it := range items {
		if !it.end && it.reject == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// rejectModel turns a sample into a reject of a model stage.
func (it *item) rejectModel(stage string, err error) {
	it.rejectAs(stage, modelReason(err), err.Error())
	it.row = nil
	it.img = nil
}

// addModelStages appends the enabled captioner and detect stages to in.
func addModelStages(p *stages.Pipeline, in *stages.Stream[*item], cfg *Config, m *models) *stages.Stream[*item] {
	out := in
	if m.captioner != nil {
		k := cfg.Captioner
		out = stages.Batch(p, stageCaptioner, out, stages.BatchConfig{Size: k.Batch, MaxWait: batchWait, Workers: batchWorkers},
			func(ctx context.Context, items []*item) ([]*item, error) {
				idx := live(items)
				if len(idx) == 0 {
					return items, nil
				}
				imgs := make([]image.Image, len(idx))
				for j, i := range idx {
					imgs[j] = items[i].img
				}
				res := m.captioner.GenerateEach(imgs, m.search)
				if len(res) != len(idx) {
					return nil, fmt.Errorf("captioner: %d results for %d images", len(res), len(idx))
				}
				for j, i := range idx {
					it := items[i]
					if res[j].Err != nil {
						it.rejectModel(stageCaptioner, res[j].Err)
						continue
					}
					row := it.row
					row.GeneratedCaption = res[j].Caption
					row.Prompt, row.PromptSource = caption.Choose(row.Key, row.Prompt, res[j].Caption, k.Seed, k.Fraction)
				}
				return items, nil
			})
	}
	if m.detector != nil {
		out = stages.Batch(p, stageDetect, out, stages.BatchConfig{Size: cfg.Detect.Batch, MaxWait: batchWait, Workers: batchWorkers},
			func(ctx context.Context, items []*item) ([]*item, error) {
				idx := live(items)
				if len(idx) == 0 {
					return items, nil
				}
				samples := make([]detect.Sample, len(idx))
				for j, i := range idx {
					it := items[i]
					samples[j] = detect.Sample{Key: it.row.Key, Image: it.img, Caption: it.row.Prompt}
				}
				anns, err := m.detector.Annotate(samples, m.selection)
				if err != nil {
					return nil, fmt.Errorf("detect: %w", err)
				}
				if len(anns) != len(idx) {
					return nil, fmt.Errorf("detect: %d annotations for %d samples", len(anns), len(idx))
				}
				for j, i := range idx {
					it, a := items[i], anns[j]
					if a.Err != nil {
						it.rejectModel(stageDetect, a.Err)
						continue
					}
					row := it.row
					row.Objects = make([]shards.Object, len(a.Objects))
					for k, o := range a.Objects {
						row.Objects[k] = shards.Object{Label: o.Label, LabelZh: o.LabelZh, Score: o.Score,
							X0: o.X0, Y0: o.Y0, X1: o.X1, Y1: o.Y1, Kept: o.Kept}
					}
					row.VisualKnowledge = a.VisualKnowledge
					row.LossMask = a.Mask.Data
					if row.LossMask == nil {
						row.LossMask = []byte{}
					}
					row.LossMaskShape = []int32{int32(a.Mask.H), int32(a.Mask.W)}
					row.Prompt = a.Prompt
				}
				return items, nil
			})
	}
	return out
}

// addVAEStage appends the latent stage to in when the encoder is loaded.
func addVAEStage(p *stages.Pipeline, in *stages.Stream[*item], cfg *Config, m *models) *stages.Stream[*item] {
	if m.encoder == nil {
		return in
	}
	return stages.Batch(p, stageVAE, in, stages.BatchConfig{Size: cfg.VAE.Batch, MaxWait: batchWait, Workers: batchWorkers},
		func(ctx context.Context, items []*item) ([]*item, error) {
			idx := live(items)
			if len(idx) == 0 {
				return items, nil
			}
			imgs := make([]image.Image, len(idx))
			keys := make([]string, len(idx))
			for j, i := range idx {
				imgs[j], keys[j] = items[i].img, items[i].row.Key
			}
			lat := m.encoder.Encode(imgs, keys)
			if len(lat) != len(idx) {
				return nil, fmt.Errorf("vae: %d latents for %d images", len(lat), len(idx))
			}
			for j, i := range idx {
				it, l := items[i], lat[j]
				if l.Err != nil {
					it.rejectModel(stageVAE, l.Err)
					continue
				}
				row := it.row
				row.Latent = l.Float16()
				row.LatentShape = []int32{int32(l.Shape[0]), int32(l.Shape[1]), int32(l.Shape[2])}
				row.LatentDType = "float16"
				it.img = nil
			}
			return items, nil
		})
}
