#!/usr/bin/env python3
"""An independent rerun of one kediff sample batch: PyTorch and diffusers.

    .cache/venv/bin/python tools/sample/reference.py LATENTS.safetensors OUT.safetensors

LATENTS is a latents-NNNNN.safetensors file of `kediff sample --save-latents`:
x_T, the model's tokens and mask (unconditional half first), the timesteps,
any step noise, and in its metadata the scheduler options, the guidance scale
and the checkpoints with their timestep blocks. This script builds each
checkpoint with tools/train/reference.py's Text2ImUNet (PyTorch, strict
load of model.safetensors), the scheduler with diffusers (DDIMScheduler or
DDPMScheduler from the checkpoint's train_config.json schedule), and runs the
loop: every timestep on the expert whose block holds it (else the base),
both guidance halves in one batch, eps = eps_u + s (eps_c - eps_u). OUT gets
x_0 and the routing (per step, the index of the checkpoint used).
"""

import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
import reference as ref  # noqa: E402  (tools/train/reference.py)

import diffusers.schedulers.scheduling_ddpm as ddpm_module  # noqa: E402
from diffusers import DDIMScheduler, DDPMScheduler  # noqa: E402


def main(inp, out):
    with safe_open(inp, "pt") as f:
        meta = f.metadata()
    t = load_file(inp)
    cks = json.loads(meta["checkpoints"])
    models, sched_cfg = [], None
    for c in cks:
        with open(os.path.join(c["path"], "config.json")) as f:
            cfg = json.load(f)
        m = ref.Text2ImUNet(cfg)
        m.load_state_dict(ref.read_safetensors(os.path.join(c["path"], "model.safetensors")), strict=True)
        m.eval()
        models.append(m)
        with open(os.path.join(c["path"], "train_config.json")) as f:
            tc = json.load(f)
        sched_cfg = tc
    kind = {"cosine": "squaredcos_cap_v2"}.get(sched_cfg["schedule"], sched_cfg["schedule"])
    common = dict(num_train_timesteps=sched_cfg["timesteps"], beta_start=sched_cfg["beta_start"],
                  beta_end=sched_cfg["beta_end"], beta_schedule=kind, clip_sample=False,
                  prediction_type="epsilon", timestep_spacing=meta["timestep_spacing"],
                  steps_offset=int(meta["steps_offset"]))
    if meta["scheduler"] == "ddim":
        s = DDIMScheduler(set_alpha_to_one=meta["set_alpha_to_one"] == "true", **common)
    else:
        s = DDPMScheduler(variance_type="fixed_small", **common)
    s.set_timesteps(int(meta["num_inference_steps"]))
    assert torch.equal(s.timesteps, t["timesteps"]), (s.timesteps, t["timesteps"])
    eta, scale = float(meta["eta"]), float(meta["guidance_scale"])
    guided = meta["halves"] == "unconditional,conditional"
    x = t["x_T"].clone()
    B = x.shape[0]
    tokens, mask = t["tokens"], t["mask"].bool()
    zero_w = torch.zeros(tokens.shape[0])
    no_kw = torch.zeros_like(mask)
    noise = dict(zip(t["noise_timesteps"].tolist(), t["noise"])) if "noise" in t else {}
    route = []
    with torch.no_grad():
        for ts in s.timesteps.tolist():
            k = next((i for i, c in enumerate(cks) if c["role"] == "expert" and c["block"][0] <= ts < c["block"][1]), None)
            if k is None:
                k = next(i for i, c in enumerate(cks) if c["role"] == "base")
            route.append(k)
            xin = torch.cat([x, x]) if guided else x
            eps = models[k](xin, torch.full((xin.shape[0],), float(ts)), tokens, mask, zero_w, no_kw)
            if guided:
                u, c = eps[:B], eps[B:]
                eps = u + scale * (c - u)
            if meta["scheduler"] == "ddim":
                # kediff draws no noise where sigma is 0 (the last step); diffusers adds 0 * z
                kw = {"variance_noise": noise.get(ts, torch.zeros_like(x))} if eta > 0 else {}
                x = s.step(eps, ts, x, eta=eta, **kw).prev_sample
            else:
                if ts in noise:
                    ddpm_module.randn_tensor = lambda *a, _z=noise[ts], **kw: _z
                x = s.step(eps, ts, x).prev_sample
    save_file({"x_0": x.contiguous(), "route": torch.tensor(route, dtype=torch.int64)}, out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} LATENTS.safetensors OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
