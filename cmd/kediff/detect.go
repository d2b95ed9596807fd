package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"strconv"
	"strings"

	_ "golang.org/x/image/webp"

	"github.com/kediff/kediff/detect"
	"github.com/kediff/kediff/onnx"
)

func init() {
	register("detect", "run an ONNX object detector on images and print JSON lines", runDetect)
}

func runDetect(ctx context.Context, args []string) error {
	d := detect.DefaultConfig()
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff detect --model FILE --format yolov8|yolov5|yolox [flags] IMAGE...\n\n"+
			"Prints one JSON line per image: boxes [x0,y0,x1,y1] in pixels of the image, labels, scores.\n"+
			"Use it to check a model's settings before a long run.\n\n")
		fs.PrintDefaults()
	}
	model := fs.String("model", "", "ONNX detector file")
	format := fs.String("format", string(d.Format), "output layout: yolov8 (also YOLO11), yolov5 or yolox")
	labels := fs.String("labels", "", "label file (one class per line, optional TAB and Chinese name), or coco, or shapes")
	size := fs.String("size", "640", "model input size: N or WxH")
	bgr := fs.Bool("bgr", false, "feed channels as BGR instead of RGB")
	scale := fs.String("scale", "1/255", "pixel scale before mean/std: 1/255 or 1 (raw 0-255), or any number")
	mean := fs.String("mean", "0,0,0", "per-channel mean subtracted after scaling, in the model's channel order")
	std := fs.String("std", "1,1,1", "per-channel std divided by after the mean")
	align := fs.String("align", string(d.Preprocess.Align), "letterbox alignment: center or topleft")
	pad := fs.Float64("pad", float64(d.Preprocess.Pad), "letterbox pad value (0-255, before scaling)")
	strides := fs.String("strides", "8,16,32", "YOLOX grid strides")
	conf := fs.Float64("conf", float64(d.Conf), "minimum score")
	iou := fs.Float64("iou", float64(d.IoU), "NMS IoU threshold (class-aware)")
	maxDet := fs.Int("max-det", d.MaxDet, "most detections per image")
	batch := fs.Int("batch", d.Batch, "images per model run")
	threads := fs.Int("threads", 0, "onnxruntime intra-op threads (0: one per core)")
	cuda := fs.Bool("cuda", false, "use the CUDA execution provider (needs a GPU build of onnxruntime)")
	library := fs.String("onnxruntime", "", "onnxruntime shared library (default: $"+onnx.EnvLibrary+", then "+onnx.DefaultLibrary+", then the system's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("need --model and at least one image")
	}
	cfg := d
	var err error
	if cfg.Format, err = detect.ParseFormat(*format); err != nil {
		return err
	}
	if cfg.Preprocess.Width, cfg.Preprocess.Height, err = parseSize(*size); err != nil {
		return err
	}
	cfg.Preprocess.BGR = *bgr
	if cfg.Preprocess.Scale, err = parseScale(*scale); err != nil {
		return err
	}
	if cfg.Preprocess.Mean, err = parseTriple("mean", *mean); err != nil {
		return err
	}
	if cfg.Preprocess.Std, err = parseTriple("std", *std); err != nil {
		return err
	}
	cfg.Preprocess.Align = detect.Align(strings.ToLower(*align))
	if cfg.Preprocess.Align == "top-left" {
		cfg.Preprocess.Align = detect.TopLeft
	}
	cfg.Preprocess.Pad = float32(*pad)
	cfg.Strides = nil
	for _, s := range strings.Split(*strides, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--strides %q: want comma-separated integers", *strides)
		}
		cfg.Strides = append(cfg.Strides, v)
	}
	cfg.Conf, cfg.IoU, cfg.MaxDet, cfg.Batch = float32(*conf), float32(*iou), *maxDet, *batch
	if *labels != "" {
		if cfg.Labels, cfg.LabelsZh, err = detect.ReadLabels(*labels); err != nil {
			return err
		}
	}
	det, err := detect.Open(*model, cfg, onnx.SessionOptions{Library: *library, IntraOpThreads: *threads, UseCUDA: *cuda})
	if err != nil {
		return err
	}
	defer det.Close()

	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	paths := fs.Args()
	for start := 0; start < len(paths); start += det.MaxBatch() {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := paths[start:min(start+det.MaxBatch(), len(paths))]
		imgs := make([]image.Image, len(chunk))
		errs := make([]error, len(chunk))
		for i, p := range chunk {
			imgs[i], errs[i] = decodeImage(p)
		}
		res, err := det.DetectResults(imgs)
		if err != nil {
			return err
		}
		for i, p := range chunk {
			line := detectLine{Image: p}
			if errs[i] != nil {
				line.Error = errs[i].Error()
			} else if res[i].Err != nil {
				line.Error = res[i].Err.Error()
			} else {
				b := imgs[i].Bounds()
				line.Width, line.Height = b.Dx(), b.Dy()
				line.Objects = []detectObject{}
				for _, o := range res[i].Objects {
					line.Objects = append(line.Objects, detectObject{
						Label: o.Label, LabelZh: o.LabelZh, Class: o.Class, Score: round(o.Score, 4),
						Box: [4]float32{round(o.X0, 2), round(o.Y0, 2), round(o.X1, 2), round(o.Y1, 2)},
					})
				}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
	}
	return nil
}

type detectLine struct {
	Image   string         `json:"image"`
	Width   int            `json:"width,omitempty"`
	Height  int            `json:"height,omitempty"`
	Objects []detectObject `json:"objects,omitempty"`
	Error   string         `json:"error,omitempty"`
}

type detectObject struct {
	Label   string     `json:"label"`
	LabelZh string     `json:"label_zh,omitempty"`
	Class   int        `json:"class"`
	Score   float32    `json:"score"`
	Box     [4]float32 `json:"box"`
}

func round(v float32, digits int) float32 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'f', digits, 32), 32)
	return float32(p)
}

func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return img, nil
}

func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	w, err = strconv.Atoi(a)
	h = w
	if err == nil && ok {
		h, err = strconv.Atoi(b)
	}
	if err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("--size %q: want N or WxH, e.g. 640 or 640x384", s)
	}
	return w, h, nil
}

func parseScale(s string) (float32, error) {
	if num, den, ok := strings.Cut(s, "/"); ok {
		n, err1 := strconv.ParseFloat(num, 64)
		d, err2 := strconv.ParseFloat(den, 64)
		if err1 == nil && err2 == nil && d != 0 {
			return float32(n / d), nil
		}
	} else if v, err := strconv.ParseFloat(s, 64); err == nil && v != 0 {
		return float32(v), nil
	}
	return 0, fmt.Errorf("--scale %q: want 1/255, 1 or a non-zero number", s)
}

func parseTriple(name, s string) ([3]float32, error) {
	var t [3]float32
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return t, fmt.Errorf("--%s %q: want three comma-separated numbers", name, s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return t, fmt.Errorf("--%s %q: %v", name, s, err)
		}
		t[i] = float32(v)
	}
	return t, nil
}
