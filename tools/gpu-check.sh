#!/usr/bin/env bash
# The GPU checks of kernels/cuda, as one prepared run that fits a lent GPU's
# 15 minutes (device README): build and the CPU references here, one command
# there.
#
#   tools/gpu-check.sh prepare   here: build bin/libkediff_cuda.so (nvcc), a
#                                stripped kediff, the bundled sample's shards
#                                and the CPU references into .gpu/ (ignored
#                                by git, carried to the device, < 60 MiB)
#   tools/gpu-check.sh run       there, from the repository root, with $OUT:
#                                every check below, a log and summary.json
#                                under $OUT
#
# The device command:  bash tools/gpu-check.sh run   with carry [".gpu"]
# (GPU_CHECK_CHECKS=0 skips the correctness checks, GPU_CHECK_BENCH=0 the
# benchmarks, e.g. for a rerun of one half; GPU_CHECK_DEADLINE=540 is the
# seconds the whole run may take; GPU_CHECK_PYTHON the python with torch,
# python3 by default.)
#
# Checks, each with its own time limit, in the order of what matters most:
#   kernels-bench   kediff kernels check --device cuda at train/configs/bench.json's
#                   shapes, fp32 and bf16 (every kernel vs the CPU; the training
#                   step's loss and every gradient vs the CPU in fp32 and vs the
#                   host emulation of the same bf16 algorithm)
#   kernels-tiny    the same at the sample's tiny model (batch 8)
#   train-fp32      200 steps of train base on the bundled sample on the GPU in
#                   fp32: the loss curve must track the CPU run made here
#   train-bf16      the same in bf16
#   expert          train expert 3 for 50 steps on the GPU from the CPU base
#   sample-fp32     kediff sample on the GPU from the CPU base: final latents
#                   vs the CPU's (1e-3 relative), PNGs decoded
#   sample-bf16     the same in bf16 (5e-2)
#   nccl            dist's NCCL tests (world of one; two ranks with two GPUs)
#   train-nccl      train-fp32 again with --dist nccl in a world of one (TCP bootstrap;
#                   and under mpirun -np 1 where mpirun exists): the same losses, and
#                   the step-time overhead of the communicator (target under 3%)
# then the benchmarks (issue 14; bench/gpu, results into $OUT/bench-*.json):
#   bench-small     training step of train/configs/bench.json at batch 64, kediff
#                   bf16 vs PyTorch bf16 autocast + SDPA, eager and torch.compile
#   bench-sample    CFG sampling step at batch 1 of train/configs/sd2.json, both sides
#   bench-sd2       training step of train/configs/sd2.json at batch 32, both sides
#   kernels-table   kediff kernels bench --device cuda at sd2.json's shapes (batch 1):
#                   each kernel's time against the measured bandwidth and matrix rate
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

