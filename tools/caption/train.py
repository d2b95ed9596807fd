#!/usr/bin/python3
"""Train kediff's fixture captioner and export it as a vision-encoder-decoder ONNX pair.

Run from the repository root with Debian's python3-torch and python3-pil:

    /usr/bin/python3 tools/caption/train.py            # writes caption/testdata/model/ and refs

What it does:
  1. generates English synthetic shapes data with `go run ./cmd/kediff synth`
     (64x64, flat backgrounds, no broken samples): a training set (seed 1) and a
     held-out set (seed 2, never seen in training);
  2. trains a tiny captioner: a CNN encoder whose 8x8 feature map plus a learned
     position embedding is the `last_hidden_state` [B, 64, D], and a 2-layer
     pre-LayerNorm transformer decoder (causal self-attention, cross-attention to
     the encoder states) that predicts the next WordPiece token;
  3. exports the Hugging Face vision-encoder-decoder layout:
       encoder_model.onnx   pixel_values [B,3,H,W] float32 -> last_hidden_state [B,S,D]
       decoder_model.onnx   input_ids [B,L] int64, encoder_hidden_states [B,S,D]
                            -> logits [B,L,V]
     with dynamic batch and sequence axes, plus config.json (decoder_start/bos/eos/pad
     token ids), preprocessor_config.json (ViTImageProcessor fields) and a
     tokenizer.json (WordPiece, BertNormalizer, BertPreTokenizer) in the format of the
     Hugging Face tokenizers library;
  4. writes the held-out images as PNG (the pixels PIL decoded, so Go sees the same
     input) and PyTorch's greedy and beam (width 3) decodes of them to
     caption/testdata/refs.json.

Beam search (the rule caption.Generate implements): every live beam proposes its
2*K best next tokens; candidates are ranked by summed log-probability (ties: beam
order, then token rank); walking that list, a candidate ranked among the first K
that ends in EOS is a finished hypothesis scored sum/len**length_penalty (len =
generated tokens including EOS), any other non-EOS candidate becomes a live beam
until K are live. Search stops when K hypotheses have finished or at max_length
(live beams then count as finished). The best-scoring hypothesis wins.
"""
import argparse
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

torch.set_num_threads(1)

SIZE = 64
D = 96  # model width
MAX_LEN = 24  # tokens after the start token, EOS included
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def synth(root, out, samples, seed):
    subprocess.run(["go", "run", "./cmd/kediff", "synth", "--output", out, "--samples", str(samples),
                    "--per-shard", "4000", "--width", str(SIZE), "--height", str(SIZE), "--bad=false",
                    "--lang", "en", "--photo=false", "--seed", str(seed)], cwd=root, check=True)


def read_tars(folder):
    """Returns keys, uint8 images [N,H,W,3] and English captions from WebDataset tars."""
    keys, imgs, caps = [], [], []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".tar"):
            continue
        members = {}
        with tarfile.open(os.path.join(folder, name)) as tf:
            for m in tf:
                key, ext = m.name.rsplit(".", 1)
                members.setdefault(key, {})[ext] = tf.extractfile(m).read()
        for key in sorted(members):
            m = members[key]
            img = Image.open(io.BytesIO(m["jpg"])).convert("RGB")
            keys.append(key)
            imgs.append(np.asarray(img, dtype=np.uint8))
            caps.append(json.loads(m["json"])["caption_en"])
    return keys, np.stack(imgs), caps


def words(text):
    """BertPreTokenizer on lowercased text: split on whitespace and punctuation."""
    out, cur = [], ""
    for ch in text.lower():
        if ch.isspace():
            if cur:
                out.append(cur)
            cur = ""
        elif not ch.isalnum():
            if cur:
                out.append(cur)
            out.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def build_vocab(caps):
    ws = sorted({w for c in caps for w in words(c)})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    # Single letters and ##letters let WordPiece spell any lowercase word.
    vocab = list(SPECIAL) + ws
    for x in letters + ["##" + l for l in letters] + [str(d) for d in range(10)]:
        if x not in vocab:
            vocab.append(x)
    return vocab


def tokenizer_json(vocab):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, t in enumerate(SPECIAL)],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [CLS], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [SEP], "tokens": ["[SEP]"]}},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}},
    }


def encode(text, ids):
    return [ids[w] for w in words(text)]


