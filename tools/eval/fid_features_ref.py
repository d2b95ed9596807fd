#!/usr/bin/env python3
"""Reference for eval/fid's Extractor: clean-fid's "clean" preprocessing and
pytorch-fid's layout, in PyTorch.

Usage: fid_features_ref.py OUT.f32 IMAGE...

Each image is read with PIL and converted with .convert("RGB") (as pytorch-fid
and clean-fid read files), each channel resized to 299x299 as a mode "F" image
with Image.BICUBIC, clipped to [0, 255], divided by 255 (clean-fid's
make_resizer("PIL", False, "bicubic", (299, 299))), then run through
TinyInception (seed 0, the module exported as
eval/fid/testdata/tiny_inception.onnx). Writes the [n, 2048] features as
little-endian float32. Run by eval/fid's tests with Debian's python3-torch.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_inception import tiny_inception  # noqa: E402

S = 299


def clean_resize(img):
    x = np.asarray(img)
    chans = []
    for c in range(3):
        p = Image.fromarray(x[:, :, c].astype(np.float32), mode="F")
        p = p.resize((S, S), resample=Image.BICUBIC)
        chans.append(np.asarray(p).clip(0, 255).reshape(S, S, 1))
    return np.concatenate(chans, axis=2).astype(np.float32)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    batch = np.stack([clean_resize(Image.open(p).convert("RGB")) for p in paths])
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()) / 255
    with torch.no_grad():
        f = tiny_inception()(x)
    f.reshape(len(paths), -1).numpy().astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
