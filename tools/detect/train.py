#!/usr/bin/python3
"""Trains kediff's fixture detector and writes its ONNX exports and the
PyTorch reference outputs that detect/'s tests compare against.

The model is a tiny anchor-free detector in the YOLOX style: a plain strided
CNN with one head per stride (8, 16, 32) predicting, per grid cell, a box
(x/y offset from the cell's top-left corner and log width/height, both in
stride units), an objectness logit and one logit per class. It is trained on
the bundled synthetic shapes (synth.Labels order = class ids) that
`kediff synth` writes, letterboxed to 128x128 exactly as detect/ does.

One trained model is exported in three layouts (detect/'s --format):

  shapes_yolov8.onnx  images [N,3,128,128] -> output0 [N, 4+C, A]
                      cx, cy, w, h in input pixels, then C class scores
                      (sigmoid(obj) * sigmoid(cls): v8 has no objectness)
  shapes_yolov5.onnx  images -> output0 [N, A, 5+C]
                      cx, cy, w, h in input pixels, objectness, class scores
  shapes_yolox.onnx   images -> output [N, A, 5+C]  raw grid outputs as
                      YOLOX exports them with decode_in_inference=False:
                      x, y offsets and log w, h in stride units, then
                      sigmoid(obj) and sigmoid(cls); the consumer decodes
                      xy = (xy + grid) * stride, wh = exp(wh) * stride.

A = 16*16 + 8*8 + 4*4 = 336 anchors for a 128x128 input, stride 8 first, each
level in row-major (y, x) order.

Preprocessing (the Go side's defaults for these models): RGB, scale 1/255, no
mean/std, centre letterbox with pad value 114. Letterbox: r = min(S/h, S/w),
new size floor(w*r + 0.5) x floor(h*r + 0.5), bilinear resize with half-pixel
centres and no antialiasing (torch interpolate, align_corners=False), pad
left = (S - new_w) // 2, top = (S - new_h) // 2 (top-left alignment: 0, 0).

Usage (Debian python3-torch, PIL; a few CPU minutes):

  go run ./cmd/kediff synth --output /tmp/detdata/flat --samples 1200 \
      --per-shard 400 --width 128 --height 128 --bad=false --photo=false --seed 101
  (see tools/detect/README.md for the full data recipe)
  /usr/bin/python3 tools/detect/train.py --data /tmp/detdata --out detect/testdata
"""
import argparse
import io
import json
import math
import os
import tarfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

S = 128
STRIDES = (8, 16, 32)
LABELS = ["circle", "square", "triangle", "star", "rectangle", "ellipse", "hexagon"]
C = len(LABELS)


# ---------------------------------------------------------------- data

def read_tars(folder):
    """Yields (rgb uint8 HxWx3 tensor, [(cls, x0, y0, x1, y1)], key) from
    every tar in folder, in name order."""
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".tar"):
            continue
        with tarfile.open(os.path.join(folder, name)) as tf:
            members = {m.name: m for m in tf.getmembers()}
            for mname in sorted(members):
                if not mname.endswith(".jpg"):
                    continue
                key = mname[:-4]
                jpg = tf.extractfile(members[mname]).read()
                meta = json.loads(tf.extractfile(members[key + ".json"]).read())
                img = Image.open(io.BytesIO(jpg)).convert("RGB")
                t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                t = t.reshape(img.height, img.width, 3)
                objs = [(LABELS.index(o["label"]), *o["box"]) for o in meta["objects"]]
                yield t, objs, key


