#ifndef DTRAIN_CMPI_H
#define DTRAIN_CMPI_H
// A small C shim over Open MPI for Swift.
//
// Open MPI's communicators, datatypes and ops are macros over global structs, which Swift cannot
// import. Here communicators and requests cross as integer handles (MPI_Comm_c2f / MPI_Request_c2f),
// and every call returns an MPI error code: the world communicator is set to MPI_ERRORS_RETURN, so a
// failure becomes a Swift error carrying MPI's error string instead of an abort.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CMPI_SUCCESS = 0,
};

/// Element types the collectives carry. CMPI_BFLOAT16 is bf16 bits in uint16; it reduces with
/// CMPI_SUM only (an MPI user operation that adds in float and rounds each partial sum to bf16);
/// other reductions of it fail with MPI_ERR_OP.
typedef enum { CMPI_FLOAT32 = 0, CMPI_FLOAT64 = 1, CMPI_INT64 = 2, CMPI_BYTE = 3, CMPI_BFLOAT16 = 4 } cmpi_dtype;
/// Reductions.
typedef enum { CMPI_SUM = 0, CMPI_MAX = 1, CMPI_MIN = 2 } cmpi_op;

/// MPI_Init_thread; `provided` receives the thread level granted (0 single .. 3 multiple). Also
/// creates the bf16 sum operation.
int cmpi_init(int required, int *provided);
int cmpi_initialized(void);
int cmpi_finalize(void);
/// The world communicator's handle.
int cmpi_comm_world(void);
int cmpi_comm_rank(int comm, int *rank);
int cmpi_comm_size(int comm, int *size);
/// A duplicate of `comm` (MPI_Comm_dup) for a thread that communicates on its own.
int cmpi_comm_dup(int comm, int *newcomm);
int cmpi_comm_free(int comm);

int cmpi_allreduce_inplace(int comm, void *buffer, int64_t count, cmpi_dtype type, cmpi_op op);
/// Non-blocking in-place allreduce; `request` receives a handle for cmpi_test / cmpi_wait.
int cmpi_iallreduce_inplace(int comm, void *buffer, int64_t count, cmpi_dtype type, cmpi_op op, int *request);
/// Sets *done to 1 when the request has completed (the request is then freed).
int cmpi_test(int request, int *done);
int cmpi_wait(int request);
int cmpi_bcast(int comm, void *buffer, int64_t count, cmpi_dtype type, int root);
/// Each rank contributes `count` elements; `recv` holds size * count.
int cmpi_allgather(int comm, const void *send, void *recv, int64_t count, cmpi_dtype type);
int cmpi_barrier(int comm);
int cmpi_abort(int comm, int code);
/// MPI's text for an error code, written into `out` (at most `capacity` bytes, NUL-terminated).
void cmpi_error_string(int code, char *out, int capacity);

#ifdef __cplusplus
}
#endif
#endif
