#!/usr/bin/python3
"""PyTorch reference for kediff's train package (run with Debian's python3-torch).

A faithful, independent PyTorch port of glide-text2im's Text2ImUNet (unet.py,
text2im_model.py, xf.py) with the same module tree, so state_dict() keys and
shapes are GLIDE's, plus ERNIE-ViLG's keyword key scaling (DESIGN.md 1.3) and
an optional padding mask on the U-Net attention's text keys.

    reference.py fixture [OUT]   write unet/testdata/tiny_ref.safetensors: the
                                 tiny config, weights (F16-exact values stored as
                                 F16 to keep the file small), inputs, eps output,
                                 loss, every gradient, ten AdamW-step losses
    reference.py check DIR       build the model from DIR/config.json, load
                                 DIR/model.safetensors with strict=True, run
                                 DIR/inputs.safetensors and compare with the Go
                                 output stored there; exit 1 on mismatch
    reference.py bench-sample CKPT THREADS
                                 sampling-loop timing for bench/sample: DDIM with
                                 guidance on the checkpoint CKPT, requests on
                                 stdin (see bench_sample)
    reference.py bench CONFIG INPUTS THREADS
                                 training-step timing for bench/train: the model
                                 of CONFIG (a train config with model_config, or
                                 a model config), random init, the batch in
                                 INPUTS (z_t, timesteps, tokens, mask, keyword,
                                 w_a, noise, loss_weight); then, for every line
                                 N read from stdin, N full steps (zero_grad,
                                 forward, loss, backward, clip 1.0, AdamW), one
                                 JSON line each: wall and process CPU seconds,
                                 loss, peak device memory. OPTIONS: --device
                                 cpu|cuda, --precision fp32|bf16 (autocast),
                                 --mode eager|compile[:MODE] (torch.compile);
                                 attention through SDPA where torch has it
    reference.py bench-step CONFIG THREADS [OPTIONS]
                                 CFG sampling-step timing for bench/gpu: batch
                                 1 (2 rows) DDIM steps of a random model

No dependency besides torch and numpy: safetensors is read and written here.
"""

import json
import math
import struct
import sys

import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------- safetensors

DTYPES = {
    th.float32: ("F32", np.float32), th.float16: ("F16", np.float16),
    th.int32: ("I32", np.int32), th.int64: ("I64", np.int64),
    th.uint8: ("U8", np.uint8), th.bool: ("BOOL", np.bool_),
    th.float64: ("F64", np.float64),
}
NP = {v[0]: v[1] for v in DTYPES.values()}


