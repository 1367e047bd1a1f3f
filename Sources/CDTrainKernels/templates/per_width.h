// Includes PER_WIDTH_FILE (a header of per-block functions) once per vector width of the kernel
// set: with VT vec, VLANES LANES, VLOAD/VSTORE load/store and BLOCK(name) name_wide, and in the
// sixteen-lane sets again with vec8, 8, load8/store8 and name_eight (a last block of eight
// channels). Undefines PER_WIDTH_FILE after.

#define VT vec
#define VLANES LANES
#define VLOAD load
#define VSTORE store
#define BLOCK(name) DTRAIN_CONCAT(name, wide)
#include PER_WIDTH_FILE
#undef VT
#undef VLANES
#undef VLOAD
#undef VSTORE
#undef BLOCK

#if LANES > 8
#define VT vec8
#define VLANES 8
#define VLOAD load8
#define VSTORE store8
#define BLOCK(name) DTRAIN_CONCAT(name, eight)
#include PER_WIDTH_FILE
#undef VT
#undef VLANES
#undef VLOAD
#undef VSTORE
#undef BLOCK
#endif

#undef PER_WIDTH_FILE
