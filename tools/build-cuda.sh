#!/usr/bin/env bash
# Builds kernels/cuda/csrc into the libraries that kediff loads at run time:
#
#   tools/build-cuda.sh emu    bin/libkediff_cuda_emu.so, the host emulation (g++)
#   tools/build-cuda.sh        bin/libkediff_cuda.so for GPUs (nvcc: $NVCC, else
#                              .cache/cuda from task setup-cuda, else the PATH's)
#
# The GPU library is a fat binary for sm_80 and sm_90 (and sm_90a when nvcc
# knows it) plus sm_90 PTX, with the CUDA runtime linked statically: it needs
# no GPU to build and runs with any CUDA 13 driver; cuBLAS is opened at run
# time.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
src=kernels/cuda/csrc
if [ "${1:-}" = emu ]; then
  exec g++ -std=c++17 -O2 -Wall -pthread -shared -fPIC -o bin/libkediff_cuda_emu.so "$src/kd_emu.cc"
fi
nvcc=${NVCC:-}
if [ -z "$nvcc" ]; then
  for c in .cache/cuda/lib/python3*/site-packages/nvidia/cu13/bin/nvcc; do
    [ -x "$c" ] && nvcc=$c
  done
fi
[ -n "$nvcc" ] || nvcc=$(command -v nvcc || true)
if [ -z "$nvcc" ]; then
  echo "build-cuda: no nvcc: run go tool task setup-cuda (CUDA 13.0 from PyPI into .cache/cuda) or set NVCC" >&2
  exit 1
fi
cudalib=$(dirname "$(dirname "$nvcc")")/lib
archs=(-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90)
# sm_90a (Hopper's wgmma, setmaxnreg) where this nvcc assembles it
probe=$(mktemp -d)
echo '__global__ void k() {}' > "$probe/p.cu"
if "$nvcc" -gencode arch=compute_90a,code=sm_90a -c -o "$probe/p.o" "$probe/p.cu" 2>/dev/null; then
  archs+=(-gencode arch=compute_90a,code=sm_90a)
fi
rm -rf "$probe"
archs+=(-gencode arch=compute_90,code=compute_90)
echo "build-cuda: $("$nvcc" --version | tail -1) -> bin/libkediff_cuda.so (${archs[*]})"
"$nvcc" -std=c++17 -O2 -shared -Xcompiler -fPIC,-Wall -L"$cudalib" --cudart static "${archs[@]}" \
  -o bin/libkediff_cuda.so "$src/kd_cuda.cu"