prepare() {
  set -e
  go tool task build-cuda
  bash tools/build-cuda.sh emu
  go tool task setup-runtime
  [ -f out/sample/manifest.json ] || go tool task preprocess
  rm -rf .gpu && mkdir -p .gpu/ref
  grep -qx '/.gpu/' .gitignore || echo '/.gpu/' >> .gitignore
  CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o .gpu/kediff ./cmd/kediff
  xz -T0 -9 .gpu/kediff
  CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o .gpu/bench-gpu ./bench/gpu
  xz -T0 -9 .gpu/bench-gpu
  CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w' -o .gpu/dist.test ./dist
  xz -T0 -9 .gpu/dist.test
  cp bin/libkediff_cuda.so bin/libkediff_cuda_emu.so .gpu/
  xz -T0 -9 -c .cache/onnxruntime/1.30.0/libonnxruntime.so.1 > .gpu/libonnxruntime.so.1.xz
  cp -r out/sample .gpu/sample
  # the CPU references (OpenBLAS, oneDNN here)
  bin/kediff train base --data .gpu/sample --config train/configs/tiny.json --out .gpu/ref/base --quiet
  rm -f .gpu/ref/base/optimizer.safetensors .gpu/ref/base/loss.png
  bin/kediff sample --base .gpu/ref/base --prompts train/configs/sample_prompts.txt --vae-decoder vae/testdata/model \
    --output .gpu/ref/samples --save-latents --quiet
  rm -f .gpu/ref/samples/*.png
  du -sh .gpu
  local total
  total=$(( $(du -sb .gpu | cut -f1) + $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) ))
  echo "gpu-check: .gpu and the tracked files: $((total >> 20)) MiB of the 64 MiB a device call carries"
  [ "$total" -lt $((60 << 20)) ] || { echo "gpu-check: too much to carry" >&2; exit 1; }
  echo "gpu-check: ready; on the device: bash tools/gpu-check.sh run   (carry [\".gpu\"], timeout_s 590)"
}

run() {
  out=${OUT:-/tmp/gpu-check-out}
  mkdir -p "$out"
  exec > >(tee "$out/log.txt") 2>&1
  local py=${GPU_CHECK_PYTHON:-python3} bin=/tmp/kediff-gpu
  mkdir -p $bin
  $py - <<PY || { echo "gpu-check: unpacking failed"; exit 1; }
import lzma, os, shutil
for src, dst in [(".gpu/kediff.xz", "$bin/kediff"), (".gpu/bench-gpu.xz", "$bin/bench-gpu"), (".gpu/dist.test.xz", "$bin/dist.test"), (".gpu/libonnxruntime.so.1.xz", "$bin/libonnxruntime.so.1")]:
    with lzma.open(src) as f, open(dst, "wb") as g:
        shutil.copyfileobj(f, g)
    os.chmod(dst, 0o755)
PY
  export KEDIFF_CUDA_LIB=$PWD/.gpu/libkediff_cuda.so KEDIFF_CUDA_EMU_LIB=$PWD/.gpu/libkediff_cuda_emu.so KEDIFF_ONNXRUNTIME=$bin/libonnxruntime.so.1
  local cublas
  cublas=$(find / -name 'libcublas.so.1[23]' -not -path '*/proc/*' 2>/dev/null | head -1)
  [ -n "$cublas" ] && export KEDIFF_CUDA_LIBS=$(dirname "$cublas")
  echo "gpu-check: $(date -u +%FT%TZ) on $(hostname); cuBLAS ${cublas:-not found}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader || true
  local kd=$bin/kediff summary=() dev=${GPU_CHECK_DEVICE:-cuda}
  # Every check gets its own limit, cut to what is left of GPU_CHECK_DEADLINE
  # (seconds from the start; keep it inside the device call's timeout_s), and
  # summary.json is rewritten after each, so a run cut short still reports.
  local start=$SECONDS deadline=${GPU_CHECK_DEADLINE:-540}
  check() { # name seconds command... (a shell function runs without the time limit)
    local name=$1 secs=$2 t0 rc left=$((deadline - (SECONDS - start)))
    shift 2
    echo; echo "== $name: $*"
    if [ "$left" -lt 15 ]; then
      echo "== $name: skipped, ${left}s left of GPU_CHECK_DEADLINE=$deadline"
      summary+=("{\"check\":\"$name\",\"ok\":false,\"exit\":-1,\"seconds\":\"0\",\"skipped\":true}")
      (IFS=,; echo "[${summary[*]}]") > "$out/summary.json"
      return
    fi
    [ "$secs" -gt "$left" ] && secs=$left
    t0=$(date +%s%N)
    if [ "$(type -t "$1")" = function ]; then "$@"; else timeout "$secs" "$@"; fi
    rc=$?
    local dt=$(( ($(date +%s%N) - t0) / 1000000 ))
    dt="$((dt / 1000)).$(printf %03d $((dt % 1000)))"
    echo "== $name: exit $rc in ${dt}s"
    summary+=("{\"check\":\"$name\",\"ok\":$([ $rc = 0 ] && echo true || echo false),\"exit\":$rc,\"seconds\":\"$dt\"}")
    (IFS=,; echo "[${summary[*]}]") > "$out/summary.json"
  }
  curve() { # metrics of the GPU run vs the CPU's: 20-step means within tol
    $py - "$1" .gpu/ref/base/metrics.jsonl "$2" <<'PY'
import json, sys
gpu, cpu, tol = [ [json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3] ] + [float(sys.argv[3])]
assert len(gpu) == len(cpu) == 200, (len(gpu), len(cpu))
worst = 0
for i in range(0, 200, 20):
    g, c = sum(gpu[i:i+20]) / 20, sum(cpu[i:i+20]) / 20
    worst = max(worst, abs(g - c) / c)
    print(f"steps {i+1:3d}-{i+20:3d}: mean loss gpu {g:.5f} cpu {c:.5f}")
print(f"worst 20-step mean difference {worst:.3%} (tolerance {tol:.0%}); first steps {gpu[:3]} vs {cpu[:3]}")
sys.exit(0 if worst <= tol else 1)
PY
  }
  same() { # losses of a run with a communicator vs train-fp32's, and the step-time overhead
    $py - "$1" "$2" <<'PY'
import json, statistics, sys
a, b = [[json.loads(l) for l in open(p)] for p in sys.argv[1:3]]
assert len(a) == len(b), (len(a), len(b))
worst = max(abs(x["loss"] - y["loss"]) / y["loss"] for x, y in zip(a, b))
ta = statistics.median(1 / x["samples_per_s"] for x in a[10:])
tb = statistics.median(1 / y["samples_per_s"] for y in b[10:])
comm = statistics.median(x.get("comm_s", 0) for x in a[10:])
print(f"losses: worst relative difference {worst:.2e} over {len(a)} steps (tolerance 1e-6)")
print(f"step time per sample: with the communicator {ta*1e3:.3f} ms, without {tb*1e3:.3f} ms: overhead {ta/tb-1:+.1%} (target < 3%); comm_s median {comm*1e3:.3f} ms")
sys.exit(0 if worst <= 1e-6 else 1)
PY
  }
  latents() { # final latents of the GPU run vs the CPU's
    $py - "$1" .gpu/ref/samples "$2" <<'PY'
import glob, json, os, struct, sys
def x0(d):
    out = []
    for f in sorted(glob.glob(os.path.join(d, "latents-*.safetensors"))):
        b = open(f, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        lo, hi = h["x_0"]["data_offsets"]
        out += struct.unpack(f"<{(hi - lo) // 4}f", b[8 + n + lo:8 + n + hi])
    return out
g, c, tol = x0(sys.argv[1]), x0(sys.argv[2]), float(sys.argv[3])
num = sum((a - b) ** 2 for a, b in zip(g, c)); den = sum(b * b for b in c)
e = (num / den) ** 0.5
print(f"final latents: {len(g)} values, relative error {e:.3e} against the CPU (tolerance {tol:g})")
sys.exit(0 if len(g) == len(c) and e <= tol else 1)
PY
  }
  # (GPU_CHECK_DEVICE=cuda-emu runs the script here on the host emulation, to try it; the
  # emulation's plain-loop GEMMs are too slow for the bench shapes)
  if [ "${GPU_CHECK_CHECKS:-1}" = 1 ]; then
  [ "$dev" = cuda-emu ] || check kernels-bench 240 $kd kernels check --device $dev --config train/configs/bench.json --batch 4 --quiet
  check kernels-tiny 120 $kd kernels check --device $dev --config train/configs/tiny.json --batch 8 --quiet
  for p in fp32 bf16; do
    tol=0.02; [ $p = bf16 ] && tol=0.05
    check train-$p 120 bash -c "$kd train base --device $dev --precision $p --data .gpu/sample --config train/configs/tiny.json --out $out/train-$p --quiet && cp $out/train-$p/metrics.jsonl $out/metrics-$p.jsonl"
    check curve-$p 30 curve "$out/train-$p/metrics.jsonl" $tol
  done
  check expert 120 $kd train expert 3 --experts 10 --device $dev --base .gpu/ref/base --data .gpu/sample --config train/configs/tiny.json --out $out/expert-3 --steps 50 --quiet
  for p in fp32 bf16; do
    tol=1e-3; [ $p = bf16 ] && tol=5e-2
    check sample-$p 120 $kd sample --device $dev --precision $p --base .gpu/ref/base --prompts train/configs/sample_prompts.txt \
      --vae-decoder vae/testdata/model --output $out/samples-$p --save-latents --quiet
    check latents-$p 30 latents "$out/samples-$p" $tol
  done
  cp "$out/samples-bf16/grid.png" "$out/grid-bf16.png" 2>/dev/null
  fi
  # dist's NCCL Comm (world of one; two ranks where there are two GPUs) with this machine's
  # NCCL, then data-parallel training through it: kediff train with --dist nccl in a world of
  # one (bootstrapped over the TCP rendezvous, and over MPI where mpirun exists) must give
  # train-fp32's losses (NCCL's mean over one rank is the identity) at its step time
  local nccl
  nccl=$(find / -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -1)
  echo "gpu-check: NCCL ${nccl:-not found (the NCCL checks fail)}"
  [ -n "$nccl" ] && export KEDIFF_NCCL_LIB=$nccl
  check nccl 90 bash -c "cd dist && $bin/dist.test -test.run NCCL -test.v -test.count=1 -test.timeout 80s"
  if [ "${GPU_CHECK_CHECKS:-1}" = 1 ]; then
    check train-nccl 120 env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
      $kd train base --device $dev --precision fp32 --dist nccl --data .gpu/sample --config train/configs/tiny.json --out $out/train-nccl --quiet
    check nccl-vs-none 30 same "$out/train-nccl/metrics.jsonl" "$out/metrics-fp32.jsonl"
    if command -v mpirun >/dev/null; then
      check train-nccl-mpi 120 mpirun --allow-run-as-root -np 1 $kd train base --device $dev --precision fp32 --dist nccl \
        --data .gpu/sample --config train/configs/tiny.json --out $out/train-nccl-mpi --quiet
      check nccl-mpi-vs-none 30 same "$out/train-nccl-mpi/metrics.jsonl" "$out/metrics-fp32.jsonl"
    else
      echo "gpu-check: no mpirun here: the MPI bootstrap is checked on the CPU only (tests under mpirun in CI)"
    fi
  fi
  # the benchmarks: speed after correctness, heaviest last, each with its own limit
  if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
    local bg="$bin/bench-gpu --device $dev --python $py --dir /tmp/bench-gpu" tdev=cuda
    [ "$dev" = cuda-emu ] && { tdev=cpu; bg="$bg --rate-elements 65536 --rate-matrix 64 --warmup 1 --steps 1 --sample-warmup 1 --sample-steps 2 --torch-modes eager"; }
    local small=train/configs/bench.json:64 sd2=train/configs/sd2.json:32 sd2s=train/configs/sd2.json
    [ "$dev" = cuda-emu ] && { small=train/configs/tiny.json:2; sd2=train/configs/tiny.json:4; sd2s=train/configs/tiny.json; }
    check bench-small 150 $bg --torch-device $tdev --models $small --sample-models "" --json $out/bench-small.json
    check bench-sample 150 $bg --torch-device $tdev --models "" --sample-models $sd2s --json $out/bench-sample.json
    check bench-sd2 300 $bg --torch-device $tdev --models $sd2 --sample-models "" --json $out/bench-sd2.json
    local ktab="--config train/configs/sd2.json --batch 1 --reps 3"
    [ "$dev" = cuda-emu ] && ktab="--config train/configs/tiny.json --batch 1 --reps 1 --rate-elements 65536 --rate-matrix 64"
    check kernels-table 150 $kd kernels bench --device $dev $ktab --top 25
  fi
  # keep what comes back small: the summary, the log, metrics and the grid
  cp "$out/train-nccl/metrics.jsonl" "$out/metrics-nccl.jsonl" 2>/dev/null
  rm -rf "$out"/train-* "$out"/expert-3 "$out"/samples-*
  (IFS=,; echo "[${summary[*]}]") > "$out/summary.json"
  echo; echo "gpu-check summary:"; $py -c "import json,sys; [print(('ok  ' if c['ok'] else 'FAIL'), c['check'], c['seconds'] + 's') for c in json.load(open(sys.argv[1]))]" "$out/summary.json"
}

case "$mode" in
prepare) prepare ;;
run) run ;;
*) echo "usage: tools/gpu-check.sh prepare | run" >&2; exit 2 ;;
esac
