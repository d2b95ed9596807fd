#!/usr/bin/python3
"""Writes caption/testdata/resize_ref.json: PIL's BILINEAR resize of a fixed test
image (the golden file for caption's Preprocessor resize test).

The source image is 37x23 RGB with pixel (x, y) = ((7x + 3y) % 256, (x * y) % 256,
(255 - 5x) % 256); it is resized to 16x12 (downscale) and 50x40 (upscale).
"""
import json

from PIL import Image


def source():
    w, h = 37, 23
    img = Image.new("RGB", (w, h))
    img.putdata([((7 * x + 3 * y) % 256, (x * y) % 256, (255 - 5 * x) % 256) for y in range(h) for x in range(w)])
    return img


out = {"width": 37, "height": 23, "resized": []}
for w, h in [(16, 12), (50, 40)]:
    r = source().resize((w, h), Image.BILINEAR)
    out["resized"].append({"width": w, "height": h, "rgb": [list(p) for p in r.getdata()]})
with open("caption/testdata/resize_ref.json", "w") as f:
    json.dump(out, f)
