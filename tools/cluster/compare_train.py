#!/usr/bin/env python3
"""Compares a data-parallel kediff training run with a one-process run.

  compare_train.py ONE DP [--steps S] [--rtol 1e-6]

ONE and DP are kediff train --out folders of the same config, data and
steps. Checks, independently of kediff's code:

  1. metrics.jsonl of DP has exactly one line per step 1..S, in order: only
     rank 0 writes it (the file is appended to, so a DP run whose ranks all
     wrote, i.e. ran as independent processes, has S lines per rank);
  2. the per-step loss and grad_norm agree: |dp - one| <= rtol * |one|
     (grad_norm is the norm of the all-reduced gradient before clipping, so
     a sum where a mean belongs, which AdamW and clipping would hide from
     the weights, shows there); lr is equal;
  3. model.safetensors holds the same tensors (names, dtypes, shapes), each
     within rtol of the other in the 2-norm: ||dp - one|| <= rtol * ||one||.

Why the 2-norm and not the largest element: the ranks' gradients are
summed in another order than one process sums its batch, which moves them
by float32 rounding (about 1e-7 relative; the losses agree to 1e-7).
AdamW's m/sqrt(v) amplifies that for elements whose gradient changes sign
between steps, and in the zero-initialized output layers (GLIDE's
out_layers.3, proj_out), whose weights after a few steps are nothing but
those updates (about 6e-5), the largest element differs by a few 1e-6 of
the largest weight (4e-10 absolute) while the tensor as a whole agrees to
about 3e-7. Other batches (measured by changing shuffle_buffer, which is
what a wrong slice or a missing rank amounts to) move the step-1 loss by
6e-3 and tensors by up to 0.4 in the 2-norm. Both measures are printed.

t_min/t_max (the batch's timestep range) are compared too but only warned
about: they describe the logged batch, not the training.

safetensors is read by its documented layout (8-byte little-endian header
length, a JSON header of {name: {dtype, shape, data_offsets}}, raw
little-endian data) with numpy.
"""

import argparse
import json
import pathlib
import struct
import sys

import numpy as np

DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        if t["dtype"] == "BF16":
            u = np.frombuffer(data[lo:hi], dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32)
        elif t["dtype"] in DTYPES:
            a = np.frombuffer(data[lo:hi], dtype=DTYPES[t["dtype"]])
        else:
            sys.exit(f"compare_train: {path}: tensor {name}: dtype {t['dtype']} not handled")
        out[name] = (t["dtype"], a.reshape(t["shape"]))
    return out


def read_metrics(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("one")
    ap.add_argument("dp")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--rtol", type=float, default=1e-6)
    args = ap.parse_args()
    one, dp = pathlib.Path(args.one), pathlib.Path(args.dp)
    bad = []

    m1, m2 = read_metrics(one / "metrics.jsonl"), read_metrics(dp / "metrics.jsonl")
    want = list(range(1, args.steps + 1))
    if [m["step"] for m in m1] != want:
        bad.append(f"{one}/metrics.jsonl: steps {[m['step'] for m in m1]}, want {want}")
    steps2 = [m["step"] for m in m2]
    if steps2 != want:
        per = len(m2) / max(1, args.steps)
        hint = ""
        if per >= 2 and per == int(per) and sorted(steps2) == sorted(want * int(per)):
            hint = (f": every step is there {int(per)} times, so {int(per)} processes each trained the whole"
                    " run and appended to it, i.e. kediff train ran as independent processes, not one"
                    " data-parallel job whose rank 0 alone writes")
        bad.append(f"{dp}/metrics.jsonl: steps {steps2}, want {want}{hint}")
    worst_loss = 0.0
    for a, b in zip(m1, m2):
        if a["step"] != b["step"]:
            break
        for key in ("loss", "grad_norm"):
            rel = abs(b[key] - a[key]) / max(abs(a[key]), 1e-30)
            worst_loss = max(worst_loss, rel)
            if rel > args.rtol:
                bad.append(f"step {a['step']}: {key} {b[key]!r} (data-parallel) vs {a[key]!r} (one process): relative difference {rel:.3g} > {args.rtol:g}")
        if a["lr"] != b["lr"]:
            bad.append(f"step {a['step']}: lr {b['lr']!r} (data-parallel) vs {a['lr']!r} (one process)")
        if (a.get("t_min"), a.get("t_max")) != (b.get("t_min"), b.get("t_max")):
            print(f"compare_train: warning: step {a['step']}: t_min/t_max {b.get('t_min')}/{b.get('t_max')} (data-parallel)"
                  f" vs {a.get('t_min')}/{a.get('t_max')} (one process): the data-parallel metrics do not describe the global batch",
                  file=sys.stderr)

    t1, t2 = read_safetensors(one / "model.safetensors"), read_safetensors(dp / "model.safetensors")
    if sorted(t1) != sorted(t2):
        bad.append(f"model.safetensors: tensor names differ: only in one process: {sorted(set(t1) - set(t2))[:5]}, only in data-parallel: {sorted(set(t2) - set(t1))[:5]}")
    worst, worst_name, worst_inf, worst_inf_name, identical = 0.0, "", 0.0, "", 0
    for name in sorted(set(t1) & set(t2)):
        (d1, a), (d2, b) = t1[name], t2[name]
        if d1 != d2 or a.shape != b.shape:
            bad.append(f"model.safetensors: {name}: {d1}{list(a.shape)} vs {d2}{list(b.shape)}")
            continue
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        d = b64 - a64
        identical += not d.any()
        norm = float(np.linalg.norm(a64))
        rel = float(np.linalg.norm(d)) / norm if norm > 0 else float(np.linalg.norm(d))
        scale = float(np.max(np.abs(a64))) if a.size else 0.0
        rel_inf = float(np.max(np.abs(d))) / scale if scale > 0 else (float(np.max(np.abs(d))) if a.size else 0.0)
        if rel > worst:
            worst, worst_name = rel, name
        if rel_inf > worst_inf:
            worst_inf, worst_inf_name = rel_inf, name
        if rel > args.rtol:
            bad.append(f"model.safetensors: {name}{list(a.shape)}: ||dp - one|| / ||one|| = {rel:.3g} > {args.rtol:g} (largest element: {rel_inf:.3g} of max|one| = {scale:.3g})")
    print(f"compare_train: {len(t1)} tensors, {identical} bit-identical; largest relative difference"
          f" {worst:.3g} in the 2-norm ({worst_name or '-'}), {worst_inf:.3g} in the largest element ({worst_inf_name or '-'});"
          f" loss and grad_norm of {min(len(m1), len(m2))} steps within {worst_loss:.3g}")
    if bad:
        for x in bad[:20]:
            print(f"compare_train: {x}", file=sys.stderr)
        if len(bad) > 20:
            print(f"compare_train: ... and {len(bad) - 20} more", file=sys.stderr)
        sys.exit(1)
    print(f"compare_train: {dp} == {one} within {args.rtol:g}")


if __name__ == "__main__":
    main()
