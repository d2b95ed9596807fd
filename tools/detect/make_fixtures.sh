#!/usr/bin/env bash
# Regenerates detect/testdata: synthetic training data (kediff synth), the
# fixture detector (tools/detect/train.py, a few CPU minutes with one thread),
# its three ONNX exports and the PyTorch reference outputs.
# Needs Debian python3-torch and python3-pil. Seeds 101-104 train, 900-902 are held out.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-$(mktemp -d)}
k=$data/kediff
go build -o "$k" ./cmd/kediff
synth() { "$k" synth --bad=false --output "$data/$1" "${@:2}" >/dev/null; }
synth flat  --samples 1200 --per-shard 400 --width 128 --height 128 --photo=false --seed 101
synth photo --samples 1200 --per-shard 400 --width 128 --height 128 --seed 102
synth wide  --samples 600  --per-shard 300 --width 192 --height 144 --seed 103
synth tall  --samples 400  --per-shard 400 --width 112 --height 160 --photo=false --seed 104
synth held  --samples 200  --per-shard 200 --width 128 --height 128 --seed 900
synth refw  --samples 4 --width 192 --height 144 --seed 901
synth reft  --samples 4 --width 112 --height 160 --photo=false --seed 902
/usr/bin/python3 tools/detect/train.py --data "$data" --out detect/testdata --epochs 8
