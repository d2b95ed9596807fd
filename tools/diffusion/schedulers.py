#!/usr/bin/env python3
"""diffusers' DDIMScheduler and DDPMScheduler as the reference for package diffusion.

Run with the tools venv (task setup makes .cache/venv with the pinned diffusers):

    .cache/venv/bin/python tools/diffusion/schedulers.py IN.safetensors OUT.safetensors

IN's metadata "cases" is a JSON list; case k has the keys scheduler (ddim |
ddpm), schedule (scaled_linear | linear | cosine), beta_start, beta_end, T,
spacing, offset, set_alpha_to_one, eta, steps and dtype (float32 | float64),
and IN holds k.x, k.eps, k.noise, each [steps, n]: for the i-th inference
timestep, the sample x_t, the model output and the noise z. OUT gets
k.timesteps (I64), k.prev (diffusers' prev_sample of each step, computed
independently from the listed inputs) and k.x0 (pred_original_sample).

float32 cases use the schedulers as diffusers builds them (float32 betas and
cumulative products). float64 cases replace betas, alphas and alphas_cumprod
by the same formulas in float64 (for cosine: betas_for_alpha_bar without its
final float32 cast), so the comparison measures the step itself.
"""

import json
import math
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

import diffusers.schedulers.scheduling_ddpm as ddpm_module
from diffusers import DDIMScheduler, DDPMScheduler


def betas64(c):
    T = c["T"]
    if c["schedule"] == "scaled_linear":
        return torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, T, dtype=torch.float64) ** 2
    if c["schedule"] == "linear":
        return torch.linspace(c["beta_start"], c["beta_end"], T, dtype=torch.float64)

    def alpha_bar_fn(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - alpha_bar_fn((i + 1) / T) / alpha_bar_fn(i / T), 0.999) for i in range(T)],
                        dtype=torch.float64)


def make(c):
    kind = {"cosine": "squaredcos_cap_v2"}.get(c["schedule"], c["schedule"])
    common = dict(num_train_timesteps=c["T"], beta_start=c["beta_start"], beta_end=c["beta_end"],
                  beta_schedule=kind, clip_sample=False, prediction_type="epsilon",
                  timestep_spacing=c["spacing"], steps_offset=c["offset"])
    if c["scheduler"] == "ddim":
        s = DDIMScheduler(set_alpha_to_one=c["set_alpha_to_one"], **common)
    else:
        s = DDPMScheduler(variance_type="fixed_small", **common)
    if c["dtype"] == "float64":
        s.betas = betas64(c)
        s.alphas = 1.0 - s.betas
        s.alphas_cumprod = torch.cumprod(s.alphas, dim=0)
        if c["scheduler"] == "ddim":
            s.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) if c["set_alpha_to_one"] else s.alphas_cumprod[0]
        else:
            s.one = torch.tensor(1.0, dtype=torch.float64)
    if c["scheduler"] == "ddpm" and not c["set_alpha_to_one"]:
        # DDPMScheduler has no set_alpha_to_one; false ends on abar_0 as DDIM's does
        s.one = s.alphas_cumprod[0]
    s.set_timesteps(c["steps"])
    return s


def main(inp, out):
    with safe_open(inp, "pt") as f:
        cases = json.loads(f.metadata()["cases"])
    t = load_file(inp)
    res = {}
    for k, c in enumerate(cases):
        s = make(c)
        ts = s.timesteps
        x, eps, noise = t[f"{k}.x"], t[f"{k}.eps"], t[f"{k}.noise"]
        assert len(ts) == x.shape[0], (c, len(ts), x.shape)
        prev, x0 = torch.empty_like(x), torch.empty_like(x)
        for i, ti in enumerate(ts):
            # a batch of one, as the pipelines call step (DDPM reads shape[1])
            xi, ei, zi = x[i][None], eps[i][None], noise[i][None]
            if c["scheduler"] == "ddim":
                kw = {"variance_noise": zi} if c["eta"] > 0 else {}
                o = s.step(ei, int(ti), xi, eta=c["eta"], **kw)
            else:
                ddpm_module.randn_tensor = lambda *a, _z=zi, **kw: _z
                o = s.step(ei, int(ti), xi)
            prev[i], x0[i] = o.prev_sample[0], o.pred_original_sample[0]
        res[f"{k}.timesteps"] = ts.to(torch.int64)
        res[f"{k}.prev"] = prev.contiguous()
        res[f"{k}.x0"] = x0.contiguous()
    import diffusers
    save_file(res, out, metadata={"diffusers": diffusers.__version__, "torch": torch.__version__})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} IN.safetensors OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
