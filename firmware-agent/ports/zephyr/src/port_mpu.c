/*
 * Zephyr's fixed MPU regions for this application (built when CONFIG_ARM_MPU; prj.conf sets
 * CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS so that Zephyr takes this table instead of its
 * arch/arm/core/mpu/arm_mpu_regions.c).
 *
 * AOT code runs from the WAMR pool, a static buffer in SRAM. Zephyr's SRAM region is
 * execute-never (XN) in XIP builds, so the first call into an AOT module would raise a MemManage
 * fault. WAMR 2.4.3's Zephyr layer tries to clear XN at wasm_runtime_full_init() with
 * `RASR |= ~XN`, which sets every other RASR bit instead (4 GiB size, all sub-regions disabled):
 * it turns the region off rather than clearing XN. Here the table is Zephyr's default (flash
 * read-only + executable, SRAM read-write) with XN clear on the SRAM region, programmed at boot
 * before any thread runs; WAMR's loop then finds no XN in the fixed regions and changes nothing.
 *
 * The cost: all of SRAM is executable for privileged code (no W^X on RAM), which is also what the
 * background map gives privileged code where no region matches. The threads of this application
 * are all privileged (no CONFIG_USERSPACE). Only the ARMv7-M MPU (Cortex-M4/M7) is handled.
 */
#include <zephyr/arch/arm/mpu/arm_mpu_mem_cfg.h>
#include <zephyr/sys/util.h>

#if !defined(CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS)
#error "prj.conf must set CONFIG_CPU_HAS_CUSTOM_FIXED_SOC_MPU_REGIONS=y: this file is the mpu_config"
#endif
#if !defined(CONFIG_CPU_CORTEX_M4) && !defined(CONFIG_CPU_CORTEX_M7)
#error "port_mpu.c knows the ARMv7-M MPU only (Cortex-M4/M7)"
#endif
#if !defined(CONFIG_XIP)
#error "port_mpu.c assumes an XIP image (code in flash, read-only executable region)"
#endif

/* Zephyr's REGION_RAM_ATTR without MPU_RASR_XN_Msk: privileged read-write-execute, cached. */
#define PORT_SRAM_EXEC_ATTR(size)                                                                  \
	{ (NORMAL_OUTER_INNER_WRITE_BACK_WRITE_READ_ALLOCATE_NON_SHAREABLE | (size) | P_RW_U_NA_Msk) }

static const struct arm_mpu_region port_mpu_regions[] = {
	MPU_REGION_ENTRY("FLASH_0", CONFIG_FLASH_BASE_ADDRESS, REGION_FLASH_ATTR(REGION_FLASH_SIZE)),
	MPU_REGION_ENTRY("SRAM_0", CONFIG_SRAM_BASE_ADDRESS, PORT_SRAM_EXEC_ATTR(REGION_SRAM_SIZE)),
};

const struct arm_mpu_config mpu_config = {
	.num_regions = ARRAY_SIZE(port_mpu_regions),
	.mpu_regions = port_mpu_regions,
};
