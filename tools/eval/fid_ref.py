#!/usr/bin/env python3
"""Reference for eval/fid: pytorch-fid 0.3.0's statistics and distance.

Usage: fid_ref.py CASES.json  (prints a JSON list of results, one per case)

Cases:
  {"op": "stats", "features": F.npy, "out": O.npz}
      act = np.load(F) as float64 [n, dim]; saves mu = np.mean(act, axis=0),
      sigma = np.cov(act, rowvar=False) with np.savez, as pytorch-fid's
      calculate_activation_statistics computes them. Result: {}.
  {"op": "frechet", "a": A.npz, "b": B.npz}
      pytorch_fid.fid_score.calculate_frechet_distance on the arrays.
      Result: {"fid": float, "warning": printed text}.
  {"op": "paths", "a": A.npz, "b": B.npz, "dims": D}
      pytorch_fid.fid_score.calculate_fid_given_paths([A, B], ...) with the
      InceptionV3 module stubbed out (it is not used for .npz paths and would
      download weights). Result: {"fid": float}.

Run by eval/fid's tests with the tools venv (.cache/venv).
"""
import contextlib
import io
import json
import sys

import numpy as np
from pytorch_fid import fid_score


class _NoInception:
    """Stands in for pytorch-fid's InceptionV3 when both paths are .npz."""

    class _Dims(dict):
        def __missing__(self, key):
            return 3

    BLOCK_INDEX_BY_DIM = _Dims()

    def __init__(self, *args, **kwargs):
        pass

    def to(self, device):
        return self


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = []
    for c in cases:
        if c["op"] == "stats":
            act = np.load(c["features"]).astype(np.float64)
            mu = np.mean(act, axis=0)
            sigma = np.cov(act, rowvar=False)
            np.savez(c["out"], mu=mu, sigma=sigma)
            out.append({})
        elif c["op"] == "frechet":
            a, b = np.load(c["a"]), np.load(c["b"])
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                d = fid_score.calculate_frechet_distance(a["mu"], a["sigma"], b["mu"], b["sigma"])
            out.append({"fid": float(d), "warning": buf.getvalue().strip()})
        elif c["op"] == "paths":
            fid_score.InceptionV3 = _NoInception
            d = fid_score.calculate_fid_given_paths([c["a"], c["b"]], 1, "cpu", c["dims"])
            out.append({"fid": float(d)})
        else:
            raise SystemExit("unknown op %r" % c["op"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
