#!/usr/bin/python3
"""Train kediff's fixture autoencoder and export it in the Stable Diffusion ONNX layout.

Run from the repository root with Debian's python3-torch and python3-pil:

    /usr/bin/python3 tools/vae/train.py                # writes vae/testdata/

The model is a tiny AutoencoderKL look-alike: a conv encoder down to 1/8 resolution
that outputs 2*4 channels (latent mean and log-variance, then a 1x1 quant_conv as in
diffusers), and a conv decoder (1x1 post_quant_conv, nearest-neighbour upsampling)
back to RGB. It is trained briefly on 64x64 synthetic shapes images made with
`go run ./cmd/kediff synth` (flat backgrounds, seed 1) with an L2 reconstruction
loss on a latent sample plus a small KL term, and checked on a held-out set
(seed 2).

Exports (names as diffusers/optimum use them for Stable Diffusion):
  vae_encoder.onnx  sample [B,3,H,W] in [-1,1] -> latent_parameters [B,8,H/8,W/8]
                    (channels 0..3 the mean, 4..7 the log-variance: optimum's
                    current vae_encoder output; older diffusers exports emit
                    latent_sample [B,4,H/8,W/8] instead, which vae.Encoder also takes)
  vae_decoder.onnx  latent_sample [B,4,H/8,W/8] (unscaled) -> sample [B,3,H,W] in ~[-1,1]
  config.json       diffusers-style AutoencoderKL config with scaling_factor 0.18215
Reference outputs for the Go tests go to vae/testdata/refs.json: per held-out image
(saved as PNG) the encoder's latent_parameters and the decoder's PSNR.
"""
import argparse
import io
import json
import math
import os
import subprocess
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
SCALING = 0.18215


def synth(root, out, samples, seed):
    subprocess.run(["go", "run", "./cmd/kediff", "synth", "--output", out, "--samples", str(samples),
                    "--per-shard", "4000", "--width", str(SIZE), "--height", str(SIZE), "--bad=false",
                    "--lang", "en", "--photo=false", "--seed", str(seed)], cwd=root, check=True)


def read_images(folder):
    keys, imgs = [], []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".tar"):
            continue
        with tarfile.open(os.path.join(folder, name)) as tf:
            for m in tf:
                if m.name.endswith(".jpg"):
                    keys.append(m.name[:-4])
                    img = Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")
                    imgs.append(np.asarray(img, dtype=np.uint8))
    order = np.argsort(keys)
    return [keys[i] for i in order], np.stack([imgs[i] for i in order])


def to_sample(u8):
    """uint8 [N,H,W,3] -> float [N,3,H,W] in [-1,1], as vae.Encoder feeds it."""
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def conv(i, o, s=1):
    return nn.Conv2d(i, o, 3, stride=s, padding=1)


class VaeEncoder(nn.Module):
    def __init__(self, latent=4):
        super().__init__()
        self.body = nn.Sequential(
            conv(3, 24), nn.SiLU(),
            conv(24, 48, 2), nn.SiLU(), conv(48, 48), nn.SiLU(),
            conv(48, 64, 2), nn.SiLU(), conv(64, 64), nn.SiLU(),
            conv(64, 64, 2), nn.SiLU(), conv(64, 64), nn.GroupNorm(8, 64), nn.SiLU(),
            conv(64, 2 * latent))
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)

    def forward(self, sample):
        return self.quant_conv(self.body(sample))  # latent_parameters: mean, logvar


class VaeDecoder(nn.Module):
    def __init__(self, latent=4):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)
        up = lambda: nn.Upsample(scale_factor=2.0, mode="nearest")
        self.body = nn.Sequential(
            conv(latent, 64), nn.SiLU(), conv(64, 64), nn.SiLU(),
            up(), conv(64, 64), nn.SiLU(),
            up(), conv(64, 48), nn.SiLU(), conv(48, 48), nn.SiLU(),
            up(), conv(48, 24), nn.SiLU(),
            conv(24, 3))

    def forward(self, latent_sample):
        return self.body(self.post_quant_conv(latent_sample))


def psnr(a, b):
    """PSNR in dB of images in [-1,1] after mapping to [0,1] and clamping."""
    a = ((a.clamp(-1, 1) + 1) / 2).double()
    b = ((b.clamp(-1, 1) + 1) / 2).double()
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


