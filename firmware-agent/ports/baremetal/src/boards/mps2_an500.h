/*
 * QEMU mps2-an500 (ARM MPS2 FPGA image AN500, Cortex-M7): the Cortex-M7 test machine of the port.
 * QEMU emulates no STM32F7, so the NUCLEO-F746ZG image itself is only built; this variant runs
 * the same agent tests as mps2-an386 with what is Cortex-M7 about the F746 image: the code built
 * for the F746's CPU and FPU (cortex-m7, fpv5-sp-d16), AOT code for its target (cortex-m7,
 * -fp64), the I/D-cache enable and the cache maintenance after each AOT load (cache.c; QEMU
 * models no cache, so this runs the maintenance code and shows it does no harm, it cannot show
 * that it is needed). The machine's memory map, UART and LED are mps2-an386's (QEMU hw/arm/mps2.c:
 * ZBT SSRAM1 at 0x0, SSRAM2/3 at 0x20000000, CMSDK UART0 at 0x40004000, FPGA IO at 0x40028000).
 * Only #defines: this header is also read by scripts.
 */
#ifndef BAREMETAL_BOARD_MPS2_AN500_H
#define BAREMETAL_BOARD_MPS2_AN500_H

#define BOARD_NAME "mps2-an500"
#define BOARD_QEMU_MACHINE "mps2-an500"
#define BOARD_QEMU_SERIAL 0 /* CMSDK UART0 is QEMU's first -serial */

/* The NUCLEO-F746ZG's CPU and AOT target (src/boards/nucleo_f746zg.h): the real AN500 and QEMU's
 * cortex-m7 have a double-precision FPU, the F746's is single precision; built for the F746. */
#define BOARD_AOT_ARCH "thumbv7em"
#define BOARD_AOT_CPU "cortex-m7"
#define BOARD_AOT_FEATURES "-fp64"
#define BOARD_AOT_ABI "eabihf"
#define BOARD_GCC_CPU_FLAGS "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16"
#define BOARD_HAS_CACHES 1

/* Fixed 25 MHz core clock of the FPGA image (SysTick runs from it). */
#define BOARD_CPU_HZ 25000000u

/* Console: CMSDK APB UART0. */
#define BOARD_UART_CMSDK 1
#define BOARD_UART_BASE 0x40004000u
#define BOARD_UART_IRQN 0

/* User LED: FPGA IO LED register, bit 0 = LED0. */
#define BOARD_LED_FPGAIO 0x40028000u

/* Memory (mps2_an386.ld, the same map): 4 MiB code at 0x0, 4 MiB data at 0x20000000. */
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x400000
#define AGENT_POOL_BYTES (1024u * 1024u)
#define AGENT_CMD_STACK_BYTES (16u * 1024u)
#define AGENT_WORKER_STACK_BYTES (24u * 1024u)
#define AGENT_WASM_STACK_BYTES 0 /* the core's default (16 KiB) */
#define SMOKE_POOL_BYTES (512u * 1024u)

#endif
