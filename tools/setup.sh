#!/usr/bin/env bash
# Installs what kediff's tests, tools and benchmarks need and is not on a
# fresh machine. Idempotent: it only installs what is missing.
#
#   tools/setup.sh           everything (tests, reference tools, benchmarks)
#   tools/setup.sh runtime   only what running kediff needs: libjpeg-turbo,
#                            OpenBLAS and onnxruntime
#   tools/setup.sh cuda      the CUDA toolchain (PyPI, tools/requirements-cuda.txt)
#                            into .cache/cuda, for task build-cuda
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

# pyvenv DIR REQUIREMENTS [venv options]: a venv with the pinned packages,
# made again when the requirements change.
pyvenv() {
  local venv=$1 req=$2
  shift 2
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    echo "setup: making $venv ($req)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$@" "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
    echo "$want" > "$venv/.requirements.sha256"
  fi
}


# Debian packages:
#   libturbojpeg0           libjpeg-turbo, loaded at run time by imaging/ (the pure-Go decoder is the fallback)
#   libjpeg-turbo-progs     djpeg, the independent reference decoder for imaging/'s tests
#   python3-jieba           the reference POS tagger for tools/pos (scored next to kediff)
#   python3-pil             regenerates imaging/'s reference fixtures (tools/imaging)
#   libopenblas0            sgemm for kernels/ (loaded at run time; pure-Go GEMM otherwise)
#   libdnnl2                oneDNN convolutions for kernels/ (loaded at run time; im2col + sgemm otherwise)
#   python3-torch           PyTorch references: unet/ loads Go checkpoints into it in its tests
#   python3-venv            the tools venv below
#   python3-scipy           pytorch-fid's sqrtm (eval/fid's reference)
#   python3-torchvision     pytorch-fid's InceptionV3 module (imported by its fid_score)
#   openmpi-bin             mpirun and libmpi.so.40 for dist's MPI communicator and the mpirun tests
#   chromium                renders kediff inspect's report headless in inspect's test
# (tools/cluster/slurm-up.sh installs slurm-wlm and munge for task test-cluster)
apt_pkgs=(libturbojpeg0 libopenblas0 libdnnl2)
if [ "$what" = cuda ]; then
  apt_pkgs=(python3-venv)
fi
if [ "$what" = all ]; then
  apt_pkgs+=(libjpeg-turbo-progs python3-jieba python3-pil python3-torch python3-venv python3-scipy python3-torchvision openmpi-bin chromium)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo=sudo; else
      echo "setup: not root and no sudo: install ${missing[*]} with apt-get, then rerun" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = cuda ]; then
  pyvenv .cache/cuda tools/requirements-cuda.txt
  exit 0
fi

# The tools venv: PyPI packages pinned in tools/requirements.txt (diffusers'
# schedulers, ...) over Debian's python3 with its site packages (torch, numpy,
# PIL).
if [ "$what" = all ]; then
  pyvenv .cache/venv tools/requirements.txt --system-site-packages
fi

# The notebook venv: jupyter, pandas, pyarrow, polars, duckdb, datasets and
# matplotlib pinned in tools/requirements-notebook.txt, for task notebook and
# the shard reader test; without Debian's site packages (pandas 3 and datasets
# need numpy 2).
if [ "$what" = all ]; then
  pyvenv .cache/nbvenv tools/requirements-notebook.txt
fi

# npm: DuckDB, the independent Parquet reader that the shard tests query.
if [ "$what" = all ] && [ -f tools/duckdb/package.json ] && [ ! -d tools/duckdb/node_modules/@duckdb/node-api ]; then
  echo "setup: installing tools/duckdb (npm ci)"
  (cd tools/duckdb && npm ci --no-audit --no-fund --loglevel=error)
fi

# onnxruntime: the shared library that the npm package onnxruntime-node ships,
# fetched with `npm pack` (no install scripts run) into .cache/onnxruntime.
# KEDIFF_ONNXRUNTIME overrides the path at run time (e.g. a GPU build).
ort_version=1.30.0
ort_dir=.cache/onnxruntime/$ort_version
if [ ! -f "$ort_dir/libonnxruntime.so.1" ]; then
  echo "setup: fetching onnxruntime $ort_version (npm pack onnxruntime-node)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ort_version" >/dev/null)
  mkdir -p "$ort_dir"
  tar -xzf "$tmp"/onnxruntime-node-$ort_version.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mv "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 "$ort_dir/"
  rm -rf "$tmp"
fi
