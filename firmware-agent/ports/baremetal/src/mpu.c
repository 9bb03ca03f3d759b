/*
 * ARMv7-M MPU (PMSAv7, Cortex-M4 and Cortex-M7: 8 regions) for the bare-metal images. The policy is the one
 * the Zephyr port needs for AOT code (../zephyr/README.md "AOT code and the MPU"): SRAM is
 * execute-never as in Zephyr's fixed SRAM region, and the memory AOT code runs from, WAMR's pool,
 * is executable. Here the pool alone is executable (a second, higher-priority region; ARMv7-M
 * needs a power-of-two region aligned to its size, so the window is the pool rounded out to an
 * eighth of that region, see mpu_window), where the Zephyr port clears XN on all of SRAM; both
 * run the same AOT code from the pool. QEMU models this MPU on mps2-an386 and netduinoplus2.
 */
#include "mpu.h"

#include "board.h"

#define MPU_TYPE (*(volatile uint32_t *)0xE000ED90u)
#define MPU_CTRL (*(volatile uint32_t *)0xE000ED94u)
#define MPU_RNR (*(volatile uint32_t *)0xE000ED98u)
#define MPU_RBAR (*(volatile uint32_t *)0xE000ED9Cu)
#define MPU_RASR (*(volatile uint32_t *)0xE000EDA0u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)

#define CTRL_ENABLE (1u << 0)
#define CTRL_PRIVDEFENA (1u << 2)
#define SHCSR_MEMFAULTENA (1u << 16)
#define CFSR_IACCVIOL (1u << 0)
#define RASR_XN (1u << 28)
#define RASR_AP_RW (3u << 24)
/* Normal memory, write-back read/write-allocate, not shareable (Zephyr's RAM attributes). */
#define RASR_NORMAL_WB ((1u << 19) | (1u << 17) | (1u << 16))
#define RASR_SRD(mask) ((uint32_t)(mask) << 8)
#define RASR_SIZE(log2) (((uint32_t)(log2) - 1u) << 1)
#define RASR_ENABLE 1u

static volatile int probe_active;
static volatile int probe_faulted;

static unsigned
log2_ceil(uint32_t v)
{
	unsigned k = 5; /* 32 bytes: the smallest region */

	while (k < 32 && (1ull << k) < v)
		k++;
	return k;
}

static void
region(uint32_t n, uint32_t base, uint32_t rasr)
{
	MPU_RNR = n;
	MPU_RBAR = base;
	MPU_RASR = rasr;
}

int
mpu_protect_pool(const void *pool, size_t len, struct mpu_window *win)
{
	uintptr_t lo = (uintptr_t)pool, last = lo + len - 1, blk = 0;
	unsigned k, first, end, ram_k = log2_ceil(BOARD_RAM_LENGTH);
	uint32_t sub, srd = 0, n;

	if (((MPU_TYPE >> 8) & 0xFFu) < 2 || len == 0)
		return -1;
	/* The smallest aligned block (>= 256 bytes: 8 sub-regions) holding the whole pool. */
	for (k = 8; k < 32; k++) {
		blk = lo & ~(((uintptr_t)1 << k) - 1);
		if ((last & ~(((uintptr_t)1 << k) - 1)) == blk)
			break;
	}
	/* SRAM: a region must be aligned to its size, so where the SRAM is not (the F746's 256 KiB at
	   0x20010000) the region is the smallest aligned one that holds it (512 KiB at 0x20000000,
	   over the DTCM too: execute-never as well). */
	while (ram_k < 32 && ((uint32_t)BOARD_RAM_ORIGIN >> ram_k) !=
				     (((uint32_t)BOARD_RAM_ORIGIN + BOARD_RAM_LENGTH - 1u) >> ram_k))
		ram_k++;
	sub = (uint32_t)1 << (k - 3);
	first = (unsigned)((lo - blk) / sub);
	end = (unsigned)((last - blk) / sub) + 1;
	for (unsigned i = 0; i < 8; i++)
		if (i < first || i >= end)
			srd |= 1u << i;
	win->lo = blk + (uintptr_t)first * sub;
	win->hi = blk + (uintptr_t)end * sub;

	MPU_CTRL = 0;
	__asm volatile("dsb\n isb" ::: "memory");
	region(0, (uint32_t)BOARD_RAM_ORIGIN & ~(((uint32_t)1 << ram_k) - 1),
	       RASR_XN | RASR_AP_RW | RASR_NORMAL_WB | RASR_SIZE(ram_k) | RASR_ENABLE);
	region(1, (uint32_t)blk, RASR_AP_RW | RASR_NORMAL_WB | RASR_SRD(srd) | RASR_SIZE(k) | RASR_ENABLE);
	n = 2;
#ifdef BOARD_CCM_ORIGIN
	/* the CPU-only RAM (stacks, the RX ring): data only, execute-never as well */
	region(n++, BOARD_CCM_ORIGIN,
	       RASR_XN | RASR_AP_RW | RASR_NORMAL_WB | RASR_SIZE(log2_ceil(BOARD_CCM_LENGTH)) |
		       RASR_ENABLE);
#endif
	for (; n < ((MPU_TYPE >> 8) & 0xFFu); n++)
		region(n, 0, 0);
	SCB_SHCSR |= SHCSR_MEMFAULTENA;
	MPU_CTRL = CTRL_ENABLE | CTRL_PRIVDEFENA;
	__asm volatile("dsb\n isb" ::: "memory");
	return 0;
}

int
mpu_probe_exec(uint16_t *addr)
{
	void (*fn)(void) = (void (*)(void))((uintptr_t)addr | 1u);

	addr[0] = 0x4770; /* bx lr */
	probe_faulted = 0;
	probe_active = 1;
	__asm volatile("dsb\n isb" ::: "memory");
	fn();
	probe_active = 0;
	return probe_faulted;
}

/* Called with the stacked exception frame (r0-r3, r12, lr, pc, xpsr) and EXC_RETURN. */
__attribute__((used)) static void
mpu_memmanage(uint32_t *frame, uint32_t exc_return)
{
	if (probe_active && (SCB_CFSR & CFSR_IACCVIOL)) {
		SCB_CFSR = 0xFFu; /* clear MMFSR (write one to clear) */
		probe_faulted = 1;
		probe_active = 0;
		frame[6] = frame[5] & ~1u; /* resume at the probe's return address */
		return;
	}
	board_cpu_fault(frame, exc_return); /* any other: the image's fault policy */
}

__attribute__((naked)) void
mpu_memmanage_irq(void)
{
	__asm volatile("tst lr, #4\n"
		       "ite eq\n"
		       "mrseq r0, msp\n"
		       "mrsne r0, psp\n"
		       "mov r1, lr\n"
		       "b mpu_memmanage\n");
}
