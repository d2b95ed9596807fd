"""Reference token ids for eval/clipscore's tokenizer test.

Reads a JSON list of prompts on stdin and prints JSON with the path of the
vocabulary open_clip ships (bpe_simple_vocab_16e6.txt.gz) and the ids
open_clip's tokenizer gives each prompt (context length 77, zero padding).
With an argument, it also writes there a Hugging Face CLIPTokenizerFast
tokenizer.json built from that same vocabulary (the layout of
openai/clip-vit-base-patch32's), with padding by <|endoftext|>.
"""
import gzip
import json
import sys

import open_clip
from open_clip.tokenizer import bytes_to_unicode, default_bpe


def hf_tokenizer_json(bpe_path):
    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    special = lambda i, s: {"id": i, "content": s, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": True, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": {"strategy": {"Fixed": 77}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": 49407, "pad_type_id": 0, "pad_token": "<|endoftext|>"},
        "added_tokens": [special(49406, "<|startoftext|>"), special(49407, "<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 49407],
                           "cls": ["<|startoftext|>", 49406], "trim_offsets": False, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>",
                  "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": False,
                  "byte_fallback": False, "vocab": {v: i for i, v in enumerate(vocab)},
                  "merges": [" ".join(m) for m in merges]},
    }


def main():
    prompts = json.load(sys.stdin)
    tok = open_clip.get_tokenizer("ViT-B-32")
    out = {"vocab": default_bpe(), "ids": tok(prompts).tolist() if prompts else []}
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(hf_tokenizer_json(default_bpe()), f)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
