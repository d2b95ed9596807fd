// kd_cuda.cu: libkediff_cuda, kediff's kernels on an NVIDIA GPU. Built by nvcc
// into a shared library (task build-cuda) with the CUDA runtime linked
// statically; the driver (libcuda.so.1) and cuBLAS (libcublas.so.13 or .12,
// from $KEDIFF_CUDA_LIBS first) are found at run time, so the library needs no
// GPU to build and runs with the CUDA 13 driver (580+) of any machine. The
// kernels (kd_ops.h) and the C ABI (kd_api.h) are the ones the host emulation
// (kd_emu.cc) runs and tests; this file adds the runtime: device selection,
// memory, one stream, grid-stride launches and cuBLAS GEMMs.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "kd_common.h"

namespace {

// cuBLAS, declared here (the library is opened at run time; no header needed).
typedef int cublasStatus_t;
typedef void *cublasHandle_t;
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUDA_R_32F_ = 0, CUDA_R_16BF_ = 14, CUBLAS_COMPUTE_32F_ = 68, CUBLAS_GEMM_DEFAULT_ = -1 };

struct Cublas {
	void *lib = nullptr;
	cublasStatus_t (*create)(cublasHandle_t *);
	cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
	cublasStatus_t (*gemm)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, long long, const void *, int,
	                       int, long long, const void *, void *, int, int, long long, int, int, int);
	const char *(*status)(cublasStatus_t);
	cublasHandle_t h = nullptr;
	std::string path;
} g_blas;

cudaStream_t g_stream;
int g_device = -1;
char g_msg[512];

const char *cuerr(const char *what, cudaError_t e) {
	snprintf(g_msg, sizeof g_msg, "cuda: %s: %s", what, cudaGetErrorString(e));
	return g_msg;
}

#define CU(call, what)                                                                                                           \
	do {                                                                                                                         \
		cudaError_t e_ = (call);                                                                                                 \
		if (e_ != cudaSuccess) return cuerr(what, e_);                                                                           \
	} while (0)

// openCublas tries $KEDIFF_CUDA_LIBS (colon-separated folders), then the
// loader's search path, for libcublas.so.13 and libcublas.so.12.
const char *openCublas() {
	const char *names[] = {"libcublas.so.13", "libcublas.so.12"};
	std::string tried;
	const char *dirs = getenv("KEDIFF_CUDA_LIBS");
	std::string d = dirs ? dirs : "";
	size_t start = 0;
	while (!g_blas.lib && start <= d.size() && !d.empty()) {
		size_t end = d.find(':', start);
		std::string dir = d.substr(start, end == std::string::npos ? std::string::npos : end - start);
		for (const char *n : names) {
			std::string p = dir + "/" + n;
			if ((g_blas.lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL))) {
				g_blas.path = p;
				break;
			}
			tried += " " + p;
		}
		if (end == std::string::npos) break;
		start = end + 1;
	}
	for (const char *n : names) {
		if (g_blas.lib) break;
		if ((g_blas.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL))) g_blas.path = n;
		tried += std::string(" ") + n;
	}
	if (!g_blas.lib) {
		snprintf(g_msg, sizeof g_msg, "cuda: cuBLAS not found (tried%s); set KEDIFF_CUDA_LIBS to the folder holding libcublas.so.13 (e.g. a PyTorch install's nvidia/cu13/lib)", tried.c_str());
		return g_msg;
	}
	*(void **)&g_blas.create = dlsym(g_blas.lib, "cublasCreate_v2");
	*(void **)&g_blas.set_stream = dlsym(g_blas.lib, "cublasSetStream_v2");
	*(void **)&g_blas.gemm = dlsym(g_blas.lib, "cublasGemmStridedBatchedEx");
	*(void **)&g_blas.status = dlsym(g_blas.lib, "cublasGetStatusString");
	if (!g_blas.create || !g_blas.set_stream || !g_blas.gemm) {
		snprintf(g_msg, sizeof g_msg, "cuda: %s lacks cublasCreate_v2, cublasSetStream_v2 or cublasGemmStridedBatchedEx", g_blas.path.c_str());
		return g_msg;
	}
	return nullptr;
}

