/*
 * Wasmbed agent on bare metal (QEMU mps2-an386, STM32F4 boards): the portable core driven in
 * its threaded mode on the port's tiny preemptive kernel (kern.h), the same
 * shape as the Zephyr firmware and the POSIX reference port. No protocol
 * code here: UART bytes go into agent_rx(), the core answers through write().
 *
 * Threads (priority: higher runs first):
 *  - cmd (2): command context. The UART RX interrupt queues bytes and wakes
 *    it; it feeds them to agent_rx() and runs agent_poll(), so INFO, STATUS
 *    and STOP are answered while jobs run: it preempts the workers.
 *  - slot0..slotN-1 (1): one job worker per slot, time-sliced against each
 *    other, so two slots run at once.
 *  - idle (0): wfi.
 *
 * Forced stop: after STOP's grace period the core calls job_abort(); the
 * worker (never running at that moment: cmd has the higher priority) is
 * restarted at its entry on a fresh stack, abandoning the WAMR call wherever
 * it was, interpreted or AOT, busy loop or not. A worker holding a lock (the
 * core lock, a WAMR mutex such as the pool allocator's, or the memory.grow
 * lock below) is not abandoned until it has released it. The core then re-instantiates the module.
 * INFO therefore reports stop=forced.
 *
 * CPU faults (agent_fault.c): a fault on a worker that holds no lock returns into
 * agent_fault_job_landing() on that worker, which wakes cmd and parks; cmd abandons it the
 * same way (fresh stack) and the core ends the job with RESULT status=EXCEPTION. Any other
 * fault resets the board, and the next HELLO carries reset=fault.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "agent.h"
#include "agent_fault.h"
#include "board.h"
#include "identity.h"
#include "kern.h"
#include "mpu.h"

#ifdef AGENT_SLOTS
#define SLOTS AGENT_SLOTS /* the board header's budget */
#else
#define SLOTS 2
#endif
/* Memory budget: AGENT_POOL_BYTES, AGENT_*_STACK_BYTES come from the board header. */
#define PRIO_CMD 2
#define PRIO_WORKER 1
/* How long a forced stop waits for a worker to release its locks. */
#define ABORT_WAIT_MS 2000u

struct port_worker {
	struct kern_thread thread;
	struct kern_sem job;
	unsigned slot;
};

#ifdef PORT_HAVE_TRUSTED_KEYS
/* build.sh TRUSTED_KEYS=FILE: the keys modules must be signed by (cmake/trusted-keys.cmake) */
#include "trusted_keys.h"
static const uint8_t trusted_keys[PORT_TRUSTED_KEYS_N][32] = PORT_TRUSTED_KEYS;
#endif

static __attribute__((aligned(8))) uint8_t wamr_pool[AGENT_POOL_BYTES];
static struct agent agent;
static struct port_worker workers[SLOTS];
static uint64_t worker_stacks[SLOTS][AGENT_WORKER_STACK_BYTES / 8] BOARD_CPU_ONLY_BSS;
static struct kern_thread cmd_thread;
static uint64_t cmd_stack[AGENT_CMD_STACK_BYTES / 8] BOARD_CPU_ONLY_BSS;
static struct kern_sem cmd_wake;
static struct kern_mutex core_lock;
static struct kern_mutex rx_lock;

static void
port_write(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	board_console_write(line, len);
}

static uint32_t
port_now_ms(void *ctx)
{
	(void)ctx;
	return board_now_ms();
}

static void
port_led_set(void *ctx, int on)
{
	(void)ctx;
	board_led_set(on);
}

static void
port_sleep_ms(void *ctx, uint32_t ms)
{
	(void)ctx;
	kern_sleep_ms(ms);
}

static void
port_wake(void *ctx)
{
	(void)ctx;
	kern_sem_give(&cmd_wake);
}

static void
port_job_start(void *ctx, unsigned slot)
{
	(void)ctx;
	kern_sem_give(&workers[slot].job);
}

