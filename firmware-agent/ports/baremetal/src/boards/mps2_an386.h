/*
 * QEMU mps2-an386 (ARM MPS2 FPGA image AN386, Cortex-M4F): the port's
 * reference machine. Only #defines: this header is also run through the C
 * preprocessor by scripts (qemu-run.sh reads BOARD_QEMU_*).
 */
#ifndef BAREMETAL_BOARD_MPS2_AN386_H
#define BAREMETAL_BOARD_MPS2_AN386_H

#define BOARD_NAME "mps2-an386"
#define BOARD_QEMU_MACHINE "mps2-an386"
#define BOARD_QEMU_SERIAL 0 /* CMSDK UART0 is QEMU's first -serial */

/* AOT target of the core (INFO aot_*; wamrc --target/--cpu/--target-abi). */
#define BOARD_AOT_ARCH "thumbv7em"
#define BOARD_AOT_CPU "cortex-m4"
#define BOARD_AOT_ABI "eabihf"

/* Fixed 25 MHz core clock of the FPGA image (SysTick runs from it). */
#define BOARD_CPU_HZ 25000000u

/* Console: CMSDK APB UART0. */
#define BOARD_UART_CMSDK 1
#define BOARD_UART_BASE 0x40004000u
#define BOARD_UART_IRQN 0

/* User LED: FPGA IO LED register, bit 0 = LED0. */
#define BOARD_LED_FPGAIO 0x40028000u

/* Memory (mps2_an386.ld): 4 MiB code at 0x0, 4 MiB data at 0x20000000. */
#define BOARD_RAM_ORIGIN 0x20000000
#define BOARD_RAM_LENGTH 0x400000
#define AGENT_POOL_BYTES (1024u * 1024u)
#define AGENT_CMD_STACK_BYTES (16u * 1024u)
#define AGENT_WORKER_STACK_BYTES (24u * 1024u)
#define AGENT_WASM_STACK_BYTES 0 /* the core's default (16 KiB) */
#define SMOKE_POOL_BYTES (512u * 1024u)

#endif
