// Open MPI's C API. Only the CMPI shim includes it: its handles are macros Swift cannot import.
#include <mpi.h>