/* Command context, core lock not held. */
static int
port_job_abort(void *ctx, unsigned slot)
{
	struct port_worker *w = &workers[slot];
	uint32_t waited = 0;
	int rc;

	(void)ctx;
	while ((rc = kern_thread_restart(&w->thread)) == -EBUSY) {
		if (waited >= ABORT_WAIT_MS) {
			board_debug_puts("agent: forced stop: worker kept its locks\n");
			return -ETIMEDOUT;
		}
		kern_sleep_ms(1); /* let the worker run until it unlocks */
		waited++;
	}
	if (rc == 0) {
		kern_sem_reset(&w->job); /* a pending post belonged to the abandoned run */
		agent_fault_clear(slot); /* a fault it parked with is answered by the forced stop */
	}
	return rc;
}

/*
 * memory.grow holds no lock between the pool's realloc and the instance taking the new block, but
 * a worker abandoned there would leave the instance pointing at freed memory: the call holds a
 * mutex of its own, so that kern_thread_restart() waits for it like for any other lock.
 * Wrapped at link time (CMakeLists.txt: -Wl,--wrap=wasm_enlarge_memory,...).
 */
static struct kern_mutex grow_lock;

bool __real_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __real_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);
bool __wrap_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);

bool
__wrap_wasm_enlarge_memory(void *inst, uint32_t pages)
{
	bool ok;

	kern_mutex_lock(&grow_lock);
	ok = __real_wasm_enlarge_memory(inst, pages);
	kern_mutex_unlock(&grow_lock);
	return ok;
}

bool
__wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx)
{
	bool ok;

	kern_mutex_lock(&grow_lock);
	ok = __real_wasm_enlarge_memory_with_idx(inst, pages, idx);
	kern_mutex_unlock(&grow_lock);
	return ok;
}

static void
port_lock(void *ctx)
{
	(void)ctx;
	kern_mutex_lock(&core_lock);
}

static void
port_unlock(void *ctx)
{
	(void)ctx;
	kern_mutex_unlock(&core_lock);
}

static void
port_rx_lock(void *ctx)
{
	(void)ctx;
	kern_mutex_lock(&rx_lock);
}

static void
port_rx_unlock(void *ctx)
{
	(void)ctx;
	kern_mutex_unlock(&rx_lock);
}

static uint32_t
port_stack_free(void *ctx, unsigned slot)
{
	(void)ctx;
	return kern_stack_free(&workers[slot].thread);
}

/* A new module takes the slot (its worker idle): its stack_free becomes its own figure. */
static void
port_stack_reset(void *ctx, unsigned slot)
{
	(void)ctx;
	kern_stack_repaint(&workers[slot].thread);
}

static void
port_log(void *ctx, const char *msg)
{
	(void)ctx;
	/* A console line on the UART (no semihosting: boards run without a debugger). */
	board_console_lock();
	board_uart_write(msg, strlen(msg));
	board_uart_write("\n", 1);
	board_console_unlock();
}

static const struct agent_port_ops port_ops = {
	.write = port_write,
	.now_ms = port_now_ms,
	.led_set = port_led_set,
	.sleep_ms = port_sleep_ms,
	.wake = port_wake,
	.job_start = port_job_start,
	.job_abort = port_job_abort,
	.lock = port_lock,
	.unlock = port_unlock,
	.rx_lock = port_rx_lock,
	.rx_unlock = port_rx_unlock,
	.stack_free = port_stack_free,
	.stack_reset = port_stack_reset,
	.log = port_log,
};

/* UART RX interrupt: bytes are in the ring, wake the command thread. */
static void
port_on_rx(void)
{
	kern_sem_give(&cmd_wake);
}

/* Move received UART bytes into the core; true if any were moved. */
static bool
port_pump_rx(void)
{
	uint8_t buf[128];
	bool any = false;
	size_t n;

	while ((n = board_uart_read(buf, sizeof(buf))) > 0) {
		kern_mutex_lock(&rx_lock);
		agent_rx(&agent, buf, n);
		kern_mutex_unlock(&rx_lock);
		any = true;
	}
	return any;
}

int
agent_fault_job_slot(void)
{
	struct kern_thread *t = kern_self();

	if (!kern_running())
		return -1;
	for (unsigned i = 0; i < SLOTS; i++)
		if (t == &workers[i].thread && t->locks_held == 0)
			return (int)i;
	return -1;
}

