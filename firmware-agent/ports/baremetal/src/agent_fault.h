/*
 * CPU faults of the agent image (src/agent_fault.c): a fault on a job worker thread ends that
 * job as a trap, any other fault resets the board and the next HELLO says so (README.md
 * "CPU faults").
 */
#ifndef BAREMETAL_AGENT_FAULT_H
#define BAREMETAL_AGENT_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What the fault handler saw. */
struct agent_fault {
	uint32_t exc;  /* exception number: 3 hard, 4 memory management, 5 bus, 6 usage fault */
	uint32_t cfsr; /* SCB CFSR */
	uint32_t hfsr; /* SCB HFSR */
	uint32_t pc;   /* the faulting instruction (stacked pc) */
	uint32_t addr; /* MMFAR or BFAR when valid, else 0 */
	uint32_t addr_valid;
};

/* ---- provided by the port (agent_port.c), called by the fault handler ---- */

/**
 * Handler mode, interrupts masked by the fault: the slot whose job worker thread was running
 * when the fault hit (thread mode) and may be abandoned (holds no lock), else -1.
 */
int agent_fault_job_slot(void);

/** Thread mode, on the faulted worker (the fault returns here): hand over, never return. */
void agent_fault_job_landing(unsigned slot) __attribute__((noreturn));

/* ---- services ---- */

/** Enable the usage, bus and memory management fault exceptions; [lo, hi) is module code. */
void agent_fault_init(uintptr_t code_lo, uintptr_t code_hi);

/** The fault recorded for `slot`'s job (cleared), if any. Command context. */
bool agent_fault_take(unsigned slot, struct agent_fault *out);

/** Forget a fault recorded for `slot` (its worker was restarted for another reason). */
void agent_fault_clear(unsigned slot);

/** One line naming the fault: kind, cause, pc (in module code or not), address. */
void agent_fault_describe(const struct agent_fault *f, char *out, size_t cap);

/**
 * The agent fault that reset the board, described into `out` (then forgotten), or NULL after a
 * reset of any other kind. Call once at boot.
 */
const char *agent_fault_last_boot(char *out, size_t cap);

#endif