class NaNEncoder(nn.Module):
    """A vae_encoder of the right layout whose latents are all NaN (bad-input tests)."""

    def forward(self, sample):
        x = F.avg_pool2d(sample, 8)[:, :1]
        return (x * 0 + float("nan")).expand(-1, 8, -1, -1)


def export_bad(out):
    """Writes bad/vae_encoder_nan.onnx for vae's bad-input tests."""
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    torch.onnx.export(NaNEncoder(), (torch.zeros(2, 3, SIZE, SIZE),), os.path.join(bad, "vae_encoder_nan.onnx"),
                      input_names=["sample"], output_names=["latent_parameters"], opset_version=14,
                      dynamic_axes={"sample": {0: "batch_size", 2: "height", 3: "width"},
                                    "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bad-only", action="store_true", help="only write the bad-input test models")
    ap.add_argument("--root", default=".")
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--heldout", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--data", default="", help="folder with train/ and heldout/ tars (made when empty)")
    ap.add_argument("--out", default="vae/testdata")
    args = ap.parse_args()
    torch.manual_seed(0)
    root = os.path.abspath(args.root)
    export_bad(os.path.join(root, args.out))
    if args.bad_only:
        return
    data = args.data or tempfile.mkdtemp(prefix="kediff-vae-")
    if not os.path.isdir(os.path.join(data, "train")):
        synth(root, os.path.join(data, "train"), args.samples, 1)
        synth(root, os.path.join(data, "heldout"), args.heldout, 2)
    _, tr = read_images(os.path.join(data, "train"))
    ho_keys, ho = read_images(os.path.join(data, "heldout"))
    ho_keys, ho = ho_keys[:args.heldout], ho[:args.heldout]
    x_all, x_ho = to_sample(tr), to_sample(ho)
    enc, dec = VaeEncoder(), VaeDecoder()
    params = list(enc.parameters()) + list(dec.parameters())
    print(f"params {sum(p.numel() for p in params)}", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x_all), (args.batch,))
        x = x_all[idx]
        mean, logvar = enc(x).chunk(2, 1)
        logvar = logvar.clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        rec = dec(z)
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()
        loss = F.mse_loss(rec, x) + args.kl * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            with torch.no_grad():
                p = psnr(dec(enc(x_ho).chunk(2, 1)[0]), x_ho)
            print(f"step {step} loss {loss.item():.5f} kl {kl.item():.1f} held-out PSNR mean {p.mean():.2f} "
                  f"min {p.min():.2f} {time.time() - t0:.0f}s", flush=True)

    enc.eval(), dec.eval()
    out = os.path.join(root, args.out)
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    torch.onnx.export(enc, (x_ho[:2],), os.path.join(model_dir, "vae_encoder.onnx"), input_names=["sample"],
                      output_names=["latent_parameters"], opset_version=14,
                      dynamic_axes={"sample": {0: "batch_size", 2: "height", 3: "width"},
                                    "latent_parameters": {0: "batch_size", 2: "height_latent", 3: "width_latent"}})
    with torch.no_grad():
        params_ho = enc(x_ho)
        mean = params_ho[:, :4]
        rec = dec(mean)
        p = psnr(rec, x_ho)
    torch.onnx.export(dec, (mean[:2],), os.path.join(model_dir, "vae_decoder.onnx"), input_names=["latent_sample"],
                      output_names=["sample"], opset_version=14,
                      dynamic_axes={"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
                                    "sample": {0: "batch_size", 2: "height", 3: "width"}})
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
                   "sample_size": SIZE, "scaling_factor": SCALING,
                   "kediff_note": "tiny fixture trained by tools/vae/train.py on kediff synth data"}, f, indent=1)
    img_dir = os.path.join(out, "heldout")
    os.makedirs(img_dir, exist_ok=True)
    refs = []
    for i, key in enumerate(ho_keys):
        Image.fromarray(ho[i]).save(os.path.join(img_dir, key + ".png"), optimize=True)
        refs.append({"key": key, "latent_parameters": [round(float(v), 7) for v in params_ho[i].flatten()],
                     "shape": list(params_ho[i].shape), "psnr": float(p[i])})
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump({"scaling_factor": SCALING, "samples": refs}, f)
    print(f"held-out PSNR (decode of the mean): mean {p.mean():.2f} min {p.min():.2f}; wrote {out}")


if __name__ == "__main__":
    main()
