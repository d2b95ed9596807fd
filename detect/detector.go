package detect

import (
	"fmt"
	"image"
	"math"

	"github.com/kediff/kediff/onnx"
)

// Object is one detection. Detect returns boxes in pixels of the original
// image (pixel-edge coordinates, clamped to it); Annotate returns them
// normalised to 0..1 of the stored image.
type Object struct {
	Class          int
	Label, LabelZh string
	Score          float32
	X0, Y0, X1, Y1 float32
	// Kept marks the objects the eye-catching selection keeps (Annotate).
	Kept bool
}

// Area is the box area in the box's units.
func (o Object) Area() float32 { return max(0, o.X1-o.X0) * max(0, o.Y1-o.Y0) }

// Result is the outcome for one image: its objects, or why it has none
// (an image the model cannot take, NaN outputs). Such an image is a reject
// row; the batch goes on.
type Result struct {
	Objects []Object
	Err     error
}

// Detector runs one ONNX detector. It is safe for concurrent use (see
// onnx.Session); each Detect call preprocesses and runs its own batches.
type Detector struct {
	cfg      Config
	sess     *onnx.Session
	classes  int // class count C
	anchors  int // anchor count A; -1 when the model's is dynamic
	maxBatch int
	zh       []string
	bufs     onnx.FreeList[[]float32] // input buffers of maxBatch images
	rgbs     onnx.FreeList[[]byte]    // RGB conversion buffers
}

