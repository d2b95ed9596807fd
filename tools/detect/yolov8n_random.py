#!/usr/bin/python3
"""Exports a detector of YOLOv8n's size and shape with random weights, for
the production-scale row of bench/models (task bench-models -model
detect640). Nothing it writes is committed: the file goes to .cache/.

The network follows Ultralytics' yolov8n.yaml (depth 0.33, width 0.25, 80
classes): Conv(3x3, stride 2)-BN-SiLU stem, C2f stages with 1/2/2/1
bottlenecks at strides 4-32, SPPF, the FPN/PAN neck, and the decoupled head
(box branch: 4*16 DFL bins decoded to distances; class branch: sigmoid).
BatchNorm is folded away (a biased convolution), as in an inference export.
About 3.2M parameters and 8.7 GFLOPs per 640x640 image, like yolov8n.

Weights are random (seeded); the class biases take YOLOv8's prior
initialisation, log(5 / nc / (640 / s)^2), so scores stay low: on the
bench's images no anchor reaches the detector's default confidence 0.25, and
NMS has nothing to sort. At this scale that is in the noise either way (a
trained model keeps a handful of boxes; the fixture row of the bench
measures decoding and NMS on real detections).

Output: images [N,3,640,640] -> output0 [N, 84, 8400] (cx, cy, w, h in input
pixels, then 80 class scores), detect's --format yolov8.

Usage: /usr/bin/python3 tools/detect/yolov8n_random.py [out.onnx]
(default .cache/models/yolov8n_random.onnx; Debian python3-torch).
"""
import math
import os
import sys

import torch
import torch.nn as nn

NC, REG = 80, 16
STRIDES = (8, 16, 32)


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=True)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1, c2, n, shortcut):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2):
        super().__init__()
        c = c1 // 2
        self.cv1, self.cv2 = Conv(c1, c), Conv(4 * c, c2)
        self.m = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


class YOLOv8n(nn.Module):
    def __init__(self):
        super().__init__()
        # Backbone: channels 16, 32, 64, 128, 256 (width 0.25).
        self.b0, self.b1 = Conv(3, 16, 3, 2), Conv(16, 32, 3, 2)
        self.b2 = C2f(32, 32, 1, True)
        self.b3, self.b4 = Conv(32, 64, 3, 2), C2f(64, 64, 2, True)
        self.b5, self.b6 = Conv(64, 128, 3, 2), C2f(128, 128, 2, True)
        self.b7, self.b8 = Conv(128, 256, 3, 2), C2f(256, 256, 1, True)
        self.b9 = SPPF(256, 256)
        # Neck.
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.n12 = C2f(256 + 128, 128, 1, False)
        self.n15 = C2f(128 + 64, 64, 1, False)
        self.n16 = Conv(64, 64, 3, 2)
        self.n18 = C2f(64 + 128, 128, 1, False)
        self.n19 = Conv(128, 128, 3, 2)
        self.n21 = C2f(128 + 256, 256, 1, False)
        # Head.
        c2, c3 = max(16, 64 // 4, REG * 4), max(64, min(NC, 100))
        self.box = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG, 1)) for c in (64, 128, 256))
        self.cls = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, NC, 1)) for c in (64, 128, 256))
        for seq, s in zip(self.cls, STRIDES):
            nn.init.constant_(seq[-1].bias, math.log(5 / NC / (640 / s) ** 2))
        self.register_buffer("proj", torch.arange(REG, dtype=torch.float32))

    def forward(self, x):
        x = self.b2(self.b1(self.b0(x)))
        p3 = self.b4(self.b3(x))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        h4 = self.n12(torch.cat([self.up(p5), p4], 1))
        h3 = self.n15(torch.cat([self.up(h4), p3], 1))
        h4 = self.n18(torch.cat([self.n16(h3), h4], 1))
        h5 = self.n21(torch.cat([self.n19(h4), p5], 1))
        boxes, scores = [], []
        for i, (f, s) in enumerate(zip((h3, h4, h5), STRIDES)):
            n, _, h, w = f.shape
            d = self.box[i](f).view(n, 4, REG, h * w).softmax(2)
            d = (d * self.proj.view(1, 1, REG, 1)).sum(2)  # DFL: expected distance, in cells
            gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
            ax, ay = (gx.reshape(-1) + 0.5), (gy.reshape(-1) + 0.5)
            x0, y0, x1, y1 = ax - d[:, 0], ay - d[:, 1], ax + d[:, 2], ay + d[:, 3]
            boxes.append(torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], 1) * s)
            scores.append(self.cls[i](f).view(n, NC, h * w).sigmoid())
        return torch.cat([torch.cat(boxes, 2), torch.cat(scores, 2)], 1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".cache/models/yolov8n_random.onnx"
    torch.manual_seed(8)
    m = YOLOv8n().eval()
    print("parameters: %.2fM" % (sum(p.numel() for p in m.parameters()) / 1e6))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    x = torch.zeros(1, 3, 640, 640)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (1, 4 + NC, 8400), y.shape
    torch.onnx.export(m, x, out + ".tmp", input_names=["images"], output_names=["output0"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, opset_version=13)
    os.replace(out + ".tmp", out)
    print("wrote", out)


if __name__ == "__main__":
    main()
