// mpi_shim.h: kediff's binding to Open MPI's libmpi, loaded at run time
// with dlopen so that building needs no MPI headers or libraries. See mpi.go.
#ifndef KEDIFF_DIST_MPI_SHIM_H
#define KEDIFF_DIST_MPI_SHIM_H

#include <stdint.h>

// kd_mpi_open dlopens name and resolves the functions and handle objects
// this package calls. The first library that resolves is kept for the
// process; a later success only checks its library. On failure it writes
// why (dlerror's text, or the missing symbol) to err and returns -1.
int kd_mpi_open(const char *name, char *err, int errlen);

// The calls below need a successful kd_mpi_open; they return MPI's error
// code (0, MPI_SUCCESS, when all went well). All but kd_mpi_state and
// kd_mpi_error_string must run on the thread that called kd_mpi_init.
int kd_mpi_state(int *initialized, int *finalized);
int kd_mpi_init(int *provided);
int kd_mpi_rank_size(int *rank, int *size);
int kd_mpi_allreduce_sum_f32(float *buf, int64_t n, int64_t chunk);
int kd_mpi_bcast(void *buf, int64_t n, int bytes, int root, int64_t chunk);
int kd_mpi_barrier(void);
int kd_mpi_finalize(void);
void kd_mpi_error_string(int code, char *buf, int len);

#endif