def write_safetensors(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        code, npt = DTYPES[t.dtype]
        b = t.numpy().astype(npt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        arr = np.frombuffer(body[lo:hi], dtype=NP[e["dtype"]]).reshape(e["shape"])
        out[name] = th.from_numpy(arr.copy())
    return out

# ---------------------------------------------------------------- model

# SDPA routes the attention products through F.scaled_dot_product_attention
# (flash or memory-efficient kernels on a GPU); the benchmarks set it where
# torch has it (2.0+). Off, attention is the explicit softmax(QK^T)V of GLIDE.
SDPA = False


class GroupNormAct(nn.GroupNorm):
    """nn.GroupNorm followed by SiLU when swish (GLIDE's normalization())."""

    def __init__(self, groups, channels, swish):
        super().__init__(groups, channels, eps=1e-5)
        self.swish = swish

    def forward(self, x):
        # in fp32 under autocast, as CUDA's autocast runs group_norm (CPU's
        # in torch 1.13 would reject bf16 input with fp32 weights)
        y = super().forward(x.float())
        return F.silu(y) if self.swish else y


class Resample(nn.Module):
    """Upsample/Downsample; a conv (`conv` or `op`) only without resblock_updown."""

    def __init__(self, ch, up, use_conv):
        super().__init__()
        self.up = up
        if use_conv and up:
            self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        elif use_conv:
            self.op = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.use_conv = use_conv

    def forward(self, x):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return self.conv(x) if self.use_conv else x
        return self.op(x) if self.use_conv else F.avg_pool2d(x, 2, 2)


class ResBlock(nn.Module):
    def __init__(self, cfg, cin, cout, up=False, down=False):
        super().__init__()
        G, E, ss = cfg["norm_groups"], 4 * cfg["model_channels"], cfg["use_scale_shift_norm"]
        self.ss = ss
        self.in_layers = nn.Sequential(GroupNormAct(G, cin, True), nn.Identity(), nn.Conv2d(cin, cout, 3, padding=1))
        self.updown = up or down
        if self.updown:
            self.h_upd = Resample(cin, up, False)
            self.x_upd = Resample(cin, up, False)
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(E, 2 * cout if ss else cout))
        self.out_layers = nn.Sequential(
            GroupNormAct(G, cout, not ss), nn.SiLU() if ss else nn.Identity(),
            nn.Dropout(cfg["dropout"]), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        if self.updown:
            h = self.in_layers[:-1](x)
            h, x = self.h_upd(h), self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb)[..., None, None]
        if self.ss:
            scale, shift = th.chunk(e, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    def __init__(self, cfg, ch):
        super().__init__()
        self.heads = ch // cfg["num_head_channels"]
        self.norm = GroupNormAct(cfg["norm_groups"], ch, False)
        self.qkv = nn.Conv1d(ch, 3 * ch, 1)
        self.encoder_kv = nn.Conv1d(cfg["xf_width"], 2 * ch, 1)
        self.proj_out = nn.Conv1d(ch, ch, 1)

    def forward(self, x, xf_out, key_scale, key_mask):
        b, c, H, W = x.shape
        T, nh = H * W, self.heads
        ch = c // nh
        qkv = self.qkv(self.norm(x).reshape(b, c, T))
        q, k, v = qkv.reshape(b * nh, 3 * ch, T).split(ch, dim=1)
        ek, ev = self.encoder_kv(xf_out).reshape(b * nh, 2 * ch, -1).split(ch, dim=1)
        k = th.cat([ek, k], dim=-1)  # text keys first, as GLIDE's QKVAttention
        v = th.cat([ev, v], dim=-1)
        L = ek.shape[-1]
        # keyword scale s_j per key: (b, L) text part, image part 1 + w_a
        s = th.cat([key_scale["text"], key_scale["image"][:, None].expand(b, T)], dim=1)
        k = k * s.repeat_interleave(nh, dim=0)[:, None, :].to(k.dtype)
        m = None
        if key_mask is not None:
            m = th.cat([key_mask, th.ones(b, T, dtype=th.bool, device=x.device)], dim=1).repeat_interleave(nh, dim=0)
        if SDPA:
            # (b*nh, T, ch) layouts; a boolean mask marks the keys to attend
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                               attn_mask=None if m is None else m[:, None, :])
            a = a.transpose(1, 2).reshape(b, c, T)
        else:
            w = th.einsum("bct,bcs->bts", q, k) / math.sqrt(ch)
            if m is not None:
                w = w.masked_fill(~m[:, None, :], float("-inf"))
            w = th.softmax(w, dim=-1)
            a = th.einsum("bts,bcs->bct", w, v).reshape(b, c, T)
        return x + self.proj_out(a).reshape(b, c, H, W)


class TimestepEmbedSequential(nn.Sequential):
    def forward(self, x, emb, xf_out, keys, key_mask):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, xf_out, keys, key_mask)
            else:
                x = layer(x)
        return x


class MultiheadAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.c_qkv = nn.Linear(width, 3 * width)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x):
        bs, n, w = x.shape
        d = w // self.heads
        qkv = self.c_qkv(x).view(bs, n, self.heads, 3 * d)
        q, k, v = th.split(qkv, d, dim=-1)
        if SDPA:
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
            return self.c_proj(a.reshape(bs, n, w))
        att = th.softmax(th.einsum("bthc,bshc->bhts", q, k) / math.sqrt(d), dim=-1)
        return self.c_proj(th.einsum("bhts,bshc->bthc", att, v).reshape(bs, n, w))


