package detect

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/onnx"
	"github.com/kediff/kediff/synth"
)

func TestLossMask(t *testing.T) {
	objs := []Object{
		{X0: 0.1, Y0: 0.2, X1: 0.4, Y1: 0.5, Kept: true},
		{X0: 0.6, Y0: 0.6, X1: 1.0, Y1: 1.0, Kept: false},
		{X0: 0.75, Y0: 0.0, X1: 0.8, Y1: 0.1, Kept: true}, // thin: covers centres only if any lie inside
	}
	for _, size := range [][2]int{{128, 128}, {256, 192}, {100, 70}} {
		w, h := size[0], size[1]
		m := LossMask(objs, w, h)
		if m.H != h/8 || m.W != w/8 || len(m.Data) != m.H*m.W {
			t.Fatalf("%dx%d: mask %dx%d len %d", w, h, m.W, m.H, len(m.Data))
		}
		// Independent check: brute force over cells.
		for i := 0; i < m.H; i++ {
			for j := 0; j < m.W; j++ {
				cx, cy := (float64(j)+0.5)*8/float64(w), (float64(i)+0.5)*8/float64(h)
				want := uint8(0)
				for _, o := range objs {
					if o.Kept && cx >= float64(o.X0) && cx < float64(o.X1) && cy >= float64(o.Y0) && cy < float64(o.Y1) {
						want = 1
					}
				}
				if m.Data[i*m.W+j] != want {
					t.Fatalf("%dx%d cell (%d,%d) = %d, want %d", w, h, i, j, m.Data[i*m.W+j], want)
				}
			}
		}
	}
	// 128x128, box 0.1..0.4 x 0.2..0.5 -> pixels 12.8..51.2 x 25.6..64: centres
	// 20, 28, 36, 44 in x (4 cells) and 28, 36, 44, 52, 60 in y (5 cells).
	m := LossMask(objs[:1], 128, 128)
	n := 0
	for _, v := range m.Data {
		n += int(v)
	}
	if n != 20 {
		t.Fatalf("covered cells %d, want 20", n)
	}
}

func TestSelectionKeep(t *testing.T) {
	objs := []Object{
		{Label: "a", Score: 0.9, X1: 0.1, Y1: 0.1},  // area 0.01 < 0.02
		{Label: "b", Score: 0.4, X1: 0.5, Y1: 0.5},  // score too low
		{Label: "c", Score: 0.6, X1: 0.5, Y1: 0.5},  // 0.6*0.5 = 0.3
		{Label: "d", Score: 0.95, X1: 0.2, Y1: 0.2}, // 0.95*0.2 = 0.19
		{Label: "e", Score: 0.7, X1: 0.6, Y1: 0.6},  // 0.7*0.6 = 0.42
		{Label: "f", Score: 0.5, X1: 0.3, Y1: 0.3},  // 0.5*0.3 = 0.15
	}
	s := DefaultSelection()
	s.Keep(objs)
	var kept string
	for _, o := range objs {
		if o.Kept {
			kept += o.Label
		}
	}
	if kept != "cde" {
		t.Fatalf("kept %q, want cde", kept)
	}
}

func TestAugment(t *testing.T) {
	obj := func(label, zh string, kept bool) Object { return Object{Label: label, LabelZh: zh, Kept: kept} }
	dog, cat, bowl, apple := obj("dog", "狗", true), obj("cat", "猫", true), obj("bowl", "碗", true), obj("apple", "苹果", true)
	for _, c := range []struct {
		name, caption string
		objs          []Object
		want          string
	}{
		{"en_one", "a dog and a cat", []Object{dog, cat, bowl}, "a dog and a cat, with a bowl"},
		{"en_two_vowel", "a dog.", []Object{apple, bowl}, "a dog, with an apple and a bowl."},
		{"en_three", "a photo", []Object{dog, apple, bowl}, "a photo, with a dog, an apple and a bowl"},
		{"en_plural_mentioned", "two Dogs play", []Object{dog}, "two Dogs play"},
		{"en_word_boundary", "a hotdog stand", []Object{dog}, "a hotdog stand, with a dog"},
		{"en_not_kept", "a dog", []Object{obj("cat", "猫", false)}, "a dog"},
		{"en_dedup", "a dog", []Object{cat, cat}, "a dog, with a cat"},
		{"en_phrase", "a red traffic light", []Object{obj("traffic light", "红绿灯", true)}, "a red traffic light"},
		{"en_empty", "", []Object{dog, cat}, "a dog and a cat"},
		{"zh_one", "一只狗和一只猫", []Object{dog, cat, bowl}, "一只狗和一只猫，有碗"},
		{"zh_two_period", "一只狗。", []Object{cat, bowl}, "一只狗，有猫和碗。"},
		{"zh_three", "桌子上", []Object{dog, cat, bowl}, "桌子上，有狗、猫和碗"},
		{"zh_no_zh_name", "一只狗", []Object{obj("widget", "", true)}, "一只狗，有widget"},
		{"synth_zh", "一个红色的圆形", []Object{obj("circle", "圆形", true), obj("star", "五角星", true)}, "一个红色的圆形，有五角星"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Augment(c.caption, c.objs); got != c.want {
				t.Fatalf("Augment(%q) = %q, want %q", c.caption, got, c.want)
			}
		})
	}
}

