/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. */
#ifndef SHIM_ZEPHYR_SYS_UTIL_H
#define SHIM_ZEPHYR_SYS_UTIL_H

#include <zephyr/toolchain.h>

#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))
#define BIT(n) (1UL << (n))

/* Zephyr's IS_ENABLED(): 1 if the macro is defined to 1, 0 if it is undefined (no #if needed) */
#define SHIM_ENABLED_PROBE_1 SHIM_ENABLED_PROBE_,
#define SHIM_IS_ENABLED3(ignore, val, ...) val
#define SHIM_IS_ENABLED2(one_or_two_args) SHIM_IS_ENABLED3(one_or_two_args 1, 0, 0)
#define SHIM_IS_ENABLED1(x) SHIM_IS_ENABLED2(SHIM_ENABLED_PROBE_##x)
#define IS_ENABLED(config_macro) SHIM_IS_ENABLED1(config_macro)

#define SHIM_CAT_(a, b) a##b
#define SHIM_CAT(a, b) SHIM_CAT_(a, b)

#endif
