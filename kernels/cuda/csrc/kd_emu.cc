// kd_emu.cc: libkediff_cuda_emu, the host emulation of libkediff_cuda. The
// same kernels (kd_ops.h) and the same C ABI (kd_api.h) run on the CPU: each()
// is a loop over the indices a CUDA grid would cover, "device" memory is host
// memory behind PROT_NONE views, and GEMMs are plain loops with float
// accumulation (and bf16 inputs where the arguments are bf16, as the tensor
// cores take them). It lets the tests and CI check every kernel and the whole
// device code path of kernels/cuda without a GPU; only the CUDA runtime and
// cuBLAS themselves are left to a machine with one (kediff kernels check).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#define KD_ROWS_DEFAULT 1 // serial rows: fast; variant 2 is for checking row kernels in blocks
#include "kd_common.h"

namespace rt {

inline const char *init(int device, char *name, int name_len, long long *total) {
	if (device != 0) return "the host emulation has one device, 0";
	snprintf(name, name_len, "host emulation of libkediff_cuda");
	*total = 0;
	return nullptr;
}

inline void *dmalloc(size_t bytes, const char **err) {
	void *p = calloc(1, bytes);
	if (!p) *err = "out of host memory";
	return p;
}

inline void dfree(void *p) { free(p); }
inline const char *h2d(void *dst, const void *src, size_t bytes) { return memcpy(dst, src, bytes), nullptr; }
inline const char *d2h(void *dst, const void *src, size_t bytes) { return memcpy(dst, src, bytes), nullptr; }
inline const char *dzero(void *p, size_t bytes) { return memset(p, 0, bytes), nullptr; }
inline const char *sync() { return nullptr; }
inline void *stream() { return nullptr; }
inline void bind() {}

template <class F> const char *each(long n, const F &f) {
	for (long i = 0; i < n; i++) f(i);
	return nullptr;
}

// EmuBlock is a thread block emulated by host threads, so that the row
// kernels' lane striding, lane-0 writes and block reductions are checked
// here as the GPU's variant 2 runs them (only the warp shuffles themselves
// are left to the GPU).
struct EmuBlock {
	int width;
	std::mutex mu;
	std::condition_variable cv;
	int arrived = 0;
	long gen = 0;
	std::vector<double> part;
	void barrier() {
		std::unique_lock<std::mutex> l(mu);
		long g = gen;
		if (++arrived == width) {
			arrived = 0;
			gen++;
			cv.notify_all();
		} else {
			cv.wait(l, [&] { return gen != g; });
		}
	}
};

struct EmuRow {
	EmuBlock *b;
	long l;
	long lane() const { return l; }
	long width() const { return b->width; }
	double reduce(double v, bool isMax) {
		b->part[l] = v;
		b->barrier();
		double r = b->part[0];
		for (int i = 1; i < b->width; i++) r = isMax ? fmax(r, b->part[i]) : r + b->part[i];
		b->barrier(); // every lane has read part before the next reduction writes it
		return r;
	}
	double sum(double v) { return reduce(v, false); }
	double max(double v) { return reduce(v, true); }
};

// rows runs a row kernel: variant 1 serially, variant 2 on an emulated
// block of 4 threads (each lane walks every row, as a CUDA block does).
template <class F> const char *rows(long n, const F &f) {
	if (kd_variants[KD_VAR_ROWS] == 1) {
		SerialRow t;
		for (long r = 0; r < n; r++) f(r, t);
		return nullptr;
	}
	EmuBlock b;
	b.width = 4;
	b.part.resize(b.width);
	std::vector<std::thread> lanes;
	for (int l = 0; l < b.width; l++)
		lanes.emplace_back([&, l] {
			EmuRow t{&b, l};
			for (long r = 0; r < n; r++) f(r, t);
		});
	for (auto &t : lanes) t.join();
	return nullptr;
}

inline void *scratch(int slot, size_t bytes, const char **err) {
	static std::vector<char> bufs[8];
	if (slot < 0 || slot >= 8) {
		*err = "bad scratch slot";
		return nullptr;
	}
	if (bufs[slot].size() < bytes) {
		kd_mem_add((long long)bytes - (long long)bufs[slot].size());
		bufs[slot].resize(bytes);
	}
	return bufs[slot].data();
}

// gemm: row-major C = alpha op(A) op(B) + beta C for batch matrices.
inline const char *gemm(bool ta, bool tb, long M, long N, long K, float alpha, Ten A, long lda, long sA, Ten B, long ldb, long sB,
                        float beta, Ten C, long ldc, long sC, long batch) {
	// the type combinations cuBLAS's GemmEx takes with fp32 compute, no others
	if (A.dt != B.dt || (A.dt == KD_F32 && C.dt == KD_BF16)) return "gemm: element types cuBLAS does not take (A, B differ or fp32 inputs to a bf16 C)";
	std::vector<float> row(N);
	for (long z = 0; z < batch; z++) {
		Ten a = A, b = B, c = C;
		a.p = (char *)A.p + z * sA * kd_size(A.dt);
		b.p = (char *)B.p + z * sB * kd_size(B.dt);
		c.p = (char *)C.p + z * sC * kd_size(C.dt);
		for (long i = 0; i < M; i++) {
			for (long j = 0; j < N; j++) row[j] = 0;
			for (long k = 0; k < K; k++) {
				float av = ld(a, ta ? k * lda + i : i * lda + k);
				for (long j = 0; j < N; j++) row[j] += av * ld(b, tb ? j * ldb + k : k * ldb + j);
			}
			for (long j = 0; j < N; j++) {
				float v = alpha * row[j];
				if (beta != 0) v += beta * ld(c, i * ldc + j);
				st(c, i * ldc + j, v);
			}
		}
	}
	return nullptr;
}

} // namespace rt

#include "kd_api.h"
