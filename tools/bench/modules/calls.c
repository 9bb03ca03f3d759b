/*
 * A call-heavy loop for the execution benchmark: calls(n) makes n calls of a small function
 * that cannot be inlined, and returns a checksum (calls_expected() on the host computes it).
 */
#include "wasmbed.h"

__attribute__((noinline)) static int step(int x, int i) { return x * 31 + (i ^ (x >> 3)); }

WB_EXPORT("calls") int calls(int n)
{
	int x = 1;
	for (int i = 0; i < n; i++)
		x = step(x, i);
	return x;
}
