#include "cmpi.h"
#include "dtrain_bf16.h"
#include <mpi.h>
#include <limits.h>
#include <string.h>

static MPI_Comm comm_of(int handle) { return MPI_Comm_f2c((MPI_Fint)handle); }

static MPI_Datatype type_of(cmpi_dtype t) {
    switch (t) {
    case CMPI_FLOAT32: return MPI_FLOAT;
    case CMPI_FLOAT64: return MPI_DOUBLE;
    case CMPI_INT64: return MPI_INT64_T;
    case CMPI_BFLOAT16: return MPI_UINT16_T;
    default: return MPI_BYTE;
    }
}

// The sum of bf16 values (CMPI_BFLOAT16 carried as MPI_UINT16_T): created by cmpi_init.
static MPI_Op bf16_sum_op = MPI_OP_NULL;

static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    dtrain_bf16_sum((const uint16_t *)in, (uint16_t *)inout, *len);
}

/// The MPI operation for `o` on `t`, or MPI_OP_NULL where there is none (a bf16 max or min).
static MPI_Op op_of(cmpi_op o, cmpi_dtype t) {
    if (t == CMPI_BFLOAT16) return o == CMPI_SUM ? bf16_sum_op : MPI_OP_NULL;
    switch (o) {
    case CMPI_MAX: return MPI_MAX;
    case CMPI_MIN: return MPI_MIN;
    default: return MPI_SUM;
    }
}

static int element_size(cmpi_dtype t) {
    switch (t) {
    case CMPI_FLOAT32: return 4;
    case CMPI_BFLOAT16: return 2;
    case CMPI_FLOAT64: case CMPI_INT64: return 8;
    default: return 1;
    }
}

int cmpi_init(int required, int *provided) {
    int rc = MPI_Init_thread(NULL, NULL, required, provided);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Op_create(bf16_sum, 1, &bf16_sum_op);
    if (rc != MPI_SUCCESS) return rc;
    return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

int cmpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
int cmpi_finalize(void) {
    if (bf16_sum_op != MPI_OP_NULL) MPI_Op_free(&bf16_sum_op);
    return MPI_Finalize();
}
int cmpi_comm_world(void) { return (int)MPI_Comm_c2f(MPI_COMM_WORLD); }
int cmpi_comm_rank(int comm, int *rank) { return MPI_Comm_rank(comm_of(comm), rank); }
int cmpi_comm_size(int comm, int *size) { return MPI_Comm_size(comm_of(comm), size); }

int cmpi_comm_dup(int comm, int *newcomm) {
    MPI_Comm out;
    int rc = MPI_Comm_dup(comm_of(comm), &out);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
    *newcomm = (int)MPI_Comm_c2f(out);
    return MPI_SUCCESS;
}

int cmpi_comm_free(int comm) { MPI_Comm c = comm_of(comm); return MPI_Comm_free(&c); }

// MPI counts are int: larger buffers go in pieces of at most INT_MAX / 2 elements.
#define CMPI_PIECE ((int64_t)(INT_MAX / 2))

int cmpi_allreduce_inplace(int comm, void *buffer, int64_t count, cmpi_dtype type, cmpi_op op) {
    char *p = (char *)buffer;
    int es = element_size(type);
    MPI_Op mpi_op = op_of(op, type);
    if (mpi_op == MPI_OP_NULL) return MPI_ERR_OP;
    while (count > 0) {
        int n = (int)(count < CMPI_PIECE ? count : CMPI_PIECE);
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, n, type_of(type), mpi_op, comm_of(comm));
        if (rc != MPI_SUCCESS) return rc;
        p += (int64_t)n * es;
        count -= n;
    }
    return MPI_SUCCESS;
}

int cmpi_iallreduce_inplace(int comm, void *buffer, int64_t count, cmpi_dtype type, cmpi_op op, int *request) {
    if (count > CMPI_PIECE) return MPI_ERR_COUNT;
    MPI_Op mpi_op = op_of(op, type);
    if (mpi_op == MPI_OP_NULL) return MPI_ERR_OP;
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buffer, (int)count, type_of(type), mpi_op, comm_of(comm), &r);
    if (rc != MPI_SUCCESS) return rc;
    *request = (int)MPI_Request_c2f(r);
    return MPI_SUCCESS;
}

int cmpi_test(int request, int *done) {
    MPI_Request r = MPI_Request_f2c((MPI_Fint)request);
    return MPI_Test(&r, done, MPI_STATUS_IGNORE);
}

int cmpi_wait(int request) {
    MPI_Request r = MPI_Request_f2c((MPI_Fint)request);
    return MPI_Wait(&r, MPI_STATUS_IGNORE);
}

int cmpi_bcast(int comm, void *buffer, int64_t count, cmpi_dtype type, int root) {
    char *p = (char *)buffer;
    int es = element_size(type);
    while (count > 0) {
        int n = (int)(count < CMPI_PIECE ? count : CMPI_PIECE);
        int rc = MPI_Bcast(p, n, type_of(type), root, comm_of(comm));
        if (rc != MPI_SUCCESS) return rc;
        p += (int64_t)n * es;
        count -= n;
    }
    return MPI_SUCCESS;
}

int cmpi_allgather(int comm, const void *send, void *recv, int64_t count, cmpi_dtype type) {
    if (count > CMPI_PIECE) return MPI_ERR_COUNT;
    return MPI_Allgather(send, (int)count, type_of(type), recv, (int)count, type_of(type), comm_of(comm));
}

int cmpi_barrier(int comm) { return MPI_Barrier(comm_of(comm)); }
int cmpi_abort(int comm, int code) { return MPI_Abort(comm_of(comm), code); }

void cmpi_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (capacity <= 0) return;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) { strncpy(text, "unknown MPI error", sizeof text); len = (int)strlen(text); }
    if (len >= capacity) len = capacity - 1;
    memcpy(out, text, (size_t)len);
    out[len] = 0;
}
