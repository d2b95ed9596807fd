#!/usr/bin/python3
"""Write PyTorch reference fixtures for kediff's kernels package.

Run with Debian's python3 (python3-torch 1.13, CPU) from the repository root:

    /usr/bin/python3 tools/kernels/make_refs.py

It writes kernels/testdata/refs.json (one entry per case: op, integer/float
arguments, and for every tensor its offset and shape) and kernels/testdata/refs.bin
(all tensors, float32 little-endian, back to back). Inputs are random with a
fixed seed; outputs and gradients come from plain torch ops and autograd
(gradients for L = sum(out * dout) with a random dout), so the Go tests compare
against an independent implementation.
"""

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "kernels", "testdata")

cases = []
blob = bytearray()


def add(name, op, args, **tensors):
    entry = {"name": name, "op": op, "args": args, "tensors": {}}
    for key, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        entry["tensors"][key] = {"offset": len(blob) // 4, "shape": list(t.shape)}
        blob.extend(struct.pack("<%df" % t.numel(), *t.flatten().tolist()))
    cases.append(entry)


def leaf(*shape):
    return torch.randn(*shape, dtype=torch.float32).requires_grad_(True)


def grads(out, *inputs):
    dout = torch.randn_like(out)
    gs = torch.autograd.grad(out, inputs, dout)
    return dout, gs


# conv2d: 3x3 stride 1 and 2 with padding 1, 1x1 direct and strided.
for name, (B, C, H, W, OC, K, S, P) in {
    "conv3x3_s1": (2, 3, 8, 8, 4, 3, 1, 1),
    "conv3x3_s2_odd": (2, 4, 9, 7, 3, 3, 2, 1),
    "conv1x1": (2, 6, 5, 5, 4, 1, 1, 0),
    "conv1x1_s2": (1, 3, 6, 6, 2, 1, 2, 0),
}.items():
    x, w, b = leaf(B, C, H, W), leaf(OC, C, K, K), leaf(OC)
    y = F.conv2d(x, w, b, stride=S, padding=P)
    dy, (dx, dw, db) = grads(y, x, w, b)
    add(name, "conv2d", dict(B=B, C=C, H=H, W=W, OC=OC, K=K, stride=S, pad=P),
        inp=x, weight=w, bias=b, out=y, dout=dy, dinp=dx, dweight=dw, dbias=db)

# group norm (GLIDE uses 32 groups, eps 1e-5; smaller here).
for name, (B, C, H, W, G) in {"group_norm": (2, 8, 4, 4, 4), "group_norm_1": (1, 6, 3, 5, 1)}.items():
    x, w, b = leaf(B, C, H, W), leaf(C), leaf(C)
    x.data = x.data * 3 + 1  # non-trivial mean and variance
    y = F.group_norm(x, G, w, b, eps=1e-5)
    dy, (dx, dw, db) = grads(y, x, w, b)
    add(name, "group_norm", dict(B=B, C=C, HW=H * W, G=G), inp=x, weight=w, bias=b, out=y,
        dout=dy, dinp=dx, dweight=dw, dbias=db)

N, C = 6, 16
x, w, b = leaf(N, C), leaf(C), leaf(C)
y = F.layer_norm(x, (C,), w, b, eps=1e-5)
dy, (dx, dw, db) = grads(y, x, w, b)
add("layer_norm", "layer_norm", dict(N=N, C=C), inp=x, weight=w, bias=b, out=y, dout=dy, dinp=dx,
    dweight=dw, dbias=db)

N, C, OC = 5, 7, 9
x, w, b = leaf(N, C), leaf(OC, C), leaf(OC)
y = F.linear(x, w, b)
dy, (dx, dw, db) = grads(y, x, w, b)
add("linear", "linear", dict(N=N, C=C, OC=OC), inp=x, weight=w, bias=b, out=y, dout=dy, dinp=dx,
    dweight=dw, dbias=db)

for name, fn in {"gelu": torch.nn.GELU(), "silu": torch.nn.SiLU()}.items():
    x = leaf(64)
    x.data = x.data * 3
    y = fn(x)
    dy, (dx,) = grads(y, x)
    add(name, name, dict(n=64), inp=x, out=y, dout=dy, dinp=dx)

x = leaf(4, 10)
y = torch.softmax(x * 2, dim=-1)
dy, (dx,) = grads(y, x)
add("softmax", "softmax", dict(N=4, C=10), inp=(x * 2), out=y)

# Attention with image tokens attending to [image; text] keys, text padding
# masked out and a per-key scale s_j in {1, 1 + w_a} on the logits.
B, NH, Nq, Nt, D = 2, 2, 6, 4, 8
Nk = Nq + Nt
q, k, v = leaf(B, NH, Nq, D), leaf(B, NH, Nk, D), leaf(B, NH, Nk, D)
scale = torch.ones(B, Nk)
scale[:, :Nq] = 1.01
scale[0, Nq + 1] = 1.01
scale[1, Nq + 0] = 1.01
mask = torch.ones(B, Nk)
mask[0, Nk - 1] = 0
mask[1, Nk - 3:] = 0
logits = (q @ k.transpose(-1, -2)) * scale[:, None, None, :] / math.sqrt(D)
logits = logits.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
att = torch.softmax(logits, dim=-1)
y = att @ v
dy, (dq, dk, dv) = grads(y, q, k, v)
add("attention", "attention", dict(B=B, NH=NH, Nq=Nq, Nk=Nk, D=D), q=q, k=k, v=v, scale=scale,
    mask=mask, att=att, out=y, dout=dy, dq=dq, dk=dk, dv=dv)

x = leaf(2, 3, 6, 4)
y = F.avg_pool2d(x, 2)
dy, (dx,) = grads(y, x)
add("avg_pool", "avg_pool", dict(N=6, H=6, W=4), inp=x, out=y, dout=dy, dinp=dx)

x = leaf(2, 3, 3, 5)
y = F.interpolate(x, scale_factor=2, mode="nearest")
dy, (dx,) = grads(y, x)
add("upsample", "upsample", dict(N=6, H=3, W=5), inp=x, out=y, dout=dy, dinp=dx)

# GLIDE's timestep_embedding (nn.py), written out here.
t = torch.tensor([0.0, 1.0, 17.0, 250.0, 999.0])
for dim in (32, 33):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    a = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    add("timestep_embedding_%d" % dim, "timestep_embedding", dict(B=5, dim=dim), t=t, out=emb)

# Weighted MSE of DESIGN.md 1.4: mean over all elements of W * (eps - eps_hat)^2.
B, C, H, W = 2, 4, 4, 4
eps, eps_hat = torch.randn(B, C, H, W), leaf(B, C, H, W)
wl = torch.ones(B, H, W)
wl[0, 1:3, 1:3] = 1.1
wl[1, 0, :] = 1.1
loss = torch.mean(wl[:, None] * (eps - eps_hat) ** 2)
(dhat,) = torch.autograd.grad(loss, eps_hat)
add("weighted_mse", "weighted_mse", dict(B=B, C=C, HW=H * W), eps=eps, eps_hat=eps_hat, weight=wl,
    loss=loss.reshape(1), deps_hat=dhat)

# AdamW, 3 steps, each preceded by clip_grad_norm_(max_norm=1); the second
# step's gradients are small so that it is not clipped.
w, b = torch.randn(4, 5), torch.randn(7)
params = [torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())]
opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
tensors = {"p0": torch.cat([w.flatten(), b])}
norms = []
for step, gscale in enumerate([3.0, 0.05, 2.0], start=1):
    g = [torch.randn_like(p) * gscale for p in params]
    for p, gi in zip(params, g):
        p.grad = gi.clone()
    tensors["g%d" % step] = torch.cat([gi.flatten() for gi in g])
    norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)))
    opt.step()
    tensors["p%d" % step] = torch.cat([p.detach().flatten() for p in params])
tensors["norms"] = torch.tensor(norms)
add("adamw_clip", "adamw", dict(n=27, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01, max_norm=1.0),
    **tensors)

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "refs.bin"), "wb") as f:
    f.write(blob)
with open(os.path.join(OUT, "refs.json"), "w") as f:
    json.dump({"generator": "tools/kernels/make_refs.py", "torch": torch.__version__, "cases": cases}, f, indent=1)
print("wrote %d cases, %d floats" % (len(cases), len(blob) // 4))
