/* Integer helpers: add(a, b), sum_to_n(n) and app_main(n) (the sum, for the default entrypoint). */
#include "wasmbed.h"

WB_EXPORT("add") int add(int a, int b) { return a + b; }

static int sum(int n)
{
	int total = 0;
	/* volatile-free loop; clang may fold it into a closed form, which is fine */
	for (int i = 1; i <= n; i++)
		total += i;
	return total;
}

WB_EXPORT("sum_to_n") int sum_to_n(int n) { return n <= 0 ? 0 : sum(n); }

WB_EXPORT("app_main") int app_main(int n) { return sum_to_n(n); }