void
agent_fault_job_landing(unsigned slot)
{
	(void)slot;
	kern_sem_give(&cmd_wake);
	for (;;)
		kern_sleep_ms(60000); /* until cmd restarts this worker (port_reap_faults) */
}

/* Command context: end the jobs whose worker faulted (parked in agent_fault_job_landing). */
static void
port_reap_faults(void)
{
	static char what[SLOTS][112]; /* until the RESULT naming it is written (agent.h) */
	struct agent_fault f;

	for (unsigned i = 0; i < SLOTS; i++) {
		if (!agent_fault_take(i, &f))
			continue;
		if (kern_thread_restart(&workers[i].thread) != 0)
			board_exit(71); /* a parked worker holds no lock: cannot happen */
		kern_sem_reset(&workers[i].job);
		agent_fault_describe(&f, what[i], sizeof(what[i]));
		agent_job_faulted(&agent, i, what[i]);
	}
}

static void
worker_main(void *arg)
{
	struct port_worker *w = arg;

	for (;;) {
		kern_sem_take(&w->job, KERN_FOREVER);
		agent_job_run(&agent, w->slot);
	}
}

static void
cmd_main(void *arg)
{
	static char last_fault[128];
	const char *identity_problem;
	struct agent_config cfg = {
		.board = BOARD_NAME,
		.rtos = "baremetal",
		.fw_version = "2.0.0",
		.fw_build = "baremetal-" BOARD_NAME,
		.aot_arch = BOARD_AOT_ARCH,
		.aot_cpu = BOARD_AOT_CPU,
		.aot_abi = BOARD_AOT_ABI,
		.stop_mode = "forced",
		.baud = BOARD_UART_BAUD,
		.slots = SLOTS,
		.pool = wamr_pool,
		.pool_size = sizeof(wamr_pool),
		.wasm_stack = AGENT_WASM_STACK_BYTES,
#ifdef PORT_HAVE_TRUSTED_KEYS
		.sig_mode = PORT_SIG_MODE,
		.trusted_keys = trusted_keys,
		.trusted_keys_n = PORT_TRUSTED_KEYS_N,
#endif
	};
	uint32_t next;

	(void)arg;
	cfg.last_fault = agent_fault_last_boot(last_fault, sizeof(last_fault));
	if (cfg.last_fault)
		cfg.reset_cause = "fault";
	cfg.identity_seed = identity_seed(&identity_problem); /* provisioned per board (identity.c) */
	if (agent_init(&agent, &cfg, &port_ops, NULL) != 0)
		board_exit(1);
	agent_hello(&agent);
	if (identity_problem)
		port_log(NULL, identity_problem);
	for (;;) {
		port_pump_rx();
		port_reap_faults();
		next = agent_poll(&agent);
		kern_sem_take(&cmd_wake, next);
	}
}

int
main(void)
{
	struct mpu_window win;

	board_init();
	/* SRAM execute-never, the pool executable: AOT code runs from it (mpu.c). */
	(void)mpu_protect_pool(wamr_pool, sizeof(wamr_pool), &win);
	/* usage, bus and memory faults as such (not escalated); module code runs from the pool */
	agent_fault_init((uintptr_t)wamr_pool, (uintptr_t)wamr_pool + sizeof(wamr_pool));
	kern_sem_init(&cmd_wake, 0, 1);
	kern_mutex_init(&core_lock);
	kern_mutex_init(&rx_lock);
	kern_mutex_init(&grow_lock);
	_Static_assert(SLOTS >= 1 && SLOTS <= 2, "worker names for 1 or 2 slots");
	for (unsigned i = 0; i < SLOTS; i++) {
		struct port_worker *w = &workers[i];
		static const char *const names[] = { "slot0", "slot1" };

		w->slot = i;
		kern_sem_init(&w->job, 0, 1);
		if (kern_thread_create(&w->thread, names[i], PRIO_WORKER, worker_main, w,
				       worker_stacks[i], sizeof(worker_stacks[i])) != 0)
			return 1;
	}
	if (kern_thread_create(&cmd_thread, "cmd", PRIO_CMD, cmd_main, NULL, cmd_stack,
			       sizeof(cmd_stack)) != 0)
		return 1;
	board_uart_set_rx_hook(port_on_rx);
	kern_start();
}