template <class F> __global__ void each_kernel(long n, F f) {
	for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)blockDim.x * gridDim.x) f(i);
}

// BlockRow is a row kernel's Row when a thread block shares the row: sum and
// max reduce over the block (warp shuffles, then one value per warp through
// shared memory); every thread of the block must reach each call.
struct BlockRow {
	__device__ long lane() const { return threadIdx.x; }
	__device__ long width() const { return blockDim.x; }
	template <class Op> __device__ double reduce(double v, Op op, double identity) {
		__shared__ double part[32];
		for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
		int w = threadIdx.x / 32, l = threadIdx.x % 32, nw = (blockDim.x + 31) / 32;
		__syncthreads(); // the previous call's readers are done with part
		if (l == 0) part[w] = v;
		__syncthreads();
		if (w == 0) {
			v = l < nw ? part[l] : identity;
			for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
			if (l == 0) part[0] = v;
		}
		__syncthreads();
		return part[0];
	}
	struct Add {
		__device__ double operator()(double a, double b) const { return a + b; }
	};
	struct Max {
		__device__ double operator()(double a, double b) const { return fmax(a, b); }
	};
	__device__ double sum(double v) { return reduce(v, Add{}, 0.0); }
	__device__ double max(double v) { return reduce(v, Max{}, -INFINITY); }
};

template <class F> __global__ void rows_serial_kernel(long n, F f) {
	SerialRow t;
	for (long r = blockIdx.x * (long)blockDim.x + threadIdx.x; r < n; r += (long)blockDim.x * gridDim.x) f(r, t);
}

template <class F> __global__ void rows_block_kernel(long n, F f) {
	BlockRow t;
	for (long r = blockIdx.x; r < n; r += gridDim.x) f(r, t);
}

} // namespace

namespace rt {

const char *init(int device, char *name, int name_len, long long *total) {
	if (g_device >= 0) {
		if (device != g_device) return "cuda: this process already uses another GPU (one device per process)";
	} else {
		if (!dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL))
			return "cuda: no NVIDIA driver (libcuda.so.1 not found): --device cuda needs a machine with an NVIDIA GPU and its driver";
		int n = 0;
		CU(cudaGetDeviceCount(&n), "counting devices");
		if (device < 0 || device >= n) {
			snprintf(g_msg, sizeof g_msg, "cuda: device %d asked for, %d present", device, n);
			return g_msg;
		}
		CU(cudaSetDevice(device), "selecting the device");
		CU(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking), "creating a stream");
		if (const char *e = openCublas()) return e;
		cublasStatus_t s = g_blas.create(&g_blas.h);
		if (s == 0) s = g_blas.set_stream(g_blas.h, g_stream);
		if (s != 0) {
			snprintf(g_msg, sizeof g_msg, "cuda: cublasCreate (%s): status %d %s", g_blas.path.c_str(), s, g_blas.status ? g_blas.status(s) : "");
			return g_msg;
		}
		g_device = device;
	}
	cudaDeviceProp p;
	CU(cudaGetDeviceProperties(&p, device), "reading device properties");
	snprintf(name, name_len, "%s (sm_%d%d, %d SMs; cuBLAS %s)", p.name, p.major, p.minor, p.multiProcessorCount, g_blas.path.c_str());
	*total = (long long)p.totalGlobalMem;
	return nullptr;
}

void *dmalloc(size_t bytes, const char **err) {
	void *p = nullptr;
	cudaError_t e = cudaMalloc(&p, bytes);
	if (e != cudaSuccess) {
		size_t free = 0, total = 0;
		cudaMemGetInfo(&free, &total);
		snprintf(g_msg, sizeof g_msg, "cuda: out of device memory: %.1f MiB asked for, %.1f MiB free of %.1f MiB (try a smaller batch)",
		         bytes / 1048576.0, free / 1048576.0, total / 1048576.0);
		*err = g_msg;
		return nullptr;
	}
	if ((e = cudaMemsetAsync(p, 0, bytes, g_stream)) != cudaSuccess) *err = cuerr("clearing new memory", e);
	return p;
}

void dfree(void *p) { cudaFree(p); }

