//go:build cgo

// mpi_shim.c: calls into Open MPI through pointers resolved with dlsym, so
// no mpi.h is needed. The types below are Open MPI's ABI (4.x and 5.x):
// MPI_Comm, MPI_Datatype and MPI_Op are pointers to predefined objects
// (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, ...),
// counts are int, MPI_IN_PLACE is (void *)1, MPI_THREAD_FUNNELED is 1.

#include <dlfcn.h>
#include <stdio.h>

#include "mpi_shim.h"

typedef void *kd_comm;
typedef void *kd_type;
typedef void *kd_op;

#define KD_IN_PLACE ((void *)1)
#define KD_THREAD_FUNNELED 1

struct kd_mpi {
	int (*init_thread)(int *argc, char ***argv, int required, int *provided);
	int (*initialized)(int *flag);
	int (*finalized)(int *flag);
	int (*finalize)(void);
	int (*comm_rank)(kd_comm comm, int *rank);
	int (*comm_size)(kd_comm comm, int *size);
	int (*allreduce)(const void *send, void *recv, int count, kd_type type, kd_op op, kd_comm comm);
	int (*bcast)(void *buf, int count, kd_type type, int root, kd_comm comm);
	int (*barrier)(kd_comm comm);
	int (*abort)(kd_comm comm, int code);
	int (*error_string)(int code, char *buf, int *len);
	kd_comm world;
	kd_type float32;
	kd_type byte;
	kd_op sum;
};

// mpi is the library kd_mpi_open kept; installed says it is set. Both are
// written once, under the Go side's lock, before any MPI call.
static struct kd_mpi mpi;
static int installed;

int kd_mpi_open(const char *name, char *err, int errlen) {
	void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e != NULL ? e : "dlopen failed");
		return -1;
	}
	struct kd_mpi t;
	struct {
		const char *name;
		void **to;
	} syms[] = {
		{"MPI_Init_thread", (void **)&t.init_thread},
		{"MPI_Initialized", (void **)&t.initialized},
		{"MPI_Finalized", (void **)&t.finalized},
		{"MPI_Finalize", (void **)&t.finalize},
		{"MPI_Comm_rank", (void **)&t.comm_rank},
		{"MPI_Comm_size", (void **)&t.comm_size},
		{"MPI_Allreduce", (void **)&t.allreduce},
		{"MPI_Bcast", (void **)&t.bcast},
		{"MPI_Barrier", (void **)&t.barrier},
		{"MPI_Abort", (void **)&t.abort},
		{"MPI_Error_string", (void **)&t.error_string},
		{"ompi_mpi_comm_world", &t.world},
		{"ompi_mpi_float", &t.float32},
		{"ompi_mpi_byte", &t.byte},
		{"ompi_mpi_op_sum", &t.sum},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		dlerror();
		*syms[i].to = dlsym(h, syms[i].name);
		if (*syms[i].to == NULL) {
			snprintf(err, errlen, "%s has no symbol %s: it is not Open MPI 4 or later (MPICH and others are not supported)",
			         name, syms[i].name);
			dlclose(h);
			return -1;
		}
	}
	if (installed) {
		dlclose(h); // the kept library holds its own reference
		return 0;
	}
	mpi = t;
	installed = 1;
	return 0;
}

int kd_mpi_state(int *initialized, int *finalized) {
	int rc = mpi.initialized(initialized);
	if (rc != 0) {
		return rc;
	}
	return mpi.finalized(finalized);
}

int kd_mpi_init(int *provided) { return mpi.init_thread(NULL, NULL, KD_THREAD_FUNNELED, provided); }

int kd_mpi_rank_size(int *rank, int *size) {
	int rc = mpi.comm_rank(mpi.world, rank);
	if (rc != 0) {
		return rc;
	}
	return mpi.comm_size(mpi.world, size);
}

// The loops below split n elements into calls of at most chunk (< 2^31):
// MPI counts are int.

int kd_mpi_allreduce_sum_f32(float *buf, int64_t n, int64_t chunk) {
	for (int64_t off = 0; off < n; off += chunk) {
		int64_t m = n - off < chunk ? n - off : chunk;
		int rc = mpi.allreduce(KD_IN_PLACE, buf + off, (int)m, mpi.float32, mpi.sum, mpi.world);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int kd_mpi_bcast(void *buf, int64_t n, int bytes, int root, int64_t chunk) {
	kd_type type = bytes ? mpi.byte : mpi.float32;
	int64_t size = bytes ? 1 : 4;
	for (int64_t off = 0; off < n; off += chunk) {
		int64_t m = n - off < chunk ? n - off : chunk;
		int rc = mpi.bcast((char *)buf + off * size, (int)m, type, root, mpi.world);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int kd_mpi_barrier(void) { return mpi.barrier(mpi.world); }

int kd_mpi_finalize(void) { return mpi.finalize(); }

void kd_mpi_error_string(int code, char *buf, int len) {
	// MPI_MAX_ERROR_STRING is 256 in Open MPI; a smaller buffer gets none.
	int n = 0;
	if (len < 256 || mpi.error_string(code, buf, &n) != 0) {
		snprintf(buf, len, "MPI error %d", code);
		return;
	}
	buf[n < len ? n : len - 1] = 0;
}
