/*
 * Cortex-M7 L1 cache maintenance by set/way over the whole cache, from the cache's own geometry
 * (CCSIDR): the F746's caches are 4 KiB each (PM0253 4.8), a walk of 128 lines, cheaper than a
 * by-address walk over code whose range WAMR does not export. The same operations as CMSIS's
 * SCB_EnableICache/SCB_EnableDCache/SCB_CleanDCache and Zephyr's sys_cache_*_all, which the
 * Zephyr port calls for the same reason (../zephyr/src/port.c port_code_sync).
 */
#include <stdint.h>

#include "board.h"
#include "cache.h"

#ifdef BOARD_HAS_CACHES

#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_CCSIDR (*(volatile uint32_t *)0xE000ED80u)
#define SCB_CSSELR (*(volatile uint32_t *)0xE000ED84u)
#define SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)
#define SCB_DCISW (*(volatile uint32_t *)0xE000EF60u)
#define SCB_DCCSW (*(volatile uint32_t *)0xE000EF6Cu)

#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)

static inline void
barrier(void)
{
	__asm volatile("dsb\n isb" ::: "memory");
}

/* Every set and way of the data cache, written to a set/way operation register (DCISW, DCCSW):
   set in bits [13:5] (32-byte lines), way in bits [31:30] (4 ways). */
static void
dcache_each_line(volatile uint32_t *op)
{
	uint32_t ccsidr, sets, ways, w;

	SCB_CSSELR = 0; /* level 1, data cache */
	barrier();
	ccsidr = SCB_CCSIDR;
	sets = (ccsidr >> 13) & 0x7FFFu; /* NumSets - 1 */
	do {
		ways = (ccsidr >> 3) & 0x3FFu; /* Associativity - 1 */
		w = ways;
		do {
			*op = ((sets & 0x1FFu) << 5) | ((w & 3u) << 30);
		} while (w-- != 0);
	} while (sets-- != 0);
	barrier();
}

void
cache_enable(void)
{
	barrier();
	SCB_ICIALLU = 0;
	barrier();
	SCB_CCR |= CCR_IC;
	barrier();
	dcache_each_line(&SCB_DCISW); /* its content after reset is undefined */
	SCB_CCR |= CCR_DC;
	barrier();
}

void
cache_sync_code(void)
{
	dcache_each_line(&SCB_DCCSW);
	SCB_ICIALLU = 0;
	barrier();
}

void
cache_clean_data(void)
{
	if (SCB_CCR & CCR_DC)
		dcache_each_line(&SCB_DCCSW);
}

int
cache_on(void)
{
	return (SCB_CCR & (CCR_IC | CCR_DC)) == (CCR_IC | CCR_DC);
}

#else /* no caches (Cortex-M4): RAM writes are what every fetch and the next boot see */

void
cache_enable(void)
{
}

void
cache_sync_code(void)
{
}

void
cache_clean_data(void)
{
}

int
cache_on(void)
{
	return 0;
}

#endif