func TestZhNames(t *testing.T) {
	for label, want := range map[string]string{
		"tv": "电视", "tvmonitor": "电视", "TV Monitor": "电视", "motorbike": "摩托车", "motorcycle": "摩托车",
		"aeroplane": "飞机", "sofa": "沙发", "pottedplant": "盆栽", "potted plant": "盆栽", "diningtable": "餐桌",
		"traffic_light": "红绿灯", "hair drier": "吹风机", "hexagon": "六边形", "unknown thing": "",
	} {
		if got := ZhName(label); got != want {
			t.Errorf("ZhName(%q) = %q, want %q", label, got, want)
		}
	}
	if len(COCO) != 80 || len(cocoZh) != 80 {
		t.Fatalf("COCO tables %d/%d, want 80", len(COCO), len(cocoZh))
	}
	names, zh, err := ReadLabels("testdata/shapes.names")
	if err != nil || len(names) != len(synth.Labels) || zh[0] != "" {
		t.Fatalf("ReadLabels: %v %v %v", names, zh, err)
	}
	p := filepath.Join(t.TempDir(), "l.txt")
	os.WriteFile(p, []byte("\ufeff# comment\ndog\t小狗\n\ncat\n"), 0o644)
	names, zh, err = ReadLabels(p)
	if err != nil || strings.Join(names, ",") != "dog,cat" || zh[0] != "小狗" || zh[1] != "" {
		t.Fatalf("ReadLabels: %q %q %v", names, zh, err)
	}
}

func TestNMS(t *testing.T) {
	c := func(a, cls int, s, x0, y0, x1, y1 float32) Candidate {
		return Candidate{Anchor: a, Class: cls, Score: s, X0: x0, Y0: y0, X1: x1, Y1: y1}
	}
	cands := []Candidate{
		c(0, 0, 0.8, 0, 0, 10, 10),
		c(1, 0, 0.9, 1, 1, 11, 11), // overlaps 0 (IoU 0.68): wins
		c(2, 1, 0.7, 1, 1, 11, 11), // other class: kept
		c(3, 0, 0.6, 20, 20, 30, 30),
		c(4, 0, 0.6, 0, 0, 10, 5), // IoU with 1 = 36/(100+50-36) = 0.32: kept
	}
	kept := NMS(cands, 0.45, 300)
	var got []int
	for _, k := range kept {
		got = append(got, k.Anchor)
	}
	if len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 {
		t.Fatalf("kept anchors %v, want [1 2 3 4]", got)
	}
	if n := len(NMS(cands, 0.45, 2)); n != 2 {
		t.Fatalf("maxDet 2 kept %d", n)
	}
}

func TestDecodeNaN(t *testing.T) {
	cfg := fixtureConfig(YOLOv5)
	cfg.validate()
	out := make([]float32, 336*12)
	out[5*12+4] = float32(math.NaN())
	if _, err := Decode(out, 336, 7, &cfg); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("err = %v, want NaN error", err)
	}
	if _, err := Decode(out[:100], 336, 7, &cfg); err == nil {
		t.Fatal("short output accepted")
	}
}