class MLP(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)
        self.gelu = nn.GELU()

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = MLP(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        for b in self.resblocks:
            x = b(x)
        return x


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = th.exp(-math.log(max_period) * th.arange(0, half, dtype=th.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = th.cat([th.cos(args), th.sin(args)], dim=-1)
    if dim % 2:
        emb = th.cat([emb, th.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Text2ImUNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        mc, nrb, mults = cfg["model_channels"], cfg["num_res_blocks"], cfg["channel_mult"]
        E, L, W = 4 * mc, cfg["text_ctx"], cfg["xf_width"]
        updown = cfg["resblock_updown"]
        self.time_embed = nn.Sequential(nn.Linear(mc, E), nn.SiLU(), nn.Linear(E, E))
        ch = mults[0] * mc
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(cfg["in_channels"], ch, 3, padding=1))])
        chans, ds = [ch], 1
        for level, mult in enumerate(mults):
            for _ in range(nrb):
                layers = [ResBlock(cfg, ch, mult * mc)]
                ch = mult * mc
                if ds in cfg["attention_resolutions"]:
                    layers.append(AttentionBlock(cfg, ch))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                chans.append(ch)
            if level != len(mults) - 1:
                self.input_blocks.append(TimestepEmbedSequential(
                    ResBlock(cfg, ch, ch, down=True) if updown else Resample(ch, False, True)))
                chans.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(ResBlock(cfg, ch, ch), AttentionBlock(cfg, ch), ResBlock(cfg, ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(mults))[::-1]:
            for i in range(nrb + 1):
                ich = chans.pop()
                layers = [ResBlock(cfg, ch + ich, mult * mc)]
                ch = mult * mc
                if ds in cfg["attention_resolutions"]:
                    layers.append(AttentionBlock(cfg, ch))
                if level and i == nrb:
                    layers.append(ResBlock(cfg, ch, ch, up=True) if updown else Resample(ch, True, True))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(GroupNormAct(cfg["norm_groups"], ch, True), nn.Identity(),
                                 nn.Conv2d(ch, cfg["out_channels"], 3, padding=1))
        # text side, as Text2ImUNet.__init__
        self.transformer = Transformer(W, cfg["xf_layers"], cfg["xf_heads"])
        self.final_ln = nn.LayerNorm(W) if cfg["xf_final_ln"] else None
        self.token_embedding = nn.Embedding(cfg["n_vocab"], W)
        self.positional_embedding = nn.Parameter(th.empty(L, W))
        self.transformer_proj = nn.Linear(W, E)
        if cfg["xf_padding"]:
            self.padding_embedding = nn.Parameter(th.empty(L, W))

    def get_text_emb(self, tokens, mask):
        xf_in = self.token_embedding(tokens.long()) + self.positional_embedding[None]
        if self.cfg["xf_padding"]:
            xf_in = th.where(mask[..., None], xf_in, self.padding_embedding[None])
        xf_out = self.transformer(xf_in)
        if self.final_ln is not None:
            xf_out = self.final_ln(xf_out)
        return self.transformer_proj(xf_out[:, -1]), xf_out.permute(0, 2, 1)

    def forward(self, x, timesteps, tokens, mask, w_a, keyword, mask_padding=None):
        xf_proj, xf_out = self.get_text_emb(tokens, mask)
        return self.forward_encoded(x, timesteps, xf_proj, xf_out, mask, w_a, keyword, mask_padding)

    def forward_encoded(self, x, timesteps, xf_proj, xf_out, mask, w_a, keyword, mask_padding=None):
        """forward with get_text_emb's outputs given (a sampler encodes each prompt once)."""
        if mask_padding is None:
            mask_padding = self.cfg.get("attention_mask_padding", False)
        emb = self.time_embed(timestep_embedding(timesteps, self.cfg["model_channels"]))
        emb = emb + xf_proj
        keys = {"text": 1 + w_a[:, None] * keyword.float(), "image": 1 + w_a}
        key_mask = mask if mask_padding else None
        hs, h = [], x
        for m in self.input_blocks:
            h = m(h, emb, xf_out, keys, key_mask)
            hs.append(h)
        h = self.middle_block(h, emb, xf_out, keys, key_mask)
        for m in self.output_blocks:
            h = m(th.cat([h, hs.pop()], dim=1), emb, xf_out, keys, key_mask)
        return self.out(h)

# ---------------------------------------------------------------- diffusion


def scaled_linear_sqrt_abar(T=1000, start=0.00085, end=0.012):
    betas = np.linspace(math.sqrt(start), math.sqrt(end), T, dtype=np.float64) ** 2
    abar = np.cumprod(1 - betas)
    return np.sqrt(abar), np.sqrt(1 - abar)


def q_sample(z0, noise, t):
    sa, sb = scaled_linear_sqrt_abar()
    a = th.tensor(sa[t].astype(np.float32))[:, None, None, None]
    b = th.tensor(sb[t].astype(np.float32))[:, None, None, None]
    return a * z0 + b * noise


def weighted_mse(eps_hat, eps, weight):
    B, C, H, W = eps.shape
    return (weight.reshape(B, 1, H, W) * (eps - eps_hat) ** 2).mean()

# ---------------------------------------------------------------- commands


TINY = dict(
    image_size=8, in_channels=4, out_channels=4, model_channels=16, num_res_blocks=1,
    channel_mult=[1, 2], attention_resolutions=[2], num_head_channels=16, norm_groups=8,
    use_scale_shift_norm=True, resblock_updown=True, dropout=0.0, text_ctx=8, n_vocab=64,
    xf_width=32, xf_layers=2, xf_heads=2, xf_final_ln=True, xf_padding=True,
    attention_mask_padding=False)


def fixture(out):
    th.manual_seed(1234)
    cfg = TINY
    model = Text2ImUNet(cfg)
    # Every parameter random (GLIDE's zero-initialised convs too, so that every
    # gradient is non-trivial), rounded to float16 so the fixture can store the
    # weights as F16 exactly.
    with th.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith(".weight"):  # GroupNorm / LayerNorm gains
                p.copy_(1 + 0.2 * th.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * th.randn_like(p))
            elif name in ("positional_embedding", "padding_embedding", "token_embedding.weight"):
                p.copy_(0.5 * th.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(th.randn_like(p) / math.sqrt(fan_in))
            p.copy_(p.half().float())
    B, L, S = 3, cfg["text_ctx"], cfg["image_size"]
    z0 = th.randn(B, 4, S, S)
    noise = th.randn(B, 4, S, S)
    t = np.array([10, 500, 999])
    zt = q_sample(z0, noise, t)
    timesteps = th.tensor(t, dtype=th.float32)
    tokens = th.randint(0, cfg["n_vocab"], (B, L), dtype=th.int32)
    lengths = [5, L, 0]  # sample 2 is CFG-dropped: all padding
    mask = th.tensor([[j < n for j in range(L)] for n in lengths])
    keyword = th.tensor([[1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 1, 1, 0, 1], [0] * L], dtype=th.bool)
    w_a = th.tensor([0.3, 0.0, 0.2])  # sample 0 and 2 selected for textual knowledge
    loss_w = th.ones(B, S, S)
    loss_w[0, 2:6, 1:5] = 1.1  # kept objects: 1 + w_l
    loss_w[1, 0:3, 3:8] = 1.5

    weights = {k: v.clone() for k, v in model.state_dict().items()}
    eps = model(zt, timesteps, tokens, mask, w_a, keyword)
    loss = weighted_mse(eps, noise, loss_w)
    model.zero_grad()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    with th.no_grad():
        eps_masked = model(zt, timesteps, tokens, mask, w_a, keyword, mask_padding=True)

    opt = th.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        l = weighted_mse(model(zt, timesteps, tokens, mask, w_a, keyword), noise, loss_w)
        l.backward()
        th.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(l.item())

    ts = {"weight." + k: v.half() for k, v in weights.items()}
    ts.update({"grad." + k: v for k, v in grads.items()})
    ts.update({
        "in.z0": z0, "in.noise": noise, "in.z_t": zt, "in.timesteps": timesteps,
        "in.tokens": tokens, "in.mask": mask, "in.keyword": keyword, "in.w_a": w_a,
        "in.loss_weight": loss_w, "out.eps": eps.detach(), "out.eps_masked": eps_masked,
        "out.loss": th.tensor([loss.item()], dtype=th.float64),
        "out.adamw_losses": th.tensor(losses, dtype=th.float64),
    })
    write_safetensors(out, ts, {"config": json.dumps(cfg), "torch": th.__version__,
                                "adamw": "lr 1e-3 betas 0.9,0.999 eps 1e-8 wd 0.01 clip 1.0"})
    print(f"wrote {out}: loss {loss.item():.6f}, adamw losses {losses[0]:.6f} .. {losses[-1]:.6f}")


def check(d):
    """Load a Go checkpoint with strict=True; compare eps, loss and every gradient."""
    with open(f"{d}/config.json") as f:
        cfg = json.load(f)
    model = Text2ImUNet(cfg)
    sd = read_safetensors(f"{d}/model.safetensors")
    model.load_state_dict(sd, strict=True)
    inp = read_safetensors(f"{d}/inputs.safetensors")
    eps = model(inp["z_t"], inp["timesteps"], inp["tokens"], inp["mask"].bool(),
                inp["w_a"], inp["keyword"].bool())
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()
    ok = True
    e = rel(eps.detach(), inp["eps"])
    print(f"strict load ok ({len(sd)} tensors); eps rel err {e:.3e}")
    ok &= e < 1e-4
    loss = weighted_mse(eps, inp["noise"], inp["loss_weight"])
    le = abs(loss.item() - inp["loss"].item()) / abs(loss.item())
    print(f"loss {loss.item():.7f} vs go {inp['loss'].item():.7f}: rel err {le:.3e}")
    ok &= le < 1e-4
    if any(k.startswith("grad.") for k in inp):
        loss.backward()
        errs = sorted(((rel(inp["grad." + n], p.grad), n) for n, p in model.named_parameters()), reverse=True)
        bad = [(e, n) for e, n in errs if not e < 1e-3]
        print(f"{len(errs)} gradients, worst {errs[0][1]} rel err {errs[0][0]:.3e}")
        for e, n in bad:
            print(f"  grad {n}: rel err {e:.3e}")
        ok &= not bad
    if not ok:
        sys.exit(1)


def openblas_core():
    """The kernel set of the OpenBLAS that torch loaded (Debian links it), or "?"."""
    import ctypes
    try:
        f = ctypes.CDLL("libopenblas.so.0").openblas_get_corename
    except (OSError, AttributeError):
        return "?"
    f.restype = ctypes.c_char_p
    return f().decode()


def requests(model, **info):
    """The benchmarks' protocol: print the ready line (parameter count,
    threads, torch version, OpenBLAS core, and info), then yield each request
    line that Go writes to stdin."""
    nparams = sum(p.numel() for p in model.parameters())
    print(json.dumps({"ready": True, "params": nparams, "threads": th.get_num_threads(),
                      "torch": th.__version__, "blas_core": openblas_core(), **info}), flush=True)
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def bench_options(args):
    """The options after a bench subcommand's positional arguments:
    --device cpu|cuda, --precision fp32|bf16 (bf16 autocast, fp32 weights),
    --mode eager|compile|compile:MODE (torch.compile, MODE as its mode=)."""
    o = {"device": "cpu", "precision": "fp32", "mode": "eager"}
    for i in range(0, len(args), 2):
        k = args[i].lstrip("-")
        if k not in o or i + 1 >= len(args):
            sys.exit(f"bench: unknown option {args[i]!r} (want --device, --precision, --mode with a value)")
        o[k] = args[i + 1]
    if o["device"].startswith("cuda") and not th.cuda.is_available():
        sys.exit(f"bench: --device {o['device']}, but this torch ({th.__version__}) sees no GPU")
    if o["mode"] != "eager" and not hasattr(th, "compile"):
        sys.exit(f"bench: --mode {o['mode']} needs torch.compile (torch 2.0+), this is torch {th.__version__}")
    global SDPA
    SDPA = hasattr(F, "scaled_dot_product_attention")
    return o


class Bench:
    """What a benchmark side needs around its model: the device, bf16
    autocast, torch.compile, synchronisation and peak device memory."""

    def __init__(self, o):
        self.dev = th.device(o["device"])
        self.cuda = self.dev.type == "cuda"
        self.bf16 = o["precision"] == "bf16"
        if o["precision"] not in ("fp32", "bf16"):
            sys.exit(f"bench: --precision {o['precision']!r}, want fp32 or bf16")
        self.mode = o["mode"]
        if self.cuda:
            th.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as kediff's
            th.backends.cudnn.allow_tf32 = False
            th.cuda.reset_peak_memory_stats(self.dev)

    def compile(self, fn):
        if self.mode == "eager":
            return fn
        _, _, m = self.mode.partition(":")
        return th.compile(fn, mode=m or None)

    def autocast(self):
        return th.autocast(device_type=self.dev.type, dtype=th.bfloat16, enabled=self.bf16)

    def sync(self):
        if self.cuda:
            th.cuda.synchronize(self.dev)

    def peak(self):
        return th.cuda.max_memory_allocated(self.dev) if self.cuda else 0

    def info(self):
        name = th.cuda.get_device_name(self.dev) if self.cuda else "cpu"
        return {"device": name, "precision": "bf16" if self.bf16 else "fp32", "mode": self.mode, "sdpa": SDPA}


def bench(cfg_path, inputs, threads, *opts):
    """Time full training steps; driven over stdin by bench/train and
    bench/gpu (Go). Each result line has the step's wall and process CPU
    seconds, its loss, and the peak device memory so far."""
    import time
    th.set_num_threads(threads)
    o = bench_options(opts)
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg = cfg.get("model_config", cfg)
    th.manual_seed(1)
    b = Bench(o)
    model = Text2ImUNet(cfg).to(b.dev)
    inp = {k: v.to(b.dev) for k, v in read_safetensors(inputs).items()}
    args = (inp["z_t"], inp["timesteps"], inp["tokens"], inp["mask"].bool(),
            inp["w_a"], inp["keyword"].bool())
    noise, weight = inp["noise"], inp["loss_weight"]
    kw = {"fused": True} if b.cuda else {}
    opt = th.optim.AdamW(model.parameters(), lr=0.9e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, **kw)
    fwd = b.compile(model)
    for line in requests(model, **b.info()):
        for _ in range(int(line)):
            w0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=False)
            with b.autocast():
                eps = fwd(*args)
            loss = weighted_mse(eps.float(), noise, weight)
            loss.backward()
            th.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            l = loss.item()
            b.sync()
            w1, c1 = time.perf_counter(), time.process_time()
            print(json.dumps({"wall": w1 - w0, "cpu": c1 - c0, "loss": l, "peak": b.peak()}), flush=True)


def bench_step(cfg_path, threads, *opts):
    """Time classifier-free-guided DDIM steps at batch 1 of a randomly
    initialised model of cfg_path; driven over stdin by bench/gpu (Go). The
    prompt is encoded once; each step is one forward of both guidance halves
    as one batch of 2, the guided eps, and the DDIM update (eta 0, 50 steps
    over 1000). For every line N read, N steps, one result line each."""
    import time
    th.set_num_threads(threads)
    o = bench_options(opts)
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg = cfg.get("model_config", cfg)
    th.manual_seed(1)
    b = Bench(o)
    model = Text2ImUNet(cfg).to(b.dev).eval()
    L, S, C = cfg["text_ctx"], cfg["image_size"], cfg["in_channels"]
    g = th.Generator().manual_seed(2)
    tokens = th.randint(0, cfg["n_vocab"], (2, L), generator=g).to(b.dev)
    mask = th.zeros(2, L, dtype=th.bool)
    mask[1, : L // 2] = True  # row 0: the unconditional prompt, all padding
    mask = mask.to(b.dev)
    x = th.randn(1, C, S, S, generator=g).to(b.dev)
    zero_w, no_kw = th.zeros(2, device=b.dev), th.zeros_like(mask)
    abar = np.cumprod(1 - np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=np.float64) ** 2)
    fwd = b.compile(model.forward_encoded)
    with th.no_grad(), b.autocast():
        xf_proj, xf_out = model.get_text_emb(tokens, mask)
    step = 0
    for line in requests(model, **b.info()):
        for _ in range(int(line)):
            t = 999 - 20 * (step % 50)
            a_t, a_p = abar[t], (abar[t - 20] if t >= 20 else 1.0)
            step += 1
            w0, c0 = time.perf_counter(), time.process_time()
            with th.no_grad():
                with b.autocast():
                    eps = fwd(th.cat([x, x]), th.full((2,), float(t), device=b.dev), xf_proj, xf_out, mask, zero_w, no_kw)
                eps = eps.float()
                eps = eps[:1] + 2.1 * (eps[1:] - eps[:1])
                x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
                x = math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * eps
            b.sync()
            w1, c1 = time.perf_counter(), time.process_time()
            print(json.dumps({"wall": w1 - w0, "cpu": c1 - c0, "loss": float(x.abs().mean()), "peak": b.peak()}), flush=True)


def bench_sample(ckpt, threads):
    """Time DDIM sampling loops with guidance; driven over stdin by bench/sample (Go).

    The model of CKPT (strict load), each prompt encoded once, both guidance
    halves in one batch, DDIM (eta 0) on the checkpoint's schedule with
    abar_prev at t - T/S as diffusers takes it. Each request line is JSON
    {"inputs", "guidance", "repeat", "out"}: inputs holds x_T, tokens and mask
    (unconditional half first) and the timesteps; one JSON line per loop
    (wall and process CPU seconds); x_0 of the last loop goes to "out".
    """
    import time
    th.set_num_threads(threads)
    with open(f"{ckpt}/config.json") as f:
        cfg = json.load(f)
    with open(f"{ckpt}/train_config.json") as f:
        tc = json.load(f)
    model = Text2ImUNet(cfg)
    model.load_state_dict(read_safetensors(f"{ckpt}/model.safetensors"), strict=True)
    model.eval()
    T = tc["timesteps"]
    betas = np.linspace(math.sqrt(tc["beta_start"]), math.sqrt(tc["beta_end"]), T, dtype=np.float64) ** 2
    abar = np.cumprod(1 - betas)
    for line in requests(model):
        req = json.loads(line)
        inp = read_safetensors(req["inputs"])
        xT, tokens, mask, ts = inp["x_T"], inp["tokens"], inp["mask"].bool(), inp["timesteps"].tolist()
        s, B = req["guidance"], xT.shape[0]
        rows = tokens.shape[0]
        zero_w, no_kw = th.zeros(rows), th.zeros_like(mask)
        lines = []
        for _ in range(req["repeat"]):
            w0, c0 = time.perf_counter(), time.process_time()
            with th.no_grad():
                xf_proj, xf_out = model.get_text_emb(tokens, mask)
                x = xT.clone()
                for t in ts:
                    prev = t - T // len(ts)
                    a_t, a_p = abar[t], (abar[prev] if prev >= 0 else 1.0)
                    xin = th.cat([x, x]) if rows == 2 * B else x
                    eps = model.forward_encoded(xin, th.full((rows,), float(t)), xf_proj, xf_out, mask, zero_w, no_kw)
                    if rows == 2 * B:
                        u, c = eps[:B], eps[B:]
                        eps = u + s * (c - u)
                    x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
                    x = math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * eps
            w1, c1 = time.perf_counter(), time.process_time()
            lines.append(json.dumps({"wall": w1 - w0, "cpu": c1 - c0, "loss": 0}))
        write_safetensors(req["out"], {"x_0": x})  # before the answer, which Go waits for
        for ln in lines:
            print(ln, flush=True)


if __name__ == "__main__":
    th.set_num_threads(1)
    cmd = sys.argv[1] if len(sys.argv) > 1 else "fixture"
    if cmd == "fixture":
        fixture(sys.argv[2] if len(sys.argv) > 2 else "unet/testdata/tiny_ref.safetensors")
    elif cmd == "check":
        check(sys.argv[2])
    elif cmd == "bench":
        bench(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:])
    elif cmd == "bench-step":
        bench_step(sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
    elif cmd == "bench-sample":
        bench_sample(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"usage: {sys.argv[0]} fixture [OUT] | check DIR | bench CONFIG INPUTS THREADS [OPTIONS] | "
                 "bench-step CONFIG THREADS [OPTIONS] | bench-sample CKPT THREADS")
