"""Reads one kediff shard with pandas (pyarrow engine), polars and Hugging Face
datasets, using no kediff code, and prints as JSON what each reader returned:
every value tagged with its Python type, so that a test can check both the
value and the type against what kediff wrote (shards' TestPythonReaders).

    read_shard.py SHARD.parquet REJECTS.parquet CACHE_DIR > read.json

CACHE_DIR is datasets' cache (a temporary folder in the test). Output:

    {"versions": {"pandas": "3.1.1", ...},
     "rows":    {"pandas":   {"schema": {column: dtype}, "rows": [{column: value}]},
                 "polars":   {...}, "datasets": {...},
                 "datasets_undecoded": {...}},   # image cast to Image(decode=False)
     "rejects": {"pandas": ..., "polars": ..., "datasets": ...}}

A value is {"type": T, "value": V}: T is the Python type ("str", "bytes",
"numpy.int32", "numpy.ndarray", "list", "dict", "None", ...); V is its JSON
form (bytes in base64, NaN as "NaN", lists and dicts of tagged values). A PIL
image is {"type": "PIL.Image.Image", "class", "format", "mode", "size",
"pixels"}, pixels being Image.tobytes() in base64. A value that datasets
fails to decode is {"type": "error", "value": "ValueError: ..."}.
"""

import base64
import json
import math
import numbers
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import PIL  # noqa: E402
import PIL.Image  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow  # noqa: E402


def type_name(v):
    t = type(v)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def tag(v):
    """v as {"type": ..., "value": ...} (see the module doc)."""
    if v is None:
        return {"type": "None"}
    if isinstance(v, PIL.Image.Image):
        return {"type": "PIL.Image.Image", "class": type(v).__name__, "format": v.format,
                "mode": v.mode, "size": list(v.size),
                "pixels": base64.b64encode(v.tobytes()).decode()}
    out = {"type": type_name(v)}
    if isinstance(v, (bool, np.bool_)):
        out["value"] = bool(v)
    elif isinstance(v, numbers.Integral):
        out["value"] = int(v)
    elif isinstance(v, numbers.Real):
        f = float(v)
        out["value"] = "NaN" if math.isnan(f) else f
    elif isinstance(v, str):
        out["value"] = v
    elif isinstance(v, (bytes, bytearray, memoryview)):
        out["value"] = base64.b64encode(bytes(v)).decode()
    elif isinstance(v, dict):
        out["value"] = {k: tag(x) for k, x in v.items()}
    elif isinstance(v, np.ndarray):
        out["dtype"] = str(v.dtype)
        out["value"] = [tag(x) for x in v]
    elif isinstance(v, (list, tuple)):
        out["value"] = [tag(x) for x in v]
    else:
        raise TypeError(f"read_shard: no JSON form for {type_name(v)}: {v!r:.80}")
    return out


def with_pandas(path):
    df = pd.read_parquet(path, engine="pyarrow")
    return {"schema": {c: str(df[c].dtype) for c in df.columns},
            "rows": [{c: tag(df[c].iloc[i]) for c in df.columns} for i in range(len(df))]}


def with_polars(path):
    df = pl.read_parquet(path)
    return {"schema": {c: str(t) for c, t in df.schema.items()},
            "rows": [{c: tag(v) for c, v in r.items()} for r in df.rows(named=True)]}


def with_datasets(path, cache, undecoded=False):
    ds = datasets.load_dataset("parquet", data_files={"train": path}, split="train", cache_dir=cache)
    if undecoded:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    rows = []
    for i in range(len(ds)):
        try:
            rows.append({c: tag(v) for c, v in ds[i].items()})
        except Exception:
            # A value that datasets cannot decode fails the whole row: read
            # the row's columns one by one to say which value it was.
            rows.append({c: datasets_value(ds, c, i) for c in ds.column_names})
    return {"schema": {c: repr(f) for c, f in ds.features.items()}, "rows": rows}


def datasets_value(ds, column, i):
    try:
        return tag(ds.select_columns([column])[i][column])
    except Exception as e:
        return {"type": "error", "value": f"{type(e).__name__}: {e}"}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    shard, rejects, cache = sys.argv[1:]
    datasets.disable_progress_bars()
    out = {
        "versions": {m.__name__: m.__version__ for m in (pd, pyarrow, pl, datasets, np, PIL)},
        "rows": {
            "pandas": with_pandas(shard),
            "polars": with_polars(shard),
            "datasets": with_datasets(shard, cache),
            "datasets_undecoded": with_datasets(shard, cache, undecoded=True),
        },
        "rejects": {
            "pandas": with_pandas(rejects),
            "polars": with_polars(rejects),
            "datasets": with_datasets(rejects, cache),
        },
    }
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