const char *h2d(void *dst, const void *src, size_t bytes) {
	// From pageable memory the call returns once src is staged: the caller
	// may reuse it, and later kernels on the stream see the data.
	CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream), "copying to the device");
	return nullptr;
}

const char *d2h(void *dst, const void *src, size_t bytes) {
	CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream), "copying to the host");
	CU(cudaStreamSynchronize(g_stream), "waiting for the device");
	return nullptr;
}

const char *dzero(void *p, size_t bytes) {
	CU(cudaMemsetAsync(p, 0, bytes, g_stream), "clearing memory");
	return nullptr;
}

const char *sync() {
	CU(cudaStreamSynchronize(g_stream), "waiting for the device");
	return nullptr;
}

void *stream() { return (void *)g_stream; }

// bind makes the process's GPU current on the calling thread. The runtime
// keeps the current device per thread and Go runs a goroutine's calls on
// any of its threads, where device 0 is current unless set: without this,
// a process on cuda:1 would launch into its stream from device 0.
void bind() {
	if (g_device > 0) cudaSetDevice(g_device);
}

template <class F> const char *each(long n, const F &f) {
	if (n <= 0) return nullptr;
	long blocks = (n + 255) / 256;
	if (blocks > 65536) blocks = 65536;
	each_kernel<F><<<(unsigned)blocks, 256, 0, g_stream>>>(n, f);
	CU(cudaGetLastError(), "launching a kernel");
	return nullptr;
}

// rows runs a row kernel in the variant kd_set_variant chose: 1, one thread
// per row (grid-stride); 2, a block of 256 threads per row.
template <class F> const char *rows(long n, const F &f) {
	if (n <= 0) return nullptr;
	if (kd_variants[KD_VAR_ROWS] == 1) {
		long blocks = (n + 255) / 256;
		rows_serial_kernel<F><<<(unsigned)(blocks > 65536 ? 65536 : blocks), 256, 0, g_stream>>>(n, f);
	} else {
		rows_block_kernel<F><<<(unsigned)(n > 1048576 ? 1048576 : n), 256, 0, g_stream>>>(n, f);
	}
	CU(cudaGetLastError(), "launching a row kernel");
	return nullptr;
}

void *scratch(int slot, size_t bytes, const char **err) {
	static void *bufs[8];
	static size_t sizes[8];
	if (slot < 0 || slot >= 8) {
		*err = "cuda: bad scratch slot";
		return nullptr;
	}
	if (sizes[slot] < bytes) {
		if (bufs[slot]) {
			cudaStreamSynchronize(g_stream);
			cudaFree(bufs[slot]);
			kd_mem_add(-(long long)sizes[slot]);
			bufs[slot] = nullptr;
			sizes[slot] = 0;
		}
		bufs[slot] = dmalloc(bytes, err);
		if (*err) return nullptr;
		sizes[slot] = bytes;
		kd_mem_add((long long)bytes);
	}
	return bufs[slot];
}

// gemm: row-major C = alpha op(A) op(B) + beta C as cuBLAS's column-major
// C^T = op(B)^T op(A)^T, fp32 accumulation, A and B of one element type.
const char *gemm(bool ta, bool tb, long M, long N, long K, float alpha, Ten A, long lda, long sA, Ten B, long ldb, long sB, float beta,
                 Ten C, long ldc, long sC, long batch) {
	auto ty = [](int dt) { return dt == KD_BF16 ? CUDA_R_16BF_ : CUDA_R_32F_; };
	cublasStatus_t s = g_blas.gemm(g_blas.h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha,
	                               B.p, ty(B.dt), (int)ldb, sB, A.p, ty(A.dt), (int)lda, sA, &beta, C.p, ty(C.dt), (int)ldc, sC, (int)batch,
	                               CUBLAS_COMPUTE_32F_, CUBLAS_GEMM_DEFAULT_);
	if (s != 0) {
		snprintf(g_msg, sizeof g_msg, "cuda: cuBLAS GEMM %ldx%ldx%ld (batch %ld): status %d %s", M, N, K, batch, s, g_blas.status ? g_blas.status(s) : "");
		return g_msg;
	}
	return nullptr;
}

} // namespace rt

#include "kd_api.h"
