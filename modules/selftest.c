/* Module tests for `wasmbed-host test` (the CI workflow runs them on the emulated board): each
 * exported test_* function runs in a fresh instance and passes by returning 0; a failing check
 * logs what it saw and returns the line number. */
#include "wasmbed.h"

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			static const char what[] = "check failed: " #cond;                 \
			wb_log(what, (int)sizeof(what) - 1);                               \
			return __LINE__;                                                   \
		}                                                                          \
	} while (0)

static int calls;

static int add(int a, int b) { return a + b; }

WB_EXPORT("test_add_wraps_like_i32") int test_add_wraps_like_i32(void)
{
	CHECK(add(200, 26) == 226);
	CHECK(add(-300, 26) == -274);
	CHECK((unsigned)add(0x7fffffff, 1) == 0x80000000u);
	return 0;
}

WB_EXPORT("test_fresh_instance") int test_fresh_instance(void)
{
	/* Static data starts over in every test: a second run would see calls == 1. */
	CHECK(calls++ == 0);
	return 0;
}

WB_EXPORT("test_natives") int test_natives(void)
{
	static const char hello[] = "selftest: natives callable";
	wb_log(hello, (int)sizeof(hello) - 1);
	delay_ms(1);
	CHECK(should_stop() == 0);
	return 0;
}
