/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. Declared whatever the config, as in Zephyr
 * (where they return -ENOTSUP without CONFIG_CACHE_MANAGEMENT and the cache). */
#ifndef SHIM_ZEPHYR_CACHE_H
#define SHIM_ZEPHYR_CACHE_H

#include <stddef.h>

int sys_cache_data_flush_all(void);
int sys_cache_data_flush_range(void *addr, size_t size);
int sys_cache_instr_invd_all(void);
int sys_cache_instr_invd_range(void *addr, size_t size);

#endif
