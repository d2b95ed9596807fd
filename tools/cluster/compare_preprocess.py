#!/usr/bin/env python3
"""Compares two kediff preprocess output folders: split workers vs one run.

  compare_preprocess.py A B

Both folders must hold the same files. Shards (NNNNN.parquet,
NNNNN_rejects.parquet) must be equal byte for byte. The JSON files must be
equal except for the fields that time a run, which no two runs share:

  NNNNN_stats.json  started, finished (wall-clock times), duration_s,
                    samples_per_s (the shard's processing time and rate)
  manifest.json     totals.duration_s (the sum of the shards' duration_s)

Everything else (the input URL, counts, reject reasons, file sizes, config
and its hash, version, columns, features, incomplete) must be equal.
Found by diffing two plain runs of the same input: only those fields differ.
"""

import json
import pathlib
import sys

STATS_TIMING = {"started", "finished", "duration_s", "samples_per_s"}
MANIFEST_TIMING = {("totals", "duration_s")}


def drop(obj, paths):
    for path in paths:
        o = obj
        for k in path[:-1]:
            o = o.get(k, {})
        o.pop(path[-1], None)
    return obj


def first_diff(a, b, at=""):
    """The path of the first difference between two JSON values, or None."""
    if type(a) is not type(b):
        return f"{at or '.'}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{at}.{k}: only in {'B' if k not in a else 'A'}"
            d = first_diff(a[k], b[k], f"{at}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{at}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_diff(x, y, f"{at}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{at or '.'}: {a!r} vs {b!r}"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: compare_preprocess.py A B")
    a, b = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    na = sorted(p.name for p in a.iterdir() if p.is_file())
    nb = sorted(p.name for p in b.iterdir() if p.is_file())
    bad = []
    if na != nb:
        bad.append(f"file sets differ: only in {a}: {sorted(set(na) - set(nb))}, only in {b}: {sorted(set(nb) - set(na))}")
    shards = stats = 0
    for name in sorted(set(na) & set(nb)):
        pa, pb = a / name, b / name
        if name.endswith(".parquet"):
            shards += 1
            if pa.read_bytes() != pb.read_bytes():
                bad.append(f"{name}: bytes differ ({pa.stat().st_size} vs {pb.stat().st_size} bytes)")
        elif name.endswith("_stats.json"):
            stats += 1
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            for k in STATS_TIMING:
                if k not in ja or k not in jb:
                    bad.append(f"{name}: timing field {k} missing (the list here is out of date)")
            d = first_diff(drop(ja, [(k,) for k in STATS_TIMING]), drop(jb, [(k,) for k in STATS_TIMING]))
            if d:
                bad.append(f"{name}: {d}")
        elif name == "manifest.json":
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            d = first_diff(drop(ja, MANIFEST_TIMING), drop(jb, MANIFEST_TIMING))
            if d:
                bad.append(f"{name}: {d}")
        elif pa.read_bytes() != pb.read_bytes():
            bad.append(f"{name}: bytes differ")
    if shards == 0 or "manifest.json" not in na:
        bad.append(f"{a}: no shards or no manifest.json: not a kediff preprocess output")
    if bad:
        for x in bad:
            print(f"compare_preprocess: {x}", file=sys.stderr)
        sys.exit(1)
    print(f"compare_preprocess: {a} == {b}: {shards} parquet files byte for byte, {stats} stats files and manifest.json up to timings")


if __name__ == "__main__":
    main()
