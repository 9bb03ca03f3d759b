/*
 * WAMR's OS layer on bare metal: memory from WAMR's own pool, time from the
 * board clock, mutexes and thread identity from the port's kernel (kern.h),
 * diagnostics through the board's debug console.
 */
#include "platform_api_vmcore.h"
#include "platform_api_extension.h"

#include "board.h"

/* Every os_mmap block is this aligned (AOT text and linear memory). */
#define MMAP_ALIGN 16u

extern char __stack_limit;

int
bh_platform_init(void)
{
    return 0;
}

void
bh_platform_destroy(void)
{
}

void *
os_malloc(unsigned size)
{
    return malloc(size);
}

void *
os_realloc(void *ptr, unsigned size)
{
    return realloc(ptr, size);
}

void
os_free(void *ptr)
{
    free(ptr);
}

int
os_vprintf(const char *format, va_list ap)
{
    char buf[160];
    int n = vsnprintf(buf, sizeof(buf), format, ap);

    board_debug_puts(buf);
    return n;
}

int
os_printf(const char *format, ...)
{
    va_list ap;
    int n;

    va_start(ap, format);
    n = os_vprintf(format, ap);
    va_end(ap);
    return n;
}

int
os_dumps_proc_mem_info(char *out, unsigned int size)
{
    (void)out;
    (void)size;
    return -1;
}

uint64
os_time_get_boot_us(void)
{
    return board_now_us();
}

uint64
os_time_thread_cputime_us(void)
{
    return board_now_us();
}

korp_tid
os_self_thread(void)
{
    return kern_thread_id();
}

uint8 *
os_thread_get_stack_boundary(void)
{
    /* The calling thread's stack, or the main stack before the kernel runs. */
    void *limit = kern_stack_limit();

    return limit ? (uint8 *)limit : (uint8 *)&__stack_limit;
}

void
os_thread_jit_write_protect_np(bool enabled)
{
    (void)enabled;
}

int
os_mutex_init(korp_mutex *mutex)
{
    kern_mutex_init(mutex);
    return BHT_OK;
}

int
os_mutex_destroy(korp_mutex *mutex)
{
    (void)mutex;
    return BHT_OK;
}

int
os_mutex_lock(korp_mutex *mutex)
{
    kern_mutex_lock(mutex);
    return BHT_OK;
}

int
os_mutex_unlock(korp_mutex *mutex)
{
    kern_mutex_unlock(mutex);
    return BHT_OK;
}

/*
 * Memory "maps" are zeroed, MMAP_ALIGN-aligned blocks from WAMR's pool
 * (BH_MALLOC), whatever the protection: there is no MMU. The original
 * pointer is kept just below the aligned block.
 */
void *
os_mmap(void *hint, size_t size, int prot, int flags, os_file_handle file)
{
    uintptr_t raw, aligned;
    uint64 total = (uint64)size + MMAP_ALIGN + sizeof(void *);

    (void)hint;
    (void)prot;
    (void)flags;
    (void)file;
    if (size == 0 || total > UINT32_MAX)
        return NULL;
    raw = (uintptr_t)BH_MALLOC((uint32)total);
    if (!raw)
        return NULL;
    aligned = (raw + sizeof(void *) + MMAP_ALIGN - 1) & ~(uintptr_t)(MMAP_ALIGN - 1);
    ((void **)aligned)[-1] = (void *)raw;
    memset((void *)aligned, 0, size);
    return (void *)aligned;
}

void
os_munmap(void *addr, size_t size)
{
    (void)size;
    if (addr)
        BH_FREE(((void **)addr)[-1]);
}

int
os_mprotect(void *addr, size_t size, int prot)
{
    (void)addr;
    (void)size;
    (void)prot;
    return 0;
}

void *
os_mremap(void *old_addr, size_t old_size, size_t new_size)
{
    return os_mremap_slow(old_addr, old_size, new_size);
}

void
os_dcache_flush(void)
{
    /* Cortex-M4 has no data cache; make the relocated code visible. */
    __asm volatile("dsb" ::: "memory");
}

void
os_icache_flush(void *start, size_t len)
{
    (void)start;
    (void)len;
    __asm volatile("dsb\n isb" ::: "memory");
}
