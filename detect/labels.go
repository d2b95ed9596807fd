package detect

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/kediff/kediff/synth"
)

// COCO is the 80-class COCO label list in the order of Ultralytics and
// YOLOv5/YOLOX exports (class ids 0..79), with Ultralytics spellings.
var COCO = []string{
	"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
	"fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
	"elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
	"skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
	"wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
	"broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
	"dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
	"toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
}

// cocoZh holds the Chinese names of COCO, parallel to COCO.
var cocoZh = []string{
	"人", "自行车", "汽车", "摩托车", "飞机", "公共汽车", "火车", "卡车", "船", "红绿灯",
	"消防栓", "停车标志", "停车计时器", "长椅", "鸟", "猫", "狗", "马", "羊", "牛",
	"大象", "熊", "斑马", "长颈鹿", "背包", "雨伞", "手提包", "领带", "行李箱", "飞盘",
	"滑雪板", "单板滑雪板", "球", "风筝", "棒球棒", "棒球手套", "滑板", "冲浪板", "网球拍", "瓶子",
	"酒杯", "杯子", "叉子", "刀", "勺子", "碗", "香蕉", "苹果", "三明治", "橙子",
	"西兰花", "胡萝卜", "热狗", "披萨", "甜甜圈", "蛋糕", "椅子", "沙发", "盆栽", "床",
	"餐桌", "马桶", "电视", "笔记本电脑", "鼠标", "遥控器", "键盘", "手机", "微波炉", "烤箱",
	"烤面包机", "水槽", "冰箱", "书", "钟", "花瓶", "剪刀", "泰迪熊", "吹风机", "牙刷",
}

// darknetSpellings maps the Darknet coco.names spellings (and a few common
// variants) to the Ultralytics names above.
var darknetSpellings = map[string]string{
	"motorbike":   "motorcycle",
	"aeroplane":   "airplane",
	"sofa":        "couch",
	"pottedplant": "potted plant",
	"diningtable": "dining table",
	"tvmonitor":   "tv",
	"tv monitor":  "tv",
	"hair dryer":  "hair drier",
	"cellphone":   "cell phone",
	"doughnut":    "donut",
}

// Shapes is the label list of the fixture detectors: synth.Labels in
// class-id order.
func Shapes() []string {
	names := make([]string, len(synth.Labels))
	for i, s := range synth.Labels {
		names[i] = s.Name
	}
	return names
}

var zhTable = func() map[string]string {
	m := map[string]string{}
	for i, n := range COCO {
		m[labelKey(n)] = cocoZh[i]
	}
	for k, v := range darknetSpellings {
		m[labelKey(k)] = m[labelKey(v)]
	}
	for _, s := range synth.Labels {
		m[labelKey(s.Name)] = s.Zh
	}
	return m
}()

// labelKey folds case and separators: "Traffic_Light" and "traffic light"
// (and "trafficlight") are one key.
func labelKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r == ' ' || r == '_' || r == '-' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ZhName returns the built-in Chinese name of a COCO class (Ultralytics or
// Darknet spelling, any case, spaces/underscores/hyphens ignored) or of a
// synth shape, or "" when there is none.
func ZhName(label string) string { return zhTable[labelKey(label)] }

// ReadLabels reads a label file: one class per line in class-id order,
// optionally followed by a tab and its Chinese name ("dog\t狗"). Blank
// lines and lines starting with # are skipped. The names "coco" and
// "shapes" select the built-in lists instead of a file. zh has "" where a
// line gives no Chinese name (ZhName fills it in later).
func ReadLabels(path string) (names, zh []string, err error) {
	switch path {
	case "coco":
		return append([]string(nil), COCO...), append([]string(nil), cocoZh...), nil
	case "shapes":
		names = Shapes()
		for _, s := range synth.Labels {
			zh = append(zh, s.Zh)
		}
		return names, zh, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("detect: labels: %w (give a file with one class name per line, or coco, or shapes)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, z, _ := strings.Cut(t, "\t")
		names = append(names, strings.TrimSpace(name))
		zh = append(zh, strings.TrimSpace(z))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("detect: labels %s: line %d: %w", path, line, err)
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("detect: labels %s holds no names", path)
	}
	return names, zh, nil
}
