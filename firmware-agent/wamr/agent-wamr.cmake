# The WAMR 2.4.3 feature set every Wasmbed agent build shares (POSIX sim, bare metal, Zephyr):
# the classic interpreter and the AOT loader, libc-builtin natives, no JIT, no WASI, and no
# reliance on an MMU for bounds checks (MCUs have none; the sim matches them, so AOT files are
# built with wamrc --bounds-checks=1 for every target). A port sets WAMR_BUILD_PLATFORM,
# WAMR_BUILD_TARGET, WAMR_BUILD_THREAD_MGR and anything of its own, then includes this file,
# then `${WAMR_ROOT_DIR}/build-scripts/runtime_lib.cmake`.
set(WAMR_BUILD_INTERP 1)
set(WAMR_BUILD_FAST_INTERP 0)   # the classic interpreter, as the legacy firmware on Cortex-M
set(WAMR_BUILD_AOT 1)
set(WAMR_BUILD_JIT 0)
set(WAMR_BUILD_FAST_JIT 0)
set(WAMR_BUILD_LIBC_BUILTIN 1)
set(WAMR_BUILD_LIBC_WASI 0)
set(WAMR_BUILD_LIB_PTHREAD 0)
set(WAMR_BUILD_SHARED_MEMORY 0)
set(WAMR_BUILD_MULTI_MODULE 0)
set(WAMR_BUILD_MINI_LOADER 0)
set(WAMR_DISABLE_HW_BOUND_CHECK 1)
set(WAMR_DISABLE_STACK_HW_BOUND_CHECK 1)
