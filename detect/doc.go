// Package detect runs ONNX object detectors and turns their detections into
// kediff's visual knowledge (design 1.4): the eye-catching objects of an
// image, a loss mask on the latent grid and a caption augmented with their
// labels.
//
// # Models
//
// Open loads a model through package onnx and checks it against a Config
// before any image is processed. Three output layouts are understood
// (Config.Format):
//
//	yolov8  Ultralytics YOLOv8/YOLO11  [N, 4+C, A]  cx, cy, w, h (input px), C class scores
//	yolov5  YOLOv5                     [N, A, 5+C]  cx, cy, w, h (input px), objectness, C class scores
//	yolox   YOLOX, decode_in_inference=False
//	                                   [N, A, 5+C]  raw: x, y offsets and log w, h in stride units,
//	                                                objectness, C class scores; decoded on the
//	                                                grid of Config.Strides (8, 16, 32):
//	                                                cx = (x + gx)*s, w = exp(w)*s
//
// Preprocessing (Preprocess) letterboxes the image to the input size
// (bilinear, half-pixel centres, centre or top-left, pad value), orders the
// channels RGB or BGR, scales (1/255 or raw 0-255) and applies mean/std.
// Decode keeps, per anchor, the best class whose score (times objectness for
// yolov5/yolox) reaches Config.Conf; NMS is class-aware and greedy. Boxes come
// back in pixels of the original image.
//
// Labels come from a file (ReadLabels: one name per line, optionally a tab
// and the Chinese name), or the built-in lists "coco" and "shapes". ZhName
// holds Chinese names for the 80 COCO classes (Ultralytics and Darknet
// spellings: tv and tvmonitor, motorcycle and motorbike, ...) and for the
// synth shapes.
//
// # Visual knowledge
//
// Detector.Annotate takes a batch of samples (key, stored image decoded or
// as JPEG, caption) and returns their columns: Selected picks the samples
// the detector runs on (a hash of key and seed, the rule of pos.Selected),
// Selection.Keep marks the eye-catching objects, LossMask builds the
// [H/8, W/8] mask of kept boxes and Augment appends the unmentioned kept
// labels to the caption in its language. A sample whose image cannot be
// decoded or whose outputs are NaN gets Err (a reject row); only a failed
// model run fails the batch.
//
// The fixture models in testdata come from tools/detect (train.py,
// make_fixtures.sh), with PyTorch reference outputs in reference.json.
package detect