class Encoder(nn.Module):
    """CNN: 64x64 -> 8x8 grid of D-dim tokens plus a learned position embedding."""

    def __init__(self, d=D):
        super().__init__()
        chans = [3, 24, 48, 96, d]
        layers = []
        for i in range(3):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1), nn.BatchNorm2d(chans[i + 1]),
                       nn.GELU(), nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1), nn.BatchNorm2d(chans[i + 1]),
                       nn.GELU()]
        layers += [nn.Conv2d(chans[3], d, 1)]
        self.net = nn.Sequential(*layers)
        self.pos = nn.Parameter(torch.randn(1, 64, d) * 0.02)
        self.norm = nn.LayerNorm(d)

    def forward(self, pixel_values):
        h = self.net(pixel_values)  # [B, D, 8, 8]
        h = h.flatten(2).transpose(1, 2)  # [B, 64, D]
        return self.norm(h + self.pos)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)

    def forward(self, x, ctx, mask=None):
        b, n, d = x.shape
        m = ctx.shape[1]
        q = self.q(x).reshape(b, n, self.h, d // self.h).transpose(1, 2)
        k, v = self.kv(ctx).reshape(b, m, 2, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // self.h))
        if mask is not None:
            a = a + mask
        a = a.softmax(-1)
        return self.o((a @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = Attention(d, heads)
        self.cross_attn = Attention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x, enc, mask):
        h = self.ln1(x)
        x = x + self.self_attn(h, h, mask)
        x = x + self.cross_attn(self.ln2(x), enc)
        return x + self.mlp(self.ln3(x))


class Decoder(nn.Module):
    def __init__(self, vocab, d=D, layers=2, heads=4, max_pos=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_pos, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids, encoder_hidden_states):
        n = input_ids.shape[1]
        i = torch.arange(n, device=input_ids.device)
        # Causal mask built from comparisons so that the exported graph keeps L dynamic.
        mask = (i[None, :] > i[:, None]).float() * -1e9
        x = self.tok(input_ids) + self.pos(i)[None]
        for b in self.blocks:
            x = b(x, encoder_hidden_states, mask)
        return self.head(self.ln(x))


def pixel_values(imgs_u8):
    x = torch.from_numpy(imgs_u8).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5


@torch.no_grad()
def greedy(enc, dec, pv, max_len=MAX_LEN):
    h = enc(pv)
    ids = torch.full((pv.shape[0], 1), CLS, dtype=torch.long)
    done = torch.zeros(pv.shape[0], dtype=torch.bool)
    for _ in range(max_len):
        nxt = dec(ids, h)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        ids = torch.cat([ids, nxt[:, None]], 1)
        done |= nxt == SEP
        if done.all():
            break
    out = []
    for row in ids[:, 1:].tolist():
        seq = []
        for t in row:
            seq.append(t)
            if t == SEP:
                break
        out.append(seq)
    return out


@torch.no_grad()
def beam(enc, dec, pv1, k=3, max_len=MAX_LEN, length_penalty=1.0):
    """Beam search for one image (pv1 [1,3,H,W]); see the module doc for the rule."""
    h = enc(pv1)
    beams = [([CLS], 0.0)]
    finished = []
    for _ in range(max_len):
        ids = torch.tensor([b[0] for b in beams], dtype=torch.long)
        logp = F.log_softmax(dec(ids, h.expand(len(beams), -1, -1))[:, -1].double(), -1)
        cands = []
        for bi, (seq, s) in enumerate(beams):
            top = torch.topk(logp[bi], 2 * k)
            for r, (lp, t) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
                cands.append((s + lp, bi, r, t))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        live = []
        for rank, (s, bi, _, t) in enumerate(cands):
            seq = beams[bi][0] + [t]
            if t == SEP:
                if rank < k:
                    finished.append((seq, s / (len(seq) - 1) ** length_penalty))
            else:
                live.append((seq, s))
            if len(live) == k:
                break
        beams = live
        if len(finished) >= k:
            break
    else:
        for seq, s in beams:
            finished.append((seq, s / (len(seq) - 1) ** length_penalty))
    best = max(finished, key=lambda f: f[1])  # first maximum on ties
    return best[0][1:], best[1]


def detok(ids, vocab):
    toks = [vocab[t] for t in ids if t not in (PAD, CLS, SEP)]
    s = ""
    for i, t in enumerate(toks):
        if t.startswith("##"):
            s += t[2:]
        else:
            s += (" " if i else "") + t
    return s.replace(" ,", ",")


class NaNEncoder(nn.Module):
    """An encoder of the right layout whose hidden states are all NaN (bad-input tests)."""

    def forward(self, pixel_values):
        x = pixel_values.flatten(1)[:, :1, None]  # [B, 1, 1]
        return (x * 0 + float("nan")).expand(-1, 64, D)


def export_bad(out):
    """Writes bad/encoder_nan.onnx for caption's bad-input tests."""
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    torch.onnx.export(NaNEncoder(), (torch.zeros(2, 3, SIZE, SIZE),), os.path.join(bad, "encoder_nan.onnx"),
                      input_names=["pixel_values"], output_names=["last_hidden_state"], opset_version=14,
                      dynamic_axes={"pixel_values": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bad-only", action="store_true", help="only write the bad-input test models")
    ap.add_argument("--root", default=".")
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--data", default="", help="folder with train/ and heldout/ tars (made when empty)")
    ap.add_argument("--out", default="caption/testdata")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    root = os.path.abspath(args.root)
    export_bad(os.path.join(root, args.out))
    if args.bad_only:
        return
    data = args.data or tempfile.mkdtemp(prefix="kediff-caption-")
    if not os.path.isdir(os.path.join(data, "train")):
        synth(root, os.path.join(data, "train"), args.samples, 1)
        synth(root, os.path.join(data, "heldout"), args.heldout, 2)
    _, tr_imgs, tr_caps = read_tars(os.path.join(data, "train"))
    ho_keys, ho_imgs, ho_caps = read_tars(os.path.join(data, "heldout"))
    vocab = build_vocab(tr_caps)
    ids = {t: i for i, t in enumerate(vocab)}
    seqs = [[CLS] + encode(c, ids) + [SEP] for c in tr_caps]
    L = max(len(s) for s in seqs)
    assert L <= MAX_LEN + 1, L
    tgt = torch.full((len(seqs), L), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        tgt[i, :len(s)] = torch.tensor(s)
    x_all = pixel_values(tr_imgs)
    enc, dec = Encoder(), Decoder(len(vocab))
    params = list(enc.parameters()) + list(dec.parameters())
    print(f"vocab {len(vocab)}, params {sum(p.numel() for p in params)}, max len {L}", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    n = len(seqs)
    steps = args.epochs * (n // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    t0, step = time.time(), 0
    for ep in range(args.epochs):
        enc.train(), dec.train()
        perm = torch.randperm(n)
        tot = 0.0
        for b in range(n // args.batch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            x, y = x_all[idx], tgt[idx]
            logits = dec(y[:, :-1], enc(x))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1), ignore_index=PAD)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            tot += loss.item()
            if step % 50 == 0:
                print(f"ep {ep} step {step}/{steps} loss {tot / (b + 1):.4f} {time.time() - t0:.0f}s", flush=True)
        enc.eval(), dec.eval()
        got = greedy(enc, dec, pixel_values(ho_imgs))
        exact = sum(detok(g, vocab) == c for g, c in zip(got, ho_caps))
        print(f"epoch {ep}: held-out greedy exact {exact}/{len(ho_caps)}", flush=True)

    enc.eval(), dec.eval()
    out = os.path.join(root, args.out)
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    pv = pixel_values(ho_imgs[:2])
    torch.onnx.export(enc, (pv,), os.path.join(model_dir, "encoder_model.onnx"), input_names=["pixel_values"],
                      output_names=["last_hidden_state"], opset_version=14,
                      dynamic_axes={"pixel_values": {0: "batch_size"},
                                    "last_hidden_state": {0: "batch_size", 1: "encoder_sequence_length"}})
    with torch.no_grad():
        hs = enc(pv)
    ids_ex = torch.tensor([[CLS, 5, 6], [CLS, 7, 8]], dtype=torch.long)
    torch.onnx.export(dec, (ids_ex, hs), os.path.join(model_dir, "decoder_model.onnx"),
                      input_names=["input_ids", "encoder_hidden_states"], output_names=["logits"], opset_version=14,
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
                                    "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
                                    "logits": {0: "batch_size", 1: "decoder_sequence_length"}})
    with open(os.path.join(model_dir, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(vocab), f, ensure_ascii=False, indent=1)
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "ViTImageProcessor", "do_resize": True,
                   "size": {"height": SIZE, "width": SIZE}, "resample": 2, "do_rescale": True,
                   "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5]}, f, indent=1)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"model_type": "vision-encoder-decoder", "architectures": ["VisionEncoderDecoderModel"],
                   "decoder_start_token_id": CLS, "bos_token_id": CLS, "eos_token_id": SEP, "pad_token_id": PAD,
                   "max_length": MAX_LEN, "num_beams": 3, "length_penalty": 1.0,
                   "encoder": {"hidden_size": D, "image_size": SIZE, "num_channels": 3},
                   "decoder": {"vocab_size": len(vocab), "hidden_size": D, "max_position_embeddings": 32},
                   "kediff_note": "tiny fixture trained by tools/caption/train.py on kediff synth data"}, f, indent=1)

    # Held-out images and PyTorch's reference decodes.
    img_dir = os.path.join(out, "heldout")
    os.makedirs(img_dir, exist_ok=True)
    refs = []
    pv_all = pixel_values(ho_imgs)
    g_all = greedy(enc, dec, pv_all)
    for i, key in enumerate(ho_keys):
        Image.fromarray(ho_imgs[i]).save(os.path.join(img_dir, key + ".png"), optimize=True)
        b_ids, b_score = beam(enc, dec, pv_all[i:i + 1])
        refs.append({"key": key, "caption": ho_caps[i], "greedy_ids": g_all[i], "greedy": detok(g_all[i], vocab),
                     "beam_ids": b_ids, "beam": detok(b_ids, vocab), "beam_score": b_score})
    with torch.no_grad():
        hs = enc(pv_all[:4])
        lg = dec(torch.tensor([[CLS] + g_all[0][:3]] * 4, dtype=torch.long), hs)
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump({"max_length": MAX_LEN, "num_beams": 3, "length_penalty": 1.0,
                   "encoder_first4_sum": float(hs.double().sum()), "decoder_logits_first4_sum": float(lg.double().sum()),
                   "samples": refs}, f, ensure_ascii=False, indent=1)
    ge = sum(r["greedy"] == r["caption"] for r in refs)
    be = sum(r["beam"] == r["caption"] for r in refs)
    print(f"held-out exact: greedy {ge}/{len(refs)}, beam {be}/{len(refs)}; wrote {out}")


if __name__ == "__main__":
    main()
