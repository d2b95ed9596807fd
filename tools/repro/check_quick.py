#!/usr/bin/env python3
"""Checks the output of `kediff repro --quick` (task repro-toy QUICK=1) with
tools independent of kediff: REPRO.md has every section and one table row per
variant, each figure it links is a PNG that PIL opens, and every variant's
results/NAME.json holds finite scores in [0, 1] and a finite Fréchet distance
at every guidance scale of the config printed in REPRO.md.
"""
import json
import math
import re
import sys
from pathlib import Path

from PIL import Image

run = Path(sys.argv[1])
md = (run / "REPRO.md").read_text()
for section in ["## What ran", "## Knowledge ablation", "## Mixture of denoising experts",
                "## Sweep of w_a and w_l", "## Sample grids", "## Did the paper's directions hold here?"]:
    assert section in md, f"REPRO.md lacks {section!r}"
cfg = json.loads(re.search(r"Config:\n\n```json\n(.*?)\n```", md, re.S).group(1))

figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
assert len(figures) >= 4, f"only {len(figures)} figures linked"
for f in figures:
    with Image.open(run / f) as im:
        im.load()
        assert im.format == "PNG" and im.width >= 64 and im.height >= 64, (f, im.format, im.size)

names = ["noise-floor", "baseline", "textual", "object", "visual", "all"]
names += [f"experts-{n}" for n in cfg["experts"]]
names += [f"all-wa-{w:g}" for w in cfg["sweep"] if w != cfg["w_a"]]
names += [f"all-wl-{w:g}" for w in cfg["sweep"] if w != cfg["w_l"]]
for name in names:
    assert f"| `{name}` |" in md, f"REPRO.md has no row for {name}"
    res = json.loads((run / "results" / f"{name}.json").read_text())
    scales = [s["guidance"] for s in res["scales"]]
    assert scales == cfg["guidance"], (name, scales)
    for s in res["scales"]:
        assert s["images"] == cfg["held_out"] * cfg["seeds"], (name, s["images"])
        v, lo, hi = s["overall"]
        assert 0 <= lo <= v <= hi <= 1, (name, s["overall"])
        fd = s["fd"][0]
        assert fd is not None and math.isfinite(fd) and fd >= 0, (name, s["fd"])
verdicts = md.split("## Did the paper's directions hold here?")[1]
assert verdicts.count("\n- **") >= 7, "missing verdict lines"
print(f"repro quick: {len(names)} variants, {len(figures)} figures, REPRO.md ok")
