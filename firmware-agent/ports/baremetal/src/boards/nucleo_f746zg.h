/*
 * NUCLEO-F746ZG (STM32F746ZG, Cortex-M7 with single-precision FPv5; UM1974 / RM0385 / PM0253).
 * Only #defines: also preprocessed into the linker script and read by scripts. Built in CI, not
 * run: QEMU emulates no STM32F7 (README.md "NUCLEO-F746ZG").
 */
#ifndef BAREMETAL_BOARD_NUCLEO_F746ZG_H
#define BAREMETAL_BOARD_NUCLEO_F746ZG_H

/* The board's hardware (part, memory, DTCM, caches, USART3 on PD8/PD9, LD1 on PB0, clock tree,
 * flash sectors): one header shared with the Zephyr port. */
#include "../../../../boards/nucleo_f746zg.h"

#define BOARD_NAME "nucleo-f746zg"
/* The F4 images' RCC enable registers, GPIO blocks and LED code apply unchanged (RM0385: same
 * addresses and layout); the clock tree (over-drive, flash ACR) and the USART are the F7's own:
 * src/stm32f7_clock.c, src/uart_stm32f7.c. */
#define BOARD_STM32F4 1
#define BOARD_STM32F7 1
/* Voltage scale 1: PWR_CR1 VOS[15:14] = 11 (the reset value; needed above 180 MHz with the
 * over-drive mode). */
#define BOARD_PWR_CR_VOS (3u << 14)

/*
 * Clock source: the 16 MHz HSI, as the F4 images (no dependence on the ST-LINK's MCO, which the
 * board's solder bridges can disconnect: UM1974), divided by M = 8 to a 2 MHz PLL input
 * (RM0385: 1-2 MHz, 2 MHz limits the jitter), then the board's N = 192, P = 2, Q = 8: the same
 * 384 MHz VCO and 192 MHz SYSCLK as Zephyr's HSE / 4 (../../../../boards/nucleo_f746zg.h).
 */
#define BOARD_HSI_HZ 16000000u
#define BOARD_PLL_M 8u

/* AOT target (INFO aot_*; wamrc --target/--cpu/--cpu-features/--target-abi): LLVM's cortex-m7
 * assumes a double-precision FPv5; the F746's is single precision (fpv5-sp-d16), so AOT code is
 * built without fp64 (doubles become calls into the image's runtime helpers, as on the M4). */
#define BOARD_AOT_ARCH "thumbv7em"
#define BOARD_AOT_CPU "cortex-m7"
#define BOARD_AOT_FEATURES "-fp64"
#define BOARD_AOT_ABI "eabihf"
/* The image itself (cmake/arm-none-eabi.cmake reads this line). */
#define BOARD_GCC_CPU_FLAGS "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16"

/* Memory: SRAM1 + SRAM2 (256 KiB) hold data, bss and WAMR's pool, where AOT code runs; the DTCM
 * (64 KiB, data only) is the CPU-only region: thread stacks, the RX ring, the main stack. */
#define BOARD_CCM_ORIGIN BOARD_DTCM_ORIGIN
#define BOARD_CCM_LENGTH BOARD_DTCM_LENGTH
#define BOARD_MAIN_STACK_BYTES 0x2000
#define BOARD_HEAP_BYTES 0x400

/* Budget: two slots; the DTCM holds 2 x 16 KiB worker stacks, 12 KiB command stack, 8 KiB main
 * stack, 8 KiB ring (60 of 64 KiB); the pool takes what SRAM leaves (the link fails if not). */
#ifndef AGENT_POOL_BYTES /* tests/f746zg-image.sh links a bigger one: it must not fit */
#define AGENT_POOL_BYTES (240u * 1024u)
#endif
#define AGENT_CMD_STACK_BYTES 12288u
#define AGENT_WORKER_STACK_BYTES 16384u
#define AGENT_WASM_STACK_BYTES 8192u
#define SMOKE_POOL_BYTES (240u * 1024u)
/* WAMR's AOT section / linear memory granule (no MMU): 64 B, not 4 KiB. */
#define BOARD_MMAP_PAGE_BYTES 64

/* No QEMU machine emulates an STM32F7: this image is built, not run (tests skip it). */
#define BOARD_QEMU_MACHINE "none"
#define BOARD_QEMU_SERIAL 0

#endif
