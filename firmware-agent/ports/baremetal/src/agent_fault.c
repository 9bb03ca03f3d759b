/*
 * CPU faults of the agent image (board_cpu_fault, see board.h; README.md "CPU faults").
 *
 * A fault taken in thread mode on a job worker that holds no lock (module code, AOT or
 * interpreted, and whatever the runtime does for it) is a trap of that job: the handler records
 * it, rewrites the stacked frame so that the exception returns into agent_fault_job_landing()
 * on the same thread, and the port abandons the worker from the command thread as a forced stop
 * does (fresh stack, module re-instantiated), the core answering RESULT status=EXCEPTION.
 * Anything else (a fault in the command thread, in an interrupt handler, on a worker holding
 * the core's or the runtime's lock, or one whose exception frame could not be stacked) is a
 * fault of the agent itself: the handler keeps a record in RAM the reset does not clear and
 * resets the board; the next boot announces `reset=fault` in HELLO and INFO_OK.
 */
#include "agent_fault.h"

#include <stdio.h>
#include <string.h>

#include "board.h"
#include "cache.h"

#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define AIRCR_VECTKEY (0x05FAu << 16)
#define AIRCR_SYSRESETREQ (1u << 2)

#define SHCSR_FAULTS_ENA ((1u << 16) | (1u << 17) | (1u << 18)) /* mem, bus, usage */
#define CFSR_MMARVALID (1u << 7)
#define CFSR_BFARVALID (1u << 15)
/* the exception frame could not be stacked or unstacked: it cannot be returned to */
#define CFSR_STACKING ((1u << 3) | (1u << 4) | (1u << 11) | (1u << 12))
#define EXC_RETURN_THREAD (1u << 3)
#define EXC_RETURN_PSP (1u << 2)
#define XPSR_THUMB (1u << 24)
#define XPSR_STACK_ALIGN (1u << 9)
#define RECORD_MAGIC 0x57464c54u /* "WFLT" */
#define SLOTS_MAX 2

/*
 * Survives the reset: the last 64 bytes of SRAM, which the linker scripts leave outside every
 * section (so neither the reset handler nor an emulator reloading the image clears them).
 */
struct fault_record {
	uint32_t magic;
	struct agent_fault f;
	uint32_t check;
};
extern uint32_t __noinit_start[];
#define record (*(struct fault_record *)__noinit_start)
_Static_assert(sizeof(struct fault_record) <= 64, "the record fits the reserved 64 bytes");

static struct agent_fault job_fault[SLOTS_MAX];
static volatile bool job_faulted[SLOTS_MAX];
static uintptr_t module_lo, module_hi;

static uint32_t
record_check(void)
{
	const uint32_t *w = (const uint32_t *)&record.f;
	uint32_t c = RECORD_MAGIC;

	for (size_t i = 0; i < sizeof(record.f) / 4; i++)
		c = (c ^ w[i]) * 16777619u;
	return c;
}

void
agent_fault_init(uintptr_t code_lo, uintptr_t code_hi)
{
	module_lo = code_lo;
	module_hi = code_hi;
	SCB_SHCSR |= SHCSR_FAULTS_ENA;
	__asm volatile("dsb\n isb" ::: "memory");
}

static uint32_t
ipsr(void)
{
	uint32_t v;

	__asm volatile("mrs %0, ipsr" : "=r"(v));
	return v & 0x1FFu;
}