func TestBadInputs(t *testing.T) {
	needRuntime(t)
	t.Run("not_onnx", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "model.onnx")
		os.WriteFile(p, []byte("<html>not found</html>"), 0o644)
		_, err := Open(p, fixtureConfig(YOLOv8), onnx.SessionOptions{})
		if err == nil || !strings.Contains(err.Error(), "not an ONNX file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong_layout", func(t *testing.T) {
		_, err := Open(modelFile(YOLOX), fixtureConfig(YOLOv8), onnx.SessionOptions{})
		var se *onnx.ShapeError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want a ShapeError", err)
		}
		for _, want := range []string{"shapes_yolox.onnx", `"output"`, "[N 336 12]", "[N 11 N]", "yolov5 or yolox"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
		_, err = Open(modelFile(YOLOv8), fixtureConfig(YOLOX), onnx.SessionOptions{})
		if err == nil || !strings.Contains(err.Error(), "--format yolov8") {
			t.Fatalf("v8 model as yolox: %v", err)
		}
	})
	t.Run("wrong_labels", func(t *testing.T) {
		cfg := fixtureConfig(YOLOv8)
		cfg.Labels = COCO
		if _, err := Open(modelFile(YOLOv8), cfg, onnx.SessionOptions{}); err == nil || !strings.Contains(err.Error(), "80 labels") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong_input_size", func(t *testing.T) {
		cfg := fixtureConfig(YOLOv8)
		cfg.Preprocess.Width, cfg.Preprocess.Height = 640, 640
		_, err := Open(modelFile(YOLOv8), cfg, onnx.SessionOptions{})
		if err == nil || !strings.Contains(err.Error(), "[N 3 128 128]") || !strings.Contains(err.Error(), "128x128") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad_images_are_rejects", func(t *testing.T) {
		d, err := Open(modelFile(YOLOv8), fixtureConfig(YOLOv8), onnx.SessionOptions{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		good, _ := synth.Render(rand.New(rand.NewPCG(1, 1)), synth.Options{Width: 128, Height: 128})
		tall := image.NewRGBA(image.Rect(0, 0, 1, 5000)) // letterboxes to 1 x 128
		res, err := d.DetectResults([]image.Image{good, image.NewRGBA(image.Rect(0, 0, 0, 0)), tall, nil, good})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || len(res[0].Objects) == 0 || res[4].Err != nil {
			t.Fatalf("good images: %+v", res)
		}
		if res[1].Err == nil || res[3].Err == nil {
			t.Fatalf("empty images not rejected: %+v", res)
		}
		if res[2].Err != nil {
			t.Fatalf("extreme aspect: %v", res[2].Err)
		}
	})
}

func TestAnnotate(t *testing.T) {
	needRuntime(t)
	d, err := Open(modelFile(YOLOv8), fixtureConfig(YOLOv8), onnx.SessionOptions{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var samples []Sample
	for k := 0; k < 6; k++ {
		img, sc := synth.Render(rand.New(rand.NewPCG(99, uint64(k))), synth.Options{Width: 128, Height: 128})
		var buf bytes.Buffer
		jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		samples = append(samples, Sample{Key: string(rune('a' + k)), JPEG: buf.Bytes(), Caption: sc.CaptionZh})
	}
	samples = append(samples, Sample{Key: "broken", JPEG: []byte("not a jpeg"), Caption: "x"})
	sel := DefaultSelection()
	sel.Fraction = 1
	sel.MaxObjects = 1
	anns, err := d.Annotate(samples, sel)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range anns[:6] {
		if a.Err != nil || !a.VisualKnowledge || a.Mask.H != 16 || a.Mask.W != 16 {
			t.Fatalf("sample %d: %+v", i, a)
		}
		nk := 0
		for _, o := range a.Objects {
			if o.X0 < 0 || o.X1 > 1 || o.LabelZh == "" {
				t.Fatalf("sample %d: object %+v not normalised or without label_zh", i, o)
			}
			if o.Kept {
				nk++
				if !strings.Contains(a.Prompt, o.LabelZh) {
					t.Fatalf("sample %d: prompt %q lacks kept %s", i, a.Prompt, o.LabelZh)
				}
			}
		}
		if nk > 1 {
			t.Fatalf("sample %d: %d kept, MaxObjects 1", i, nk)
		}
		if want := LossMask(a.Objects, 128, 128); !bytes.Equal(want.Data, a.Mask.Data) {
			t.Fatalf("sample %d: mask differs", i)
		}
	}
	if anns[6].Err == nil {
		t.Fatal("undecodable image not rejected")
	}
	sel.Fraction = 0
	anns, err = d.Annotate(samples[:2], sel)
	if err != nil || anns[0].VisualKnowledge || anns[0].Objects != nil || anns[0].Prompt != samples[0].Caption || len(anns[0].Mask.Data) != 256 {
		t.Fatalf("unselected: %+v %v", anns[0], err)
	}
}
