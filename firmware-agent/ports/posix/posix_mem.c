/*
 * Module linear memory of the simulated board comes from the WAMR pool, as on a real board.
 *
 * Without hardware bounds checks WAMR asks the platform for linear memory with os_mmap(...,
 * MMAP_PROT_NONE, ...) and grows it with os_mremap; on Linux that is the host's memory, so a
 * module could grow the sim to gigabytes while STATUS reported kilobytes of pool. The sim links
 * with `-Wl,--wrap=` for these four functions (sim/build.rs) and serves exactly those requests
 * from the pool, like the bare-metal port's os_mmap (BH_MALLOC): a memory.grow the pool cannot
 * hold returns -1 and an instance that does not fit fails at LOAD. AOT code and data (mapped
 * readable, for x86_64 relocations in the low 2 GiB) still come from the host.
 */
#include <stdint.h>
#include <string.h>

#include "wasm_export.h"

#include "posix_port.h"

#define WAMR_PROT_NONE 0 /* MMAP_PROT_NONE of WAMR's platform API */

void *__real_os_mmap(void *hint, size_t size, int prot, int flags, int file);
void __real_os_munmap(void *addr, size_t size);
void *__real_os_mremap(void *old_addr, size_t old_size, size_t new_size);
int __real_os_mprotect(void *addr, size_t size, int prot);
void *__wrap_os_mmap(void *hint, size_t size, int prot, int flags, int file);
void __wrap_os_munmap(void *addr, size_t size);
void *__wrap_os_mremap(void *old_addr, size_t old_size, size_t new_size);
int __wrap_os_mprotect(void *addr, size_t size, int prot);

/* the process's one WAMR pool (set before WAMR starts, read-only afterwards) */
static uintptr_t pool_lo, pool_hi;

void posix_mem_use_pool(void *pool, uint32_t size)
{
	pool_lo = (uintptr_t)pool;
	pool_hi = pool_lo + size;
}

static bool in_pool(const void *p)
{
	return (uintptr_t)p >= pool_lo && (uintptr_t)p < pool_hi;
}

void *__wrap_os_mmap(void *hint, size_t size, int prot, int flags, int file)
{
	void *p;

	if (!pool_hi || prot != WAMR_PROT_NONE)
		return __real_os_mmap(hint, size, prot, flags, file);
	if (size == 0 || size > UINT32_MAX)
		return NULL;
	p = wasm_runtime_malloc((uint32_t)size);
	if (p)
		memset(p, 0, size); /* mmap gives zeroed pages; linear memory relies on it */
	return p;
}

void __wrap_os_munmap(void *addr, size_t size)
{
	if (in_pool(addr))
		wasm_runtime_free(addr);
	else
		__real_os_munmap(addr, size);
}

void *__wrap_os_mremap(void *old_addr, size_t old_size, size_t new_size)
{
	char *p;

	if (!in_pool(old_addr))
		return __real_os_mremap(old_addr, old_size, new_size);
	if (new_size > UINT32_MAX)
		return NULL;
	p = wasm_runtime_realloc(old_addr, (uint32_t)new_size); /* NULL: the old block stays */
	if (p && new_size > old_size)
		memset(p + old_size, 0, new_size - old_size);
	return p;
}

int __wrap_os_mprotect(void *addr, size_t size, int prot)
{
	if (in_pool(addr))
		return 0; /* no MMU on a board either */
	return __real_os_mprotect(addr, size, prot);
}