void
board_cpu_fault(uint32_t *frame, uint32_t exc_return)
{
	struct agent_fault f = {
		.exc = ipsr(),
		.cfsr = SCB_CFSR,
		.hfsr = SCB_HFSR,
		.pc = frame[6],
	};
	int slot = -1;

	if (f.cfsr & CFSR_MMARVALID) {
		f.addr = SCB_MMFAR;
		f.addr_valid = 1;
	} else if (f.cfsr & CFSR_BFARVALID) {
		f.addr = SCB_BFAR;
		f.addr_valid = 1;
	}
	SCB_CFSR = f.cfsr; /* write one to clear */
	SCB_HFSR = f.hfsr;
	if ((exc_return & EXC_RETURN_THREAD) && (exc_return & EXC_RETURN_PSP) &&
	    !(f.cfsr & CFSR_STACKING) && f.exc >= 3 && f.exc <= 6)
		slot = agent_fault_job_slot();
	if (slot >= 0 && slot < SLOTS_MAX) {
		job_fault[slot] = f;
		job_faulted[slot] = true;
		/* return into the landing on the worker's own stack, the frame's alignment kept */
		frame[0] = (uint32_t)slot;
		frame[5] = 0;
		frame[6] = (uint32_t)(uintptr_t)agent_fault_job_landing & ~1u;
		frame[7] = XPSR_THUMB | (frame[7] & XPSR_STACK_ALIGN);
		return;
	}
	record.f = f;
	record.magic = RECORD_MAGIC;
	record.check = record_check();
	/* no lock, no formatting: whatever the agent held is suspect; the next HELLO tells */
	board_uart_write("\nagent: CPU fault in the agent, resetting\n", 42);
	cache_clean_data(); /* the record must reach RAM: a reset discards dirty D-cache lines */
	__asm volatile("dsb" ::: "memory");
	SCB_AIRCR = AIRCR_VECTKEY | AIRCR_SYSRESETREQ;
	__asm volatile("dsb" ::: "memory");
	for (;;)
		;
}

bool
agent_fault_take(unsigned slot, struct agent_fault *out)
{
	if (slot >= SLOTS_MAX || !job_faulted[slot])
		return false;
	*out = job_fault[slot];
	job_faulted[slot] = false;
	return true;
}

void
agent_fault_clear(unsigned slot)
{
	if (slot < SLOTS_MAX)
		job_faulted[slot] = false;
}

static const char *
cause(uint32_t cfsr, uint32_t hfsr)
{
	static const struct {
		uint32_t bit;
		const char *what;
	} causes[] = {
		{ 1u << 16, "undefined instruction" },
		{ 1u << 19, "no coprocessor" },
		{ 1u << 17, "invalid state" },
		{ 1u << 18, "invalid exception return" },
		{ 1u << 24, "unaligned access" },
		{ 1u << 25, "divide by zero" },
		{ 1u << 0, "instruction fetch from a protected address" },
		{ 1u << 1, "data access to a protected address" },
		{ 1u << 5, "FP lazy state preservation" },
		{ 1u << 8, "instruction bus error" },
		{ 1u << 9, "precise data bus error" },
		{ 1u << 10, "imprecise data bus error" },
		{ 1u << 13, "FP lazy state preservation (bus)" },
		{ CFSR_STACKING, "exception stacking" },
	};

	for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++)
		if (cfsr & causes[i].bit)
			return causes[i].what;
	if (hfsr & (1u << 1))
		return "vector table read";
	return "unknown cause";
}

void
agent_fault_describe(const struct agent_fault *f, char *out, size_t cap)
{
	static const char *const kinds[] = { [3] = "HardFault", [4] = "MemManage",
					     [5] = "BusFault", [6] = "UsageFault" };
	const char *kind = f->exc < 7 && kinds[f->exc] ? kinds[f->exc] : "exception";
	bool in_module = f->pc >= module_lo && f->pc < module_hi;
	int n;

	n = snprintf(out, cap, "%s (%s) at pc=0x%08lx %s", kind, cause(f->cfsr, f->hfsr),
		     (unsigned long)f->pc, in_module ? "in module code" : "in the runtime");
	if (f->addr_valid && n > 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, " addr=0x%08lx", (unsigned long)f->addr);
}

const char *
agent_fault_last_boot(char *out, size_t cap)
{
	bool valid = record.magic == RECORD_MAGIC && record.check == record_check();

	record.magic = 0;
	if (!valid)
		return NULL;
	agent_fault_describe(&record.f, out, cap);
	return out;
}
