"""Build eval/clipscore's test fixture: a tiny randomly initialised open_clip
CLIP, exported to ONNX, and its reference embeddings and CLIP scores.

Run with the tools venv (open_clip_torch, Debian's torch 1.13):

    .cache/venv/bin/python tools/eval/clip_fixture.py eval/clipscore/testdata

It writes into the folder:

  clip_image.onnx       pixel_values [N,3,64,64] float32 -> image_embeds [N,32]
  clip_text.onnx        input_ids [N,77] int64 -> text_embeds [N,32] (the real
                        49408-token vocabulary, so open_clip's tokenizer ids run)
  small_text_*.onnx     a 64-token text tower exported three ways: int64 ids,
                        int32 ids, int64 ids plus an attention_mask input (as
                        Hugging Face exports have); same weights
  bad_*.onnx            models that Open must refuse: a text model returning
                        per-token features [N,77,32], an image model whose
                        embedding is 16 wide
  img*.png              test images of different sizes and modes, and
                        img*_crop.png, open_clip's resized and cropped RGB
  clip_reference.json   what open_clip computes: token ids from its tokenizer,
                        pixels from its own preprocessing (PIL bicubic resize,
                        centre crop, CLIP mean/std), embeddings, and CLIP scores
                        100 * max(cos, 0) per pair and their mean

Weights are random (no download); every parameter gets noise so that layer
norms and biases are not the identity.
"""
import json
import os
import sys

import numpy as np
import open_clip
import torch
from PIL import Image

OPSET = 14
IMAGE = 64
EMBED = 32


def tiny_clip(vocab=49408, embed=EMBED):
    model = open_clip.model.CLIP(
        embed_dim=embed,
        vision_cfg=dict(image_size=IMAGE, patch_size=16, width=32, head_width=16, layers=2),
        text_cfg=dict(context_length=77, vocab_size=vocab, width=12, heads=2, layers=2),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


class ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values)


class TextTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.encode_text(input_ids.long())


class MaskedTextTower(TextTower):
    """Takes an attention_mask as HF exports do. With CLIP's causal mask the
    padding after the end token cannot reach the pooled end token, so the mask
    only has to be consumed, not applied."""

    def forward(self, input_ids, attention_mask):
        return self.model.encode_text(input_ids) + 0 * attention_mask.sum(-1, keepdim=True).float()


class TokenFeatures(TextTower):
    """A wrong export: features for every position instead of the pooled one."""

    def forward(self, input_ids):
        return self.model.encode_text(input_ids).unsqueeze(1).expand(-1, 77, -1)


def export(module, args, path, inputs, output):
    axes = {name: {0: "batch"} for name in inputs + [output]}
    torch.onnx.export(module, args, path, input_names=inputs, output_names=[output],
                      dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)


def images(out):
    """Different sizes, odd crops, and the modes CLIP's _convert_to_rgb meets."""
    rng = np.random.default_rng(7)
    made = []
    for i, (w, h, mode) in enumerate([(64, 64, "RGB"), (80, 61, "RGB"), (51, 97, "RGB"),
                                      (123, 45, "RGBA"), (70, 90, "L")]):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        rgb = np.stack([128 + 100 * np.sin(x / (5 + i) + y / 9),
                        255 * x / w,
                        255 * y / h], -1)
        rgb += rng.normal(0, 25, rgb.shape)
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        im = Image.fromarray(rgb, "RGB")
        if mode == "RGBA":
            # Opaque: PIL resizes RGBA premultiplied, clipscore flattens
            # first; they agree only where alpha is 255 (see doc.go).
            alpha = np.full((h, w), 255, np.uint8)
            im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
        elif mode == "L":
            im = im.convert("L")
        name = f"img{i}_{w}x{h}_{mode}.png"
        im.save(os.path.join(out, name))
        made.append(name)
    return made


PROMPTS = [
    "a photo of a cat",
    "A red bicycle, leaning against 2 walls!",
    "一只在草地上奔跑的小狗",
    "sunset over the sea \U0001F305 with   extra   spaces",
    "an oil painting of a lighthouse " * 12,
]


def scores(img, txt):
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    cos = (img * txt).sum(-1)
    per = torch.clamp(100 * cos, min=0)
    return cos, per, per.mean()


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = tiny_clip()
    preprocess = open_clip.image_transform(IMAGE, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")  # CLIP's SimpleTokenizer, context 77

    names = images(out)
    pixels = torch.stack([preprocess(Image.open(os.path.join(out, n))) for n in names])
    # The 8-bit crops (Resize and CenterCrop, then RGB), so the Go test can
    # check its resampling exactly, before any float arithmetic.
    resize, crop = preprocess.transforms[0], preprocess.transforms[1]
    for n in names:
        im = crop(resize(Image.open(os.path.join(out, n)))).convert("RGB")
        im.save(os.path.join(out, n.replace(".png", "_crop.png")))
    ids = tokenizer(PROMPTS)
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(ids)
    cos, per, mean = scores(img, txt)

    export(ImageTower(model), (pixels[:2],), os.path.join(out, "clip_image.onnx"), ["pixel_values"], "image_embeds")
    export(TextTower(model), (ids[:2],), os.path.join(out, "clip_text.onnx"), ["input_ids"], "text_embeds")

    # The small text tower: ids below 64, the end token is the largest id in
    # each row (argmax pooling), zero padding.
    torch.manual_seed(1)
    small = tiny_clip(vocab=64)
    rng = np.random.default_rng(3)
    small_ids = torch.zeros(3, 77, dtype=torch.long)
    mask = torch.zeros(3, 77, dtype=torch.long)
    for r, n in enumerate([5, 77, 30]):
        row = rng.integers(1, 62, n)
        row[0], row[-1] = 62, 63
        small_ids[r, :n] = torch.from_numpy(row)
        mask[r, :n] = 1
    with torch.no_grad():
        small_txt = small.encode_text(small_ids)
    export(TextTower(small), (small_ids[:2],), os.path.join(out, "small_text_int64.onnx"), ["input_ids"], "text_embeds")
    export(TextTower(small), (small_ids[:2].int(),), os.path.join(out, "small_text_int32.onnx"), ["input_ids"], "text_embeds")
    export(MaskedTextTower(small), (small_ids[:2], mask[:2]), os.path.join(out, "small_text_mask.onnx"),
           ["input_ids", "attention_mask"], "text_embeds")
    export(TokenFeatures(small), (small_ids[:2],), os.path.join(out, "bad_text_tokens.onnx"), ["input_ids"], "text_embeds")
    narrow = tiny_clip(vocab=64, embed=16)
    export(ImageTower(narrow), (pixels[:2],), os.path.join(out, "bad_image_16.onnx"), ["pixel_values"], "image_embeds")

    ref = {
        "made_by": "tools/eval/clip_fixture.py",
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
        "image_size": IMAGE,
        "embed_dim": EMBED,
        "images": names,
        "prompts": PROMPTS,
        "token_ids": ids.tolist(),
        "image_embeds": img.tolist(),
        "text_embeds": txt.tolist(),
        "cosines": cos.tolist(),
        "scores": per.tolist(),
        "mean": mean.item(),
        "small_ids": small_ids.tolist(),
        "small_mask": mask.tolist(),
        "small_text_embeds": small_txt.tolist(),
    }
    with open(os.path.join(out, "clip_reference.json"), "w") as f:
        json.dump(ref, f)
    print("cosines", [round(c, 4) for c in cos.tolist()], "mean score", round(mean.item(), 4))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "eval/clipscore/testdata")
