// Package kernels holds the forward and backward kernels of kediff's U-Net and
// text encoder, in the style of llm.c's train_gpt2.c: one free function pair
// per op (FooForward / FooBackward), tensors as flat slices with their shapes
// passed as ints and named in the comments (NCHW for images, (B,T,C) for
// sequences), and parameters, gradients and optimizer moments in one contiguous
// buffer each (Params).
//
// Conventions, shared by every op:
//   - Backward functions accumulate (+=) into their gradient outputs, so the
//     caller zeroes gradients once per step and branches (residuals, a tensor
//     used twice) sum for free. A nil gradient output is skipped where noted.
//   - Where backward needs forward statistics (norm mean/rstd, attention
//     probabilities), the forward fills caller-provided buffers.
//   - Functions are generic over Float. Training runs float32; the tests run the
//     same code in float64 and check every backward against central finite
//     differences, and the float32 forwards and gradients against PyTorch
//     fixtures (tools/kernels/make_refs.py).
//   - Work is split across GOMAXPROCS goroutines of a shared pool; matrix
//     products go through Gemm, which loads OpenBLAS at run time (dlopen of
//     libopenblas.so.0, or $KEDIFF_OPENBLAS) and otherwise falls back to a
//     blocked pure-Go GEMM. Building needs neither OpenBLAS nor cgo.
//   - With cgo, the float32 instances of the elementwise, normalisation,
//     softmax, im2col and optimizer loops hand their chunks to C (simd.c,
//     compiled for AVX-512, AVX2 and the baseline, picked by CPUID); the Go
//     loops stay the float64 path, the CGO_ENABLED=0 path and the reference
//     the C is tested against (simd_test.go).
//   - CPU runs 3x3 convolutions on oneDNN (subpackage onednn, Debian libdnnl2
//     through dlopen) when it loads, about twice im2col + sgemm's speed with
//     AVX-512; Conv2DForward/Conv2DBackward remain the reference it is tested
//     against and the fallback (KEDIFF_ONEDNN=off).
//
// Backend wraps the float32 ops in one interface, op by op, so a CUDA
// implementation can replace CPU without changing the model code.
package kernels