def letterbox(rgb, size=S, align="center", pad=114.0):
    """rgb: uint8 or float HxWx3. Returns (float 3xSxS in 0..255, r, left, top)."""
    h, w = rgb.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(math.floor(w * r + 0.5)), int(math.floor(h * r + 0.5))
    x = rgb.permute(2, 0, 1).float()[None]
    if (nw, nh) != (w, h):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    left, top = ((size - nw) // 2, (size - nh) // 2) if align == "center" else (0, 0)
    out = torch.full((3, size, size), float(pad))
    out[:, top:top + nh, left:left + nw] = x[0]
    return out, r, left, top


def normalise(x, bgr=False, scale=1 / 255.0, mean=(0, 0, 0), std=(1, 1, 1)):
    """x: 3xSxS float pixel values (RGB). Applies the Go side's order:
    channel swap, then v*scale, then (v - mean)/std per (model) channel."""
    if bgr:
        x = x.flip(0)
    x = x * scale
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def grids():
    """(A, 2) cell top-left indices (x, y) and (A,) strides, level by level."""
    gs, ss = [], []
    for s in STRIDES:
        n = S // s
        yv, xv = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        gs.append(torch.stack([xv, yv], -1).reshape(-1, 2).float())
        ss.append(torch.full((n * n,), float(s)))
    return torch.cat(gs), torch.cat(ss)


GRID, STRIDE = grids()
A = GRID.shape[0]
# Size ranges (longest box side, input pixels) each stride learns.
RANGES = {8: (0, 36), 16: (24, 72), 32: (56, 1e9)}


def assign(objs):
    """Targets for one image: obj (A,), cls (A,) long (-1 = background),
    box (A, 4) x0, y0, x1, y1 in input pixels."""
    obj = torch.zeros(A)
    cls = torch.full((A,), -1, dtype=torch.long)
    box = torch.zeros(A, 4)
    best = torch.full((A,), 1e18)
    centres = (GRID + 0.5) * STRIDE[:, None]
    for c, x0, y0, x1, y1 in objs:
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        area = (x1 - x0) * (y1 - y0)
        lo = torch.tensor([RANGES[int(s)][0] for s in STRIDE.tolist()])
        hi = torch.tensor([RANGES[int(s)][1] for s in STRIDE.tolist()])
        in_range = (side >= lo) & (side < hi)
        radius = 1.5 * STRIDE
        near = ((centres[:, 0] - cx).abs() < radius) & ((centres[:, 1] - cy).abs() < radius)
        inside = (centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)
        pos = in_range & near & inside
        # Always the cell holding the centre, on the levels in range.
        cell = (torch.floor(cx / STRIDE) == GRID[:, 0]) & (torch.floor(cy / STRIDE) == GRID[:, 1])
        pos |= in_range & cell
        take = pos & (area < best)
        obj[take] = 1
        cls[take] = c
        box[take] = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
        best[take] = area
    return obj, cls, box


def load(folders, limit=None):
    xs, targets = [], []
    for folder in folders:
        for i, (rgb, objs, _) in enumerate(read_tars(folder)):
            if limit and i >= limit:
                break
            x, r, left, top = letterbox(rgb)
            xs.append(x.round().clamp(0, 255).to(torch.uint8))
            lb = [(c, x0 * r + left, y0 * r + top, x1 * r + left, y1 * r + top) for c, x0, y0, x1, y1 in objs]
            targets.append((assign(lb), lb))
    return torch.stack(xs), targets


# ---------------------------------------------------------------- model

def conv(ci, co, s=1):
    return nn.Sequential(nn.Conv2d(ci, co, 3, s, 1, bias=False), nn.BatchNorm2d(co), nn.SiLU())


class Head(nn.Module):
    def __init__(self, ci, hidden=32):
        super().__init__()
        self.stem = conv(ci, hidden)
        self.out = nn.Conv2d(hidden, 5 + C, 1)
        nn.init.constant_(self.out.bias[4:], -4.0)  # rare objects at start

    def forward(self, x):
        return self.out(self.stem(x))


class ShapesDet(nn.Module):
    """Returns (B, A, 5+C): raw x, y offsets, log w, h, obj logit, cls logits."""

    def __init__(self):
        super().__init__()
        self.p3 = nn.Sequential(conv(3, 16, 2), conv(16, 24, 2), conv(24, 32), conv(32, 32, 2), conv(32, 32))
        self.p4 = nn.Sequential(conv(32, 48, 2), conv(48, 48))
        self.p5 = nn.Sequential(conv(48, 64, 2), conv(64, 64))
        self.heads = nn.ModuleList([Head(32), Head(48), Head(64)])

    def forward(self, x):
        f3 = self.p3(x)
        f4 = self.p4(f3)
        f5 = self.p5(f4)
        outs = [h(f).flatten(2) for h, f in zip(self.heads, (f3, f4, f5))]
        return torch.cat(outs, 2).permute(0, 2, 1)


def decode(raw):
    """raw (B, A, 5+C) -> boxes (B, A, 4) cx, cy, w, h px, obj (B, A), cls (B, A, C) probabilities."""
    xy = (raw[..., :2] + GRID) * STRIDE[:, None]
    wh = torch.exp(raw[..., 2:4].clamp(max=8.0)) * STRIDE[:, None]
    return torch.cat([xy, wh], -1), raw[..., 4].sigmoid(), raw[..., 5:].sigmoid()


class ExportYOLOX(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        raw = self.m(x)
        return torch.cat([raw[..., :4], raw[..., 4:].sigmoid()], -1)


class ExportV5(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        raw = self.m(x)
        box, obj, cls = decode(raw)
        return torch.cat([box, obj[..., None], cls], -1)


class ExportV8(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        raw = self.m(x)
        box, obj, cls = decode(raw)
        return torch.cat([box, cls * obj[..., None]], -1).permute(0, 2, 1)


# ---------------------------------------------------------------- loss, NMS

def xyxy(b):
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def giou(a, b):
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-6)
    clt = torch.min(a[:, :2], b[:, :2])
    crb = torch.max(a[:, 2:], b[:, 2:])
    carea = (crb - clt).prod(1).clamp(min=1e-6)
    return iou - (carea - union) / carea


def loss_fn(raw, obj_t, cls_t, box_t):
    pos = obj_t > 0
    npos = max(1, int(pos.sum()))
    l_obj = F.binary_cross_entropy_with_logits(raw[..., 4], obj_t, reduction="sum") / npos
    if not pos.any():
        return l_obj
    rp = raw[pos]
    onehot = F.one_hot(cls_t[pos], C).float()
    l_cls = F.binary_cross_entropy_with_logits(rp[:, 5:], onehot, reduction="sum") / npos
    box, _, _ = decode(raw)
    l_box = (1 - giou(xyxy(box[pos]), box_t[pos])).sum() / npos
    return l_obj + l_cls + 5 * l_box


def iou_matrix(a, b):
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def nms(boxes, scores, classes, iou_thr):
    """Class-aware greedy NMS, the rule detect/ implements: candidates sorted
    by score descending (ties: lower anchor index first); a candidate is kept
    unless a kept box of the same class overlaps it with IoU > iou_thr."""
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    for i in order.tolist():
        ok = True
        for j in keep:
            if classes[j] == classes[i] and iou_matrix(boxes[i:i + 1], boxes[j:j + 1])[0, 0] > iou_thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def postprocess(box, obj, cls, conf=0.25, iou=0.45):
    """box (A, 4) cx, cy, w, h input px; obj (A,); cls (A, C). Score = obj *
    best class probability; kept when score >= conf. Returns rows
    (anchor, class, score, x0, y0, x1, y1) in input pixels."""
    best, c = cls.max(1)
    score = obj * best
    idx = torch.nonzero(score >= conf).flatten()
    b = xyxy(box[idx])
    keep = nms(b, score[idx], c[idx], iou)
    return [(int(idx[k]), int(c[idx[k]]), float(score[idx[k]]), *[float(v) for v in b[k]]) for k in keep]


def to_image(row, r, left, top, w, h):
    a, c, s, x0, y0, x1, y1 = row
    f = lambda v, lo, hi: min(max(v, lo), hi)
    return a, c, s, f((x0 - left) / r, 0, w), f((y0 - top) / r, 0, h), f((x1 - left) / r, 0, w), f((y1 - top) / r, 0, h)


# ---------------------------------------------------------------- main

def evaluate(model, folder, conf=0.25):
    model.eval()
    hit = total = false_pos = 0
    with torch.no_grad():
        for rgb, objs, _ in read_tars(folder):
            x, r, left, top = letterbox(rgb)
            box, obj, cls = decode(model(normalise(x)[None]))
            rows = [to_image(row, r, left, top, rgb.shape[1], rgb.shape[0]) for row in postprocess(box[0], obj[0], cls[0], conf)]
            used = set()
            for c, x0, y0, x1, y1 in objs:
                total += 1
                gt = torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32)
                for k, (_, pc, _, *b) in enumerate(rows):
                    if k not in used and pc == c and iou_matrix(gt, torch.tensor([b]))[0, 0] >= 0.5:
                        used.add(k)
                        hit += 1
                        break
            false_pos += len(rows) - len(used)
    return hit / max(1, total), total, false_pos


def train(args):
    torch.manual_seed(0)
    t0 = time.time()
    folders = [os.path.join(args.data, f) for f in ("flat", "photo", "wide", "tall")]
    cache = os.path.join(args.data, "train_cache.pt")
    if os.path.exists(cache):
        xs, obj_t, cls_t, box_t = torch.load(cache)
    else:
        xs, targets = load(folders)
        obj_t = torch.stack([t[0][0] for t in targets])
        cls_t = torch.stack([t[0][1] for t in targets])
        box_t = torch.stack([t[0][2] for t in targets])
        torch.save((xs, obj_t, cls_t, box_t), cache)
    print(f"loaded {len(xs)} images in {time.time() - t0:.0f}s", flush=True)
    model = ShapesDet()
    print("parameters:", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * (len(xs) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xs))
        total = 0.0
        for b in range(len(xs) // args.batch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            x = xs[idx].float() / 255.0  # the default preprocessing, batched
            # Colour jitter: brightness/contrast, so shapes on any background work.
            g = 1 + 0.2 * (torch.rand(len(idx), 1, 1, 1) - 0.5)
            x = (x * g).clamp(0, 1)
            loss = loss_fn(model(x), obj_t[idx], cls_t[idx], box_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += float(loss)
        print(f"epoch {epoch}: loss {total / (len(xs) // args.batch):.3f} ({time.time() - t0:.0f}s)", flush=True)
    torch.save(model.state_dict(), args.weights)
    return model


def export(model, out):
    model.eval()
    x = torch.zeros(1, 3, S, S)
    for name, wrapper, oname in (("shapes_yolov8.onnx", ExportV8, "output0"),
                                 ("shapes_yolov5.onnx", ExportV5, "output0"),
                                 ("shapes_yolox.onnx", ExportYOLOX, "output")):
        torch.onnx.export(wrapper(model), x, os.path.join(out, name), input_names=["images"], output_names=[oname],
                          dynamic_axes={"images": {0: "batch"}, oname: {0: "batch"}}, opset_version=13)
    with open(os.path.join(out, "shapes.names"), "w") as f:
        f.write("\n".join(LABELS) + "\n")


PREPROCESS = [
    dict(name="default", align="center", bgr=False, scale=1 / 255.0, mean=(0, 0, 0), std=(1, 1, 1), pad=114),
    dict(name="topleft_bgr_raw_meanstd", align="topleft", bgr=True, scale=1.0,
         mean=(103.53, 116.28, 123.675), std=(57.375, 57.12, 58.395), pad=0),
]


def g7(v):
    """A float32 value to 7 significant digits (short JSON, exact enough)."""
    return float(f"{float(v):.7g}")


def reference(model, args):
    """Writes ref_*.png (decoded held-out images) and reference.json."""
    model.eval()
    imgs = []
    for folder, n in (("held", 1), ("refw", 2), ("reft", 1)):
        for i, (rgb, objs, key) in enumerate(read_tars(os.path.join(args.data, folder))):
            if i >= n:
                break
            imgs.append((f"ref_{folder}_{key}.png", rgb, objs))
    ref = {"input_size": S, "labels": LABELS, "conf": 0.25, "iou": 0.45, "images": []}
    exports = {"yolov8": ExportV8(model), "yolov5": ExportV5(model), "yolox": ExportYOLOX(model)}
    for fname, rgb, objs in imgs:
        Image.fromarray(rgb.numpy()).save(os.path.join(args.out, fname))
        h, w = rgb.shape[:2]
        entry = {"file": fname, "width": w, "height": h, "truth": [list(o) for o in objs], "preprocess": [], "outputs": {}}
        for p in PREPROCESS:
            x, r, left, top = letterbox(rgb, S, p["align"], p["pad"])
            t = normalise(x, p["bgr"], p["scale"], p["mean"], p["std"])
            flat = t.flatten()
            entry["preprocess"].append({**{k: v for k, v in p.items()}, "r": r, "left": left, "top": top,
                                        "sum": float(flat.double().sum()), "every": 13,
                                        "sample": [g7(v) for v in flat[::13]]})
        x, r, left, top = letterbox(rgb)
        t = normalise(x)[None]
        with torch.no_grad():
            for layout, m in exports.items():
                out = m(t)[0]
                if layout == "yolov8":
                    box, scores = out[:4].T, out[4:].T
                    obj = torch.ones(len(box))
                    cls = scores
                else:
                    box, obj, cls = out[:, :4], out[:, 4], out[:, 5:]
                    if layout == "yolox":
                        box = torch.cat([(box[:, :2] + GRID) * STRIDE[:, None], torch.exp(box[:, 2:]) * STRIDE[:, None]], 1)
                rows = [to_image(row, r, left, top, w, h) for row in postprocess(box, obj, cls, ref["conf"], ref["iou"])]
                entry["outputs"][layout] = {"shape": list(out.shape), "data": [g7(v) for v in out.flatten()],
                                            "detections": [list(row) for row in rows]}
        ref["images"].append(entry)
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder with flat/ photo/ wide/ tall/ held/ refw/ reft/ synth tars")
    ap.add_argument("--out", default="detect/testdata")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--weights", default="/tmp/shapes_det.pt")
    ap.add_argument("--skip-train", action="store_true", help="load --weights instead of training")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.skip_train:
        model = ShapesDet()
        model.load_state_dict(torch.load(args.weights))
    else:
        model = train(args)
    for folder in ("held",):
        rec, n, fp = evaluate(model, os.path.join(args.data, folder))
        print(f"held-out {folder}: recall@0.5 {rec:.3f} of {n} objects, {fp} false positives")
    os.makedirs(args.out, exist_ok=True)
    export(model, args.out)
    reference(model, args)


if __name__ == "__main__":
    main()
