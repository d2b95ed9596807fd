#!/usr/bin/env python3
"""Checks a kediff sample output folder with PIL, as a user opens it.

    .cache/venv/bin/python tools/sample/check_outputs.py OUT

Every image of samples.jsonl must decode at the size it records and carry its
prompt, seed, steps, guidance scale and checkpoint hashes in its text chunks;
grid.png must decode. Exits 1 naming the first problem.
"""

import json
import os
import sys

from PIL import Image


def main(d):
    recs = [json.loads(line) for line in open(os.path.join(d, "samples.jsonl"), encoding="utf-8")]
    if not recs:
        sys.exit(f"{d}/samples.jsonl lists no images")
    for r in recs:
        path = os.path.join(d, r["file"])
        im = Image.open(path)
        im.load()
        if list(im.size) != [r["width"], r["height"]]:
            sys.exit(f"{path}: size {im.size}, samples.jsonl says {r['width']}x{r['height']}")
        t = im.text
        want = {"prompt": r["prompt"], "seed": str(r["seed"]), "num_inference_steps": str(r["num_inference_steps"])}
        for k, v in want.items():
            if t.get(k) != v:
                sys.exit(f"{path}: text chunk {k} = {t.get(k)!r}, want {v!r}")
        if float(t.get("guidance_scale", "nan")) != r["guidance_scale"]:
            sys.exit(f"{path}: text chunk guidance_scale = {t.get('guidance_scale')!r}, want {r['guidance_scale']}")
        for c in r["checkpoints"]:
            if c["sha256"] not in t.get("checkpoints", ""):
                sys.exit(f"{path}: no hash of {c['path']} in its checkpoints chunk")
    Image.open(os.path.join(d, "grid.png")).load()
    print(f"{d}: {len(recs)} images and grid.png decode; prompts, seeds, steps, scales and checkpoint hashes in their text chunks")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT")
    main(sys.argv[1])
