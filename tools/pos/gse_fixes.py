#!/usr/bin/python3
"""Write pos/dict/gse_fixes.txt: the single-character entries of gse's embedded
simplified-Chinese dictionary (data/dict/zh/s_1.txt) that differ from jieba's
dictionary, with jieba's frequency and tag.

gse's dictionary derives from jieba's, but several hundred of its single-character
entries carry a placeholder tag (zg) and a tiny frequency (为 100 zg; jieba: 为 295952
p). The POS stage loads this file over gse's dictionary, which restores both the tags
and the segmentation those frequencies drive.

jieba's dictionary: Debian python3-jieba, /usr/lib/python3/dist-packages/jieba/dict.txt
(MIT license, https://github.com/fxsjy/jieba).

Usage (from the repository root):
    /usr/bin/python3 tools/pos/gse_fixes.py [--gse PATH] [--jieba PATH] [--out PATH]
"""
import argparse
import glob
import os


def read(path):
    d = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            f3 = line.split()
            if len(f3) >= 3:
                d[f3[0]] = (f3[1], f3[2])
    return d


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    gses = sorted(glob.glob(os.path.expanduser("~/go/pkg/mod/github.com/go-ego/gse@*/data/dict/zh/s_1.txt")))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gse", default=gses[-1] if gses else None, help="gse's data/dict/zh/s_1.txt")
    ap.add_argument("--jieba", default="/usr/lib/python3/dist-packages/jieba/dict.txt")
    ap.add_argument("--out", default=os.path.join(root, "pos", "dict", "gse_fixes.txt"))
    args = ap.parse_args()
    if not args.gse:
        raise SystemExit("gse_fixes.py: gse's dictionary not found; run `go mod download github.com/go-ego/gse` or pass --gse")
    g, j = read(args.gse), read(args.jieba)
    fixes = sorted((w, j[w]) for w in g if len(w) == 1 and w in j and g[w] != j[w])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("# Made by tools/pos/gse_fixes.py: single characters of gse's dictionary with\n")
        f.write("# jieba's frequency and tag (jieba dict.txt, MIT license). Do not edit.\n")
        for w, (freq, tag) in fixes:
            f.write(f"{w} {freq} {tag}\n")
    print(f"wrote {len(fixes)} entries to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
