/*
 * Cortex-M7 L1 caches (ARMv7-M ARM B2.2.7 "cache maintenance operations", PM0253 4.8): a board
 * header with BOARD_HAS_CACHES (the NUCLEO-F746ZG) gets them switched on at reset and maintained
 * where the CPU's view and memory's view must agree; elsewhere these are empty.
 */
#ifndef BAREMETAL_CACHE_H
#define BAREMETAL_CACHE_H

/** Reset handler: invalidate and enable the I-cache and the D-cache. */
void cache_enable(void);

/**
 * After code was written to RAM through the D-cache (an AOT load), before it runs: clean the
 * D-cache to RAM and invalidate the I-cache, which may hold an earlier module's code at the same
 * addresses.
 */
void cache_sync_code(void);

/** 1 if the I-cache and the D-cache are both on (CCR IC and DC), else 0. */
int cache_on(void);

/** Before a system reset: write dirty D-cache lines to RAM (the reset discards them). */
void cache_clean_data(void);

#endif
