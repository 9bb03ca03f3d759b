/* Traps: trap() executes `unreachable`; deep(n) recurses n levels to exhaust the stack. */
#include "wasmbed.h"

WB_EXPORT("trap") int trap(void) { __builtin_trap(); }

static volatile int sink;

/* Not tail-recursive: the addition after the call keeps every frame alive. */
__attribute__((noinline)) static int recurse(int depth)
{
	volatile int local[4] = { depth, depth, depth, depth };
	sink = local[depth & 3];
	if (depth <= 0)
		return 0;
	return recurse(depth - 1) + local[(depth + 1) & 3];
}

/* Recurses `depth` levels; a large depth (e.g. 10000000) overflows any stack and must trap. */
WB_EXPORT("deep") int deep(int depth) { return recurse(depth); }

WB_EXPORT("app_main") int app_main(void) { return trap(); }
