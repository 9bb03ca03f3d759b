/*
 * SYNTAX-CHECK SHIM, not Zephyr: see ../../../../README.md. The ARMv7-M (Cortex-M4/M7) parts of
 * zephyr/arch/arm/mpu/{arm_mpu_mem_cfg.h,arm_mpu.h,arm_mpu_v7m.h} and the CMSIS RASR fields
 * that src/port_mpu.c uses.
 */
#ifndef SHIM_ZEPHYR_ARCH_ARM_MPU_ARM_MPU_MEM_CFG_H
#define SHIM_ZEPHYR_ARCH_ARM_MPU_ARM_MPU_MEM_CFG_H

#include <stdint.h>

#if !defined(CONFIG_CPU_CORTEX_M4) && !defined(CONFIG_CPU_CORTEX_M7)
#error "Unsupported ARM CPU"
#endif

/* CMSIS core_cm4.h / core_cm7.h: MPU RASR */
#define MPU_RASR_XN_Pos 28U
#define MPU_RASR_XN_Msk (1UL << MPU_RASR_XN_Pos)
#define MPU_RASR_AP_Pos 24U
#define MPU_RASR_AP_Msk (0x7UL << MPU_RASR_AP_Pos)
#define MPU_RASR_TEX_Pos 19U
#define MPU_RASR_S_Msk (1UL << 18U)
#define MPU_RASR_C_Msk (1UL << 17U)
#define MPU_RASR_B_Msk (1UL << 16U)
#define MPU_RASR_SIZE_Pos 1U
#define MPU_RASR_SIZE_Msk (0x1FUL << MPU_RASR_SIZE_Pos)

/* arm_mpu_v7m.h */
#define P_RW_U_NA_Msk ((0x1UL << MPU_RASR_AP_Pos) & MPU_RASR_AP_Msk)
#define RO_Msk ((0x7UL << MPU_RASR_AP_Pos) & MPU_RASR_AP_Msk)
#define NORMAL_OUTER_INNER_WRITE_THROUGH_NON_SHAREABLE MPU_RASR_C_Msk
#define NORMAL_OUTER_INNER_WRITE_BACK_WRITE_READ_ALLOCATE_NON_SHAREABLE                            \
	((1UL << MPU_RASR_TEX_Pos) | MPU_RASR_C_Msk | MPU_RASR_B_Msk)
#define SHIM_REGION_SIZE(log2) ((((log2) - 1UL) << MPU_RASR_SIZE_Pos) & MPU_RASR_SIZE_Msk)
#define REGION_FLASH_ATTR(size) { (NORMAL_OUTER_INNER_WRITE_THROUGH_NON_SHAREABLE | (size) | RO_Msk) }
#define REGION_RAM_ATTR(size)                                                                      \
	{ (NORMAL_OUTER_INNER_WRITE_BACK_WRITE_READ_ALLOCATE_NON_SHAREABLE | MPU_RASR_XN_Msk |     \
	   (size) | P_RW_U_NA_Msk) }

typedef struct arm_mpu_region_attr {
	uint32_t rasr;
} arm_mpu_region_attr_t;

/* arm_mpu.h */
struct arm_mpu_region {
	uint32_t base;
	const char *name;
	arm_mpu_region_attr_t attr;
};
struct arm_mpu_config {
	uint32_t num_regions;
	const struct arm_mpu_region *mpu_regions;
};
#define MPU_REGION_ENTRY(_name, _base, _attr) { .name = _name, .base = _base, .attr = _attr }
extern const struct arm_mpu_config mpu_config;

/* arm_mpu_mem_cfg.h: the smallest power-of-two region covering the flash and SRAM sizes (KiB) */
#if CONFIG_FLASH_SIZE <= 512
#define REGION_FLASH_SIZE SHIM_REGION_SIZE(19UL)
#elif CONFIG_FLASH_SIZE <= 1024
#define REGION_FLASH_SIZE SHIM_REGION_SIZE(20UL)
#else
#define REGION_FLASH_SIZE SHIM_REGION_SIZE(21UL)
#endif
#if CONFIG_SRAM_SIZE <= 128
#define REGION_SRAM_SIZE SHIM_REGION_SIZE(17UL)
#elif CONFIG_SRAM_SIZE <= 256
#define REGION_SRAM_SIZE SHIM_REGION_SIZE(18UL)
#else
#define REGION_SRAM_SIZE SHIM_REGION_SIZE(19UL)
#endif

#endif
