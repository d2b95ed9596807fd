// Package cuda runs kediff's kernels on NVIDIA GPUs: a kernels.Backend
// (Device) whose buffers live in device memory, behind the same ops the CPU
// backend has, so the trainer and the sampler run unchanged with --device
// cuda[:N].
//
// Why a run-time library. The CUDA C++ (csrc/) is built by nvcc into
// libkediff_cuda.so (task build-cuda) with the CUDA runtime linked
// statically, and the one ordinary kediff binary dlopens it when a command
// asks for a GPU, as ollama loads ggml's CUDA backend: one download serves CPU
// and GPU machines, building kediff needs no CUDA toolchain, a missing driver
// or library is a clear message rather than a link error, and the default
// and CGO_ENABLED=0 builds stay as they are. The library opens the driver
// (libcuda.so.1) and cuBLAS (libcublas.so.13 or .12, from $KEDIFF_CUDA_LIBS
// first) itself at run time, so it runs with whatever CUDA 13 libraries a
// machine has. It is a fat binary for sm_80 and sm_90 (and sm_90a) plus
// sm_90 PTX.
//
// Buffers. Alloc returns a view: a []float32 over an address range reserved
// with PROT_NONE, 4 bytes an element, that the C side maps to the real
// device allocation and its element type. Go code slices views as it slices
// host buffers (the model's arenas are carved that way), the C side resolves
// every argument and checks its extent, and any host read or write of a view
// faults at once instead of reading garbage. Buffers are allocated per
// kernels.Purpose: parameters, gradients, optimizer moments, statistics and
// the gradients of activations are fp32, and with bf16 precision
// (Options.BF16, the default on a GPU) activations are bf16, with fp32
// accumulation in every kernel and GEMM (GEMMs round a fp32 operand to bf16
// when the other is bf16); checkpoints stay fp32. On the sample's tiny model
// a bf16 training step's parameter gradients are within 2.8e-2 of the fp32
// step's per tensor (3.1e-2 with bf16 activation gradients, 2.0e-2 with only
// the GEMM inputs in bf16 and everything stored in fp32).
//
// Kernels. csrc/kd_ops.h holds one functor per kernel, computing one output
// element or row; csrc/kd_api.h composes them (and cuBLAS GEMMs:
// convolutions as im2col plus batched GEMM, attention as two strided batched
// GEMMs around a row softmax with key scaling and key mask) into the ops of
// the C ABI. These are correctness-first versions (one thread per element or
// row, reductions in double as the CPU reference accumulates); faster ones
// join them later, each checked the same way.
//
// Checking. The same sources also build, with a plain C++ compiler, into
// libkediff_cuda_emu.so, the host emulation (--device cuda-emu; task build
// makes it): each() is a loop over the indices a CUDA grid would cover,
// "device" memory is host memory behind the same views, GEMMs are loops.
// Recorder records every kernel call (op and shape) of a real model's
// training step, and Check runs each on the CPU reference and on a device
// from the same fresh random inputs, device outputs poisoned with NaN first,
// comparing every output (1e-4 relative in fp32, 2e-2 with bf16
// activations). The tests run Check, training and sampling on the emulation,
// so every kernel's code is checked in CI without a GPU; kediff kernels check
// --device cuda runs the same checks on a GPU, and tools/gpu-check.sh runs
// them with training and sampling where one is lent.
package cuda
