/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. */
#ifndef SHIM_ZEPHYR_TOOLCHAIN_H
#define SHIM_ZEPHYR_TOOLCHAIN_H

#define __aligned(x) __attribute__((__aligned__(x)))
#define ARG_UNUSED(x) (void)(x)
/* Zephyr's BUILD_ASSERT is _Static_assert with an optional message */
#define BUILD_ASSERT(expr, ...) _Static_assert(expr, "" __VA_ARGS__)

#endif
