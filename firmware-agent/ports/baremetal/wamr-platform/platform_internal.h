/*
 * WAMR platform definitions for a bare-metal MCU running the port's tiny
 * kernel (../src/kern.h). WAMR includes this through bh_platform.h.
 */
#ifndef WASMBED_BAREMETAL_PLATFORM_INTERNAL_H
#define WASMBED_BAREMETAL_PLATFORM_INTERNAL_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "kern.h"

#ifndef BH_PLATFORM_WASMBED_BAREMETAL
#define BH_PLATFORM_WASMBED_BAREMETAL
#endif

/* Stack kept free below WAMR's native stack limit check. */
#define BH_APPLET_PRESERVED_STACK_SIZE (2 * 1024)
#define BH_THREAD_DEFAULT_PRIORITY 0

/* Threads belong to the port (kern.h); WAMR only needs real mutexes, so
   that a forced stop never abandons a thread inside WAMR's allocator. */
typedef int korp_tid;
typedef struct kern_mutex korp_mutex;
typedef int korp_cond;
typedef int korp_thread;
typedef int korp_sem;
typedef struct {
    int dummy;
} korp_rwlock;

/* Types of platform_api_extension.h (file and socket APIs, unused). */
typedef int os_file_handle;
typedef void *os_dir_stream;
typedef int os_raw_file_handle;
typedef int os_poll_file_handle;
typedef unsigned int os_nfds_t;
typedef int os_timespec;

static inline os_file_handle
os_get_invalid_handle(void)
{
    return -1;
}

/*
 * The granule WAMR rounds AOT sections and linear memory to. There is no MMU
 * (os_mprotect does nothing), so a board short of RAM sets a small one in its
 * header (BOARD_MMAP_PAGE_BYTES): with 4 KiB, each AOT section costs up to
 * 4 KiB of pool for alignment alone.
 */
static inline int
os_getpagesize(void)
{
#ifdef BOARD_MMAP_PAGE_BYTES
    return BOARD_MMAP_PAGE_BYTES;
#else
    return 4096;
#endif
}

#endif /* WASMBED_BAREMETAL_PLATFORM_INTERNAL_H */
