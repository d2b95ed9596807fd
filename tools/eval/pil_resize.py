#!/usr/bin/env python3
"""Reference for eval/pilresize: resizes raw planes with Pillow.

Usage: pil_resize.py CASES.json

CASES.json is a list of {"mode": "F" | "RGB", "sw", "sh", "dw", "dh",
"filter": "bilinear" | "bicubic", "src": path, "dst": path}. src holds sw*sh
little-endian float32 values (mode F) or sw*sh*3 bytes of interleaved RGB
(mode RGB); dst receives the resized pixels in the same layout, computed as
Image.fromarray(x, mode).resize((dw, dh), resample). Run by
eval/pilresize's tests with Debian's python3-pil and numpy.
"""
import json
import sys

import numpy as np
from PIL import Image

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for c in cases:
        if c["mode"] == "F":
            x = np.fromfile(c["src"], dtype="<f4").reshape(c["sh"], c["sw"])
            img = Image.fromarray(x, mode="F")
        else:
            x = np.fromfile(c["src"], dtype=np.uint8).reshape(c["sh"], c["sw"], 3)
            img = Image.fromarray(x, mode="RGB")
        out = np.asarray(img.resize((c["dw"], c["dh"]), resample=FILTERS[c["filter"]]))
        if c["mode"] == "F":
            out = out.astype("<f4")
        out.tofile(c["dst"])


if __name__ == "__main__":
    main()
