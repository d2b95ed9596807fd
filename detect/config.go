package detect

import (
	"fmt"
	"strings"
)

// Format names an output layout (see the package doc).
type Format string

// The output layouts Decode understands.
const (
	YOLOv8 Format = "yolov8" // Ultralytics YOLOv8/YOLO11: [N, 4+C, A], decoded boxes, class scores
	YOLOv5 Format = "yolov5" // YOLOv5: [N, A, 5+C], decoded boxes, objectness, class scores
	YOLOX  Format = "yolox"  // YOLOX, decode_in_inference=False: [N, A, 5+C] raw grid outputs
)

// ParseFormat accepts yolov8 (also yolo11, ultralytics), yolov5 and yolox.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "yolov8", "yolo11", "yolov11", "ultralytics":
		return YOLOv8, nil
	case "yolov5":
		return YOLOv5, nil
	case "yolox":
		return YOLOX, nil
	}
	return "", fmt.Errorf("detect: unknown format %q (want yolov8, yolov5 or yolox)", s)
}

// Align is where a letterboxed image sits in the model input.
type Align string

const (
	Center  Align = "center"  // equal padding on both sides (Ultralytics, YOLOv5)
	TopLeft Align = "topleft" // image at (0, 0), padding right and bottom (YOLOX)
)

// Preprocess describes how an image becomes a model input: letterbox to
// Width x Height, then per channel v' = (v*Scale - Mean[c]) / Std[c] where v
// is the 0..255 pixel value in the model's channel order (RGB, or BGR when
// BGR is set; Mean and Std are given in that order). Pad is the pixel value
// (0..255, before scaling) of the letterbox border.
type Preprocess struct {
	Width, Height int
	BGR           bool
	Scale         float32
	Mean, Std     [3]float32
	Align         Align
	Pad           float32
}

// Config configures a Detector. DefaultConfig gives the Ultralytics settings.
type Config struct {
	Format     Format
	Preprocess Preprocess
	// Strides are the YOLOX grid strides, finest first (default 8, 16, 32).
	Strides []int
	// Conf is the minimum score kept (score = objectness * best class score
	// for yolov5/yolox, the best class score for yolov8); IoU the overlap
	// above which NMS drops a box of the same class; MaxDet caps the
	// detections per image.
	Conf, IoU float32
	MaxDet    int
	// Labels are the class names in class-id order. When empty, classes are
	// named "class<id>"; when set, the model's class count must match.
	Labels []string
	// LabelsZh are the Chinese names, parallel to Labels; "" entries are
	// looked up in the built-in tables (ZhName).
	LabelsZh []string
	// Batch is the most images one Run takes (default 8; a model with a
	// fixed batch dimension uses that).
	Batch int
}

// DefaultConfig returns the settings of an Ultralytics YOLOv8 export at
// 640x640: RGB, scale 1/255, no mean/std, centre letterbox padded with 114,
// conf 0.25, IoU 0.45, at most 300 detections, batches of 8.
func DefaultConfig() Config {
	return Config{
		Format: YOLOv8,
		Preprocess: Preprocess{
			Width: 640, Height: 640, Scale: 1.0 / 255, Std: [3]float32{1, 1, 1},
			Align: Center, Pad: 114,
		},
		Strides: []int{8, 16, 32},
		Conf:    0.25, IoU: 0.45, MaxDet: 300,
		Batch: 8,
	}
}

func (c *Config) validate() error {
	p := &c.Preprocess
	switch c.Format {
	case YOLOv8, YOLOv5, YOLOX:
	default:
		return fmt.Errorf("detect: unknown format %q (want yolov8, yolov5 or yolox)", c.Format)
	}
	if p.Width <= 0 || p.Height <= 0 {
		return fmt.Errorf("detect: input size %dx%d: want positive width and height", p.Width, p.Height)
	}
	if p.Align == "" {
		p.Align = Center
	}
	if p.Align != Center && p.Align != TopLeft {
		return fmt.Errorf("detect: letterbox alignment %q: want center or topleft", p.Align)
	}
	if p.Scale == 0 {
		p.Scale = 1.0 / 255
	}
	for i, s := range p.Std {
		if s == 0 {
			return fmt.Errorf("detect: std[%d] is 0; use 1 for no normalisation", i)
		}
	}
	if c.Format == YOLOX {
		if len(c.Strides) == 0 {
			c.Strides = []int{8, 16, 32}
		}
		for _, s := range c.Strides {
			if s <= 0 || p.Width%s != 0 || p.Height%s != 0 {
				return fmt.Errorf("detect: yolox stride %d does not divide the input size %dx%d", s, p.Width, p.Height)
			}
		}
	}
	if c.Conf < 0 || c.Conf > 1 || c.IoU <= 0 || c.IoU > 1 {
		return fmt.Errorf("detect: conf %g and iou %g must lie in [0, 1] and (0, 1]", c.Conf, c.IoU)
	}
	if c.MaxDet <= 0 {
		c.MaxDet = 300
	}
	if c.Batch <= 0 {
		c.Batch = 8
	}
	if len(c.LabelsZh) > 0 && len(c.LabelsZh) != len(c.Labels) {
		return fmt.Errorf("detect: %d Chinese labels for %d labels", len(c.LabelsZh), len(c.Labels))
	}
	return nil
}

// anchors is the anchor count A of a YOLOX output for the configured input.
func (c *Config) anchors() int {
	n := 0
	for _, s := range c.Strides {
		n += (c.Preprocess.Width / s) * (c.Preprocess.Height / s)
	}
	return n
}
