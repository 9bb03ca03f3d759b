/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. */
#ifndef SHIM_ZEPHYR_TOOLCHAIN_H
#define SHIM_ZEPHYR_TOOLCHAIN_H

#define __aligned(x) __attribute__((__aligned__(x)))
#define ARG_UNUSED(x) (void)(x)
#define BUILD_ASSERT(expr, msg) _Static_assert(expr, msg)

#endif
