/*
 * ARMv7-M MPU set-up shared by the agent and the smoke firmware (src/mpu.c): the board's SRAM
 * execute-never, WAMR's pool executable (AOT code runs from it). README.md "MPU".
 */
#ifndef BAREMETAL_MPU_H
#define BAREMETAL_MPU_H

#include <stddef.h>
#include <stdint.h>

/** The executable window programmed for the pool: [lo, hi), the pool rounded out to the
    region's sub-region granule. */
struct mpu_window {
	uintptr_t lo, hi;
};

/**
 * Program and enable the MPU: region 0 = the board's SRAM (BOARD_RAM_ORIGIN/LENGTH), read-write,
 * execute-never; region 1 = the smallest aligned power-of-two region holding the pool, its
 * sub-regions outside the pool disabled, read-write and executable; everything else the
 * privileged background map (flash executable, peripherals execute-never). Enables the
 * MemManage exception. Returns 0, or -1 (MPU left off) if the part has no MPU.
 */
int mpu_protect_pool(const void *pool, size_t len, struct mpu_window *win);

/**
 * Call a `bx lr` stub at `addr` (2 bytes, written by this function): returns 1 if the
 * instruction fetch raised a MemManage fault (the address is execute-never), 0 if the stub ran.
 */
int mpu_probe_exec(uint16_t *addr);

/** MemManage vector (startup.c): a probe's expected fault returns; any other goes to
    board_cpu_fault (board.h). */
void mpu_memmanage_irq(void);

#endif
