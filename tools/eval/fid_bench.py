#!/usr/bin/env python3
"""Anchor for bench/fid: pytorch-fid 0.3.0's calculate_frechet_distance, timed.

Usage: fid_bench.py A.npz B.npz

Loads mu and sigma from both files (pytorch-fid's .npz layout), then times
one pytorch_fid.fid_score.calculate_frechet_distance call (scipy's sqrtm on
OpenBLAS's LAPACK; its threads follow OPENBLAS_NUM_THREADS, which the bench
sets). Prints one JSON line: {"fid", "seconds", "warning", "scipy",
"numpy"}. Loading and imports are not timed.

Run by bench/fid (task bench-fid) with the tools venv (.cache/venv).
"""
import contextlib
import io
import json
import sys
import time

import numpy as np
import scipy
from pytorch_fid import fid_score


def main():
    a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
    mu1, s1, mu2, s2 = a["mu"], a["sigma"], b["mu"], b["sigma"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        t0 = time.perf_counter()
        d = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
        dt = time.perf_counter() - t0
    json.dump({"fid": float(d), "seconds": dt, "warning": buf.getvalue().strip(),
               "scipy": scipy.__version__, "numpy": np.__version__}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