// Open loads model and checks that its input and output match cfg: one
// float32 input [N, 3, Height, Width] (N and the spatial size may be
// dynamic) and a float32 output [N, 4+C, A] (yolov8) or [N, A, 5+C]
// (yolov5, yolox) where C = len(cfg.Labels) when labels are given. A
// mismatch stops here, before any image is processed, with a message
// naming the model, the tensor and both shapes.
func Open(model string, cfg Config, opt onnx.SessionOptions) (*Detector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := onnx.Open(model, opt)
	if err != nil {
		return nil, err
	}
	d, err := newDetector(s, cfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	return d, nil
}

func newDetector(s *onnx.Session, cfg Config) (*Detector, error) {
	p := cfg.Preprocess
	ins, outs := s.Inputs(), s.Outputs()
	if len(ins) != 1 {
		return nil, fmt.Errorf("detect: model %s has %d inputs; a detector takes one image tensor", s.Name(), len(ins))
	}
	in := ins[0]
	want := []int64{-1, 3, int64(p.Height), int64(p.Width)}
	if err := s.CheckTensor("input", in, want, "float32"); err != nil {
		if se, ok := err.(*onnx.ShapeError); ok && len(in.Shape) == 4 && se.WantType == "" {
			se.Hint = fmt.Sprintf("set the input size to %dx%d", in.Shape[3], in.Shape[2])
		}
		return nil, fmt.Errorf("detect: %w", err)
	}
	out := outs[0]
	d := &Detector{cfg: cfg, sess: s, maxBatch: cfg.Batch}
	if in.Shape[0] > 0 {
		d.maxBatch = int(in.Shape[0])
	}
	C := int64(-1)
	if len(cfg.Labels) > 0 {
		C = int64(len(cfg.Labels))
	}
	A := int64(-1)
	if cfg.Format == YOLOX {
		A = int64(cfg.anchors())
	}
	var wantOut []int64
	switch cfg.Format {
	case YOLOv8:
		wantOut = []int64{-1, 4 + C, -1}
		if C < 0 {
			wantOut[1] = -1
		}
	default:
		wantOut = []int64{-1, A, 5 + C}
		if C < 0 {
			wantOut[2] = -1
		}
	}
	checkOut := func(out onnx.TensorInfo) error {
		hint := ""
		if len(out.Shape) == 3 && out.Shape[1] > 0 && out.Shape[2] > 0 {
			if cfg.Format == YOLOv8 && out.Shape[1] > out.Shape[2] {
				hint = "anchors come first: try --format yolov5 or yolox"
			}
			if cfg.Format != YOLOv8 && out.Shape[1] < out.Shape[2] {
				hint = "classes come first: try --format yolov8"
			}
		}
		err := s.CheckTensor("output", out, wantOut, "float32")
		if se, ok := err.(*onnx.ShapeError); ok && se.WantType == "" {
			se.Hint = hint
			if hint == "" && C >= 0 {
				se.Hint = fmt.Sprintf("%d labels given: check the label file", C)
			}
		}
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		return nil
	}
	if err := checkOut(out); err != nil {
		return nil, err
	}
	if len(out.Shape) == 3 && (out.Shape[1] < 0 || out.Shape[2] < 0) {
		// Exports without shape inference leave the dimensions dynamic: one
		// blank image tells the real layout before any sample is processed.
		blank := make([]float32, 3*p.Width*p.Height)
		res, err := s.Run(onnx.Float32("", []int64{1, 3, int64(p.Height), int64(p.Width)}, blank))
		if err != nil {
			return nil, fmt.Errorf("detect: trial run on a blank image: %w", err)
		}
		out.Shape = res[0].Shape
		out.Shape[0] = -1
		if err := checkOut(out); err != nil {
			return nil, err
		}
	}
	// C and A from the model where static.
	switch cfg.Format {
	case YOLOv8:
		if out.Shape[1] > 0 {
			C = out.Shape[1] - 4
		}
		if out.Shape[2] > 0 {
			A = out.Shape[2]
		}
	default:
		if out.Shape[2] > 0 {
			C = out.Shape[2] - 5
		}
		if out.Shape[1] > 0 {
			A = out.Shape[1]
		}
	}
	if C <= 0 {
		return nil, fmt.Errorf("detect: model %s: output %q has a dynamic class dimension; give the labels file so the class count is known", s.Name(), out.Name)
	}
	d.classes, d.anchors = int(C), int(A)
	d.zh = make([]string, d.classes)
	for i := range d.zh {
		if i < len(cfg.LabelsZh) && cfg.LabelsZh[i] != "" {
			d.zh[i] = cfg.LabelsZh[i]
		} else {
			d.zh[i] = ZhName(d.label(i))
		}
	}
	return d, nil
}

// Close releases the model.
func (d *Detector) Close() error { return d.sess.Close() }

// Config returns the detector's configuration (with defaults filled in).
func (d *Detector) Config() Config { return d.cfg }

// Classes is the model's class count.
func (d *Detector) Classes() int { return d.classes }

// Session is the underlying onnxruntime session (for benchmarks).
func (d *Detector) Session() *onnx.Session { return d.sess }

// MaxBatch is the most images one Run takes.
func (d *Detector) MaxBatch() int { return d.maxBatch }

func (d *Detector) label(c int) string {
	if c < len(d.cfg.Labels) {
		return d.cfg.Labels[c]
	}
	return fmt.Sprintf("class%d", c)
}

// Detect runs the model on imgs in batches of at most MaxBatch and returns
// each image's objects, boxes in pixels of that image. The error is the
// first per-image error or a failed Run; use DetectResults to keep going
// past bad images.
func (d *Detector) Detect(imgs []image.Image) ([][]Object, error) {
	res, err := d.DetectResults(imgs)
	if err != nil {
		return nil, err
	}
	objs := make([][]Object, len(res))
	for i, r := range res {
		if r.Err != nil {
			return nil, fmt.Errorf("image %d: %w", i, r.Err)
		}
		objs[i] = r.Objects
	}
	return objs, nil
}

// DetectResults is Detect with one Result per image: an image the model
// cannot take (empty) or whose outputs are NaN gets an error, the others
// their objects. The error return is for failures of a whole batch.
func (d *Detector) DetectResults(imgs []image.Image) ([]Result, error) {
	p := d.cfg.Preprocess
	// One RGB buffer per call: each image is converted just before it is
	// filled into the input batch. A YCbCr image that needs no resize (what
	// image/jpeg gives at the model's size) goes straight into the batch.
	bp := d.rgbs.Get()
	defer d.rgbs.Put(bp)
	return d.run(len(imgs), func(i int, dst []float32) (Letterbox, error) {
		img := imgs[i]
		if img == nil {
			return Letterbox{}, emptyImage(0, 0)
		}
		if m, ok := img.(*image.YCbCr); ok {
			if lb, ok, err := p.fillYCbCr(m, dst); ok {
				return lb, err
			}
		}
		rgb := ToRGB(img, *bp)
		*bp = rgb.Pix
		if rgb.W <= 0 || rgb.H <= 0 {
			return Letterbox{}, emptyImage(rgb.W, rgb.H)
		}
		return p.Fill(rgb, dst)
	})
}

func emptyImage(w, h int) error {
	return fmt.Errorf("detect: image is empty (%dx%d); the model needs at least 1x1 pixels", w, h)
}

// DetectRGB is DetectResults for packed RGB images.
func (d *Detector) DetectRGB(imgs []RGB) ([]Result, error) {
	p := d.cfg.Preprocess
	return d.run(len(imgs), func(i int, dst []float32) (Letterbox, error) {
		img := imgs[i]
		if img.W <= 0 || img.H <= 0 {
			return Letterbox{}, emptyImage(img.W, img.H)
		}
		return p.Fill(img, dst)
	})
}

// run detects n images: fill writes image i's model input into dst and
// returns its placement, or the error that makes it a reject.
func (d *Detector) run(n int, fill func(i int, dst []float32) (Letterbox, error)) ([]Result, error) {
	res := make([]Result, n)
	p := d.cfg.Preprocess
	plane := 3 * p.Width * p.Height
	bp := d.bufs.Get()
	if len(*bp) < d.maxBatch*plane {
		*bp = make([]float32, d.maxBatch*plane)
	}
	defer d.bufs.Put(bp)
	buf := *bp
	idx := make([]int, 0, d.maxBatch)
	lbs := make([]Letterbox, 0, d.maxBatch)
	shape := make([]int64, 4)
	flush := func() error {
		if len(idx) == 0 {
			return nil
		}
		n := len(idx)
		shape[0], shape[1], shape[2], shape[3] = int64(n), 3, int64(p.Height), int64(p.Width)
		outs, err := d.sess.Run(onnx.Float32("", shape, buf[:n*plane]))
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		out := outs[0]
		A, C, err := d.outputDims(out.Shape, n)
		if err != nil {
			return err
		}
		data := out.Float32s()
		per := len(data) / n
		for k, i := range idx {
			res[i].Objects, res[i].Err = d.finish(data[k*per:(k+1)*per], A, C, lbs[k])
		}
		idx, lbs = idx[:0], lbs[:0]
		return nil
	}
	for i := range n {
		k := len(idx)
		lb, err := fill(i, buf[k*plane:(k+1)*plane])
		if err != nil {
			res[i].Err = err
			continue
		}
		idx = append(idx, i)
		lbs = append(lbs, lb)
		if len(idx) == d.maxBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return res, nil
}

// outputDims checks a run's output shape and returns A and C.
func (d *Detector) outputDims(shape []int64, n int) (A, C int, err error) {
	bad := len(shape) != 3 || shape[0] != int64(n)
	if !bad {
		switch d.cfg.Format {
		case YOLOv8:
			C, A = int(shape[1])-4, int(shape[2])
		default:
			A, C = int(shape[1]), int(shape[2])-5
		}
		bad = C != d.classes || (d.anchors > 0 && A != d.anchors)
	}
	if bad {
		return 0, 0, fmt.Errorf("detect: model %s returned output shape %s for a batch of %d; want %d classes in the %s layout", d.sess.Name(), onnx.FormatShape(shape), n, d.classes, d.cfg.Format)
	}
	return A, C, nil
}

// finish decodes one image's output, runs NMS and maps boxes back.
func (d *Detector) finish(out []float32, A, C int, lb Letterbox) ([]Object, error) {
	cands, err := Decode(out, A, C, &d.cfg)
	if err != nil {
		return nil, err
	}
	kept := NMS(cands, d.cfg.IoU, d.cfg.MaxDet)
	objs := make([]Object, 0, len(kept))
	for _, c := range kept {
		x0, y0 := lb.ToImage(float64(c.X0), float64(c.Y0))
		x1, y1 := lb.ToImage(float64(c.X1), float64(c.Y1))
		if math.IsInf(x0+y0+x1+y1, 0) {
			continue
		}
		objs = append(objs, Object{
			Class: c.Class, Label: d.label(c.Class), LabelZh: d.zh[c.Class], Score: c.Score,
			X0: float32(x0), Y0: float32(y0), X1: float32(x1), Y1: float32(y1),
		})
	}
	return objs, nil
}
