# WAMR platform layer for Wasmbed's bare-metal ports (no RTOS, one thread).
# Passed to WAMR's runtime_lib.cmake as SHARED_PLATFORM_CONFIG.
set(PLATFORM_SHARED_DIR ${CMAKE_CURRENT_LIST_DIR})

add_definitions(-DBH_PLATFORM_WASMBED_BAREMETAL)

include_directories(${PLATFORM_SHARED_DIR})
include_directories(${WAMR_ROOT_DIR}/core/shared/platform/include)

set(PLATFORM_SHARED_SOURCE ${PLATFORM_SHARED_DIR}/baremetal_platform.c)
