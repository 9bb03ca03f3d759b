/*
 * miniz's inflater (third_party/miniz/README.md), compiled verbatim as part of the core with the
 * agent's settings: no malloc (agent_inflate.c allocates its state), no stdio, no time, no asserts.
 */
#define MINIZ_NO_MALLOC
#define MINIZ_NO_STDIO
#define MINIZ_NO_TIME
#ifndef NDEBUG
#define NDEBUG
#endif
#include "../third_party/miniz/tinfl.h"

/*
 * On x86 (the simulated board, the unit tests) miniz reads and copies with unaligned 32-bit
 * accesses, which C leaves undefined (UBSan stops the sanitizer build there): byte accesses
 * everywhere, as on the Cortex-M boards, where miniz already chooses them. tinfl.c includes
 * tinfl.h again, which its include guard makes a no-op, so these definitions stand.
 */
#undef MINIZ_USE_UNALIGNED_LOADS_AND_STORES
#define MINIZ_USE_UNALIGNED_LOADS_AND_STORES 0
#undef MZ_READ_LE16
#undef MZ_READ_LE32
#define MZ_READ_LE16(p) ((mz_uint32)(((const mz_uint8 *)(p))[0]) | ((mz_uint32)(((const mz_uint8 *)(p))[1]) << 8U))
#define MZ_READ_LE32(p)                                                                          \
	((mz_uint32)(((const mz_uint8 *)(p))[0]) | ((mz_uint32)(((const mz_uint8 *)(p))[1]) << 8U) | \
	 ((mz_uint32)(((const mz_uint8 *)(p))[2]) << 16U) |                                       \
	 ((mz_uint32)(((const mz_uint8 *)(p))[3]) << 24U))

#include "../third_party/miniz/tinfl.c"
