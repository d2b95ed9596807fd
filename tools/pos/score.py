#!/usr/bin/python3
"""Score POS keyword decisions and word boundaries on UD Chinese GSDSimp (dev).

Runs jieba's posseg (Debian python3-jieba) on the `# text` of every sentence of
../shared/data/zh_gsdsimp-ud-dev.conllu, scores it with the rule of
../shared/data/README.md, and writes pos/testdata/jieba_gsd_dev.json: jieba's
per-sentence words and tags plus its figures. pos/quality_test.go reads that file,
re-scores jieba's outputs in Go (the figures must agree) and fails when kediff's
keyword F1 is below jieba's.

With --kediff it also runs `go run ./cmd/kediff pos` on the same sentences and
prints kediff's figures next to jieba's.

Scoring rule: a gold word is a keyword when its UPOS is one of NOUN, PROPN, VERB,
ADJ, NUM, PRON, DET. A jieba word is a keyword when its tag starts with one of
n v a m q r (DESIGN.md 1.3); a kediff word when its keyword flag is set. Every
non-whitespace character carries its word's decision; accuracy and F1 (keyword =
positive) are over characters. Boundary F1 compares word spans over the
non-whitespace characters (words are stripped of whitespace; empty ones dropped).

Usage (from the repository root):
    /usr/bin/python3 tools/pos/score.py [--conllu PATH] [--out PATH] [--kediff]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

KEYWORD_UPOS = {"NOUN", "PROPN", "VERB", "ADJ", "NUM", "PRON", "DET"}
KEYWORD_TAG_PREFIXES = tuple("nvamqr")


def read_conllu(path):
    sents, text, words = [], None, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# text = "):
                text = line[len("# text = "):]
            elif line.startswith("#"):
                continue
            elif not line.strip():
                if words:
                    sents.append((text, words))
                text, words = None, []
            else:
                cols = line.split("\t")
                if "-" in cols[0] or "." in cols[0]:
                    continue
                words.append((cols[1], cols[3]))
    if words:
        sents.append((text, words))
    return sents


def nows(s):
    return "".join(ch for ch in s if not ch.isspace())


def score(sents, predicted):
    """predicted: per sentence, a list of (word, is_keyword)."""
    tp = fp = fn = tn = 0
    bgold = bpred = bboth = 0
    skipped = 0
    for (text, gold), pred in zip(sents, predicted):
        gchars, gspans, pos = [], set(), 0
        for w, upos in gold:
            w = nows(w)
            gspans.add((pos, pos + len(w)))
            gchars += [upos in KEYWORD_UPOS] * len(w)
            pos += len(w)
        pchars, pspans, pos = [], set(), 0
        for w, kw in pred:
            w = nows(w)
            if not w:
                continue
            pspans.add((pos, pos + len(w)))
            pchars += [kw] * len(w)
            pos += len(w)
        if len(gchars) != len(pchars):
            skipped += 1
            continue
        for g, p in zip(gchars, pchars):
            if g and p:
                tp += 1
            elif p:
                fp += 1
            elif g:
                fn += 1
            else:
                tn += 1
        bgold += len(gspans)
        bpred += len(pspans)
        bboth += len(gspans & pspans)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    bp = bboth / bpred if bpred else 0.0
    br = bboth / bgold if bgold else 0.0
    return {
        "keyword_accuracy": (tp + tn) / (tp + fp + fn + tn),
        "keyword_precision": prec,
        "keyword_recall": rec,
        "keyword_f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "boundary_precision": bp,
        "boundary_recall": br,
        "boundary_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "characters": tp + fp + fn + tn,
        "sentences_skipped": skipped,
    }


def run_jieba(texts):
    import jieba
    import jieba.posseg as pseg
    jieba.setLogLevel(60)
    jieba.initialize()
    t0 = time.perf_counter()
    out = [[(p.word, p.flag) for p in pseg.cut(t)] for t in texts]
    return out, time.perf_counter() - t0, jieba.__version__


def run_kediff(texts):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
        path = f.name
    try:
        res = subprocess.run(["go", "run", "./cmd/kediff", "pos", "--input", path],
                             capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    return [json.loads(line) for line in res.stdout.splitlines()]


def fmt(name, s):
    return (f"{name:8s} keyword acc {s['keyword_accuracy']:.4f}  F1 {s['keyword_f1']:.4f} "
            f"(P {s['keyword_precision']:.4f} R {s['keyword_recall']:.4f})  "
            f"boundary F1 {s['boundary_f1']:.4f}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conllu", default=os.path.join(root, "..", "shared", "data", "zh_gsdsimp-ud-dev.conllu"))
    ap.add_argument("--out", default=os.path.join(root, "pos", "testdata", "jieba_gsd_dev.json"))
    ap.add_argument("--kediff", action="store_true", help="also score `go run ./cmd/kediff pos`")
    args = ap.parse_args()
    if not os.path.exists(args.conllu):
        sys.exit(f"score.py: {args.conllu} not found; the reference data lives in ../shared/data beside the repository")

    sents = read_conllu(args.conllu)
    texts = [t for t, _ in sents]
    outputs, secs, version = run_jieba(texts)
    jscore = score(sents, [[(w, t.startswith(KEYWORD_TAG_PREFIXES)) for w, t in o] for o in outputs])
    print(fmt("jieba", jscore))

    doc = {
        "source": "UD_Chinese-GSDSimp zh_gsdsimp-ud-dev.conllu (CC BY-SA 4.0)",
        "made_by": "tools/pos/score.py with Debian python3-jieba " + version,
        "rule": "gold keyword: UPOS in NOUN PROPN VERB ADJ NUM PRON DET; jieba keyword: tag starts with n v a m q r; per non-whitespace character",
        "sentences": len(sents),
        "jieba": jscore,
        "outputs": [[[w, t] for w, t in o] for o in outputs],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(args.out)}")

    if args.kediff:
        lines = run_kediff(texts)
        kscore = score(sents, [list(zip(l["words"], l["keyword"])) for l in lines])
        print(fmt("kediff", kscore))


if __name__ == "__main__":
    main()
