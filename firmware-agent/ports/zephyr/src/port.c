/*
 * Wasmbed agent on Zephyr: the portable core (../../core) in its threaded mode. No protocol code
 * here: the port supplies the UART (port_uart.c), time, the LED, threads and the WAMR pool.
 *
 * Threads (Zephyr priorities: numerically lower runs first):
 *  - wasmbed_cmd (CONFIG_WASMBED_CMD_PRIORITY): the command context. Woken by the UART RX
 *    interrupt and by the core's deadlines, it hands received bytes to agent_rx() and runs
 *    agent_poll(). It preempts the workers, so INFO, STATUS and STOP are answered during any
 *    job. The forced stop and the re-instantiation after it run here too, on this thread's
 *    CONFIG_WASMBED_CMD_STACK_SIZE stack (the legacy firmware used the 1 KiB system work queue).
 *  - slot0..slotN-1 (CONFIG_WASMBED_WORKER_PRIORITY): one job worker per slot running
 *    agent_job_run(); equal priorities, time-sliced, so two slots run at once.
 * Both kinds run module code or WAMR's float helpers, so they are created with K_FP_REGS
 * (CONFIG_FPU_SHARING saves their FP registers on every switch).
 *
 * Memory: the WAMR pool is a static buffer sized from what the RAM budget leaves (README.md
 * "RAM budget"; the build fails if that is less than CONFIG_WASMBED_POOL_MIN_SIZE). AOT code
 * runs from it: port_mpu.c makes SRAM executable under the MPU and port_code_sync() makes freshly
 * loaded code visible to instruction fetch on CPUs with caches (Cortex-M7).
 *
 * Forced stop: STOP makes the core call wasm_runtime_terminate(); a job still running after the
 * grace period (CONFIG_WASMBED_STOP_GRACE_MS) gets job_abort() from agent_poll(): the worker is
 * k_thread_abort()ed while this port holds the core lock (so it is never abandoned inside agent
 * state or a TX line) and re-created on the same stack. A worker inside one of WAMR's mutexes
 * (the pool allocator's: an aborted owner would keep it locked for ever) or a memory.grow is
 * let run until it is out (link-time wrappers below, bounded by PORT_ABORT_WAIT_MS), as the
 * bare-metal and POSIX ports do. The core then reports `RESULT status=STOPPED forced=1` and
 * re-instantiates the module.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <zephyr/cache.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/gpio.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>

#include "wasm_export.h"

#include "agent.h"
#include "port_uart.h"

LOG_MODULE_REGISTER(wasmbed, LOG_LEVEL_INF);

#define PORT_LED_NODE DT_ALIAS(led0)
#define PORT_RX_CHUNK 64

/*
 * INFO aot_*: what an .aot must be compiled for. Cortex-M4 code also runs on the F746's
 * Cortex-M7, whose FPU is single precision (LLVM's cortex-m7 would assume double precision).
 */
#define PORT_AOT_ARCH "thumbv7em"
#define PORT_AOT_CPU "cortex-m4"
#if defined(CONFIG_FP_HARDABI)
#define PORT_AOT_ABI "eabihf"
#else
#define PORT_AOT_ABI "eabi"
#endif

/* Options the port cannot work without: fail the build, not the first run on the board. */
#if defined(CONFIG_FPU) && !defined(CONFIG_FPU_SHARING)
#error "prj.conf: CONFIG_FPU_SHARING=y (the command thread and every worker use the FPU)"
#endif
#if (defined(CONFIG_DCACHE) || defined(CONFIG_ICACHE)) && !defined(CONFIG_CACHE_MANAGEMENT)
#error "CPU with caches: set CONFIG_CACHE_MANAGEMENT=y in boards/<board>.conf (AOT code sync)"
#endif

BUILD_ASSERT(CONFIG_WASMBED_SLOTS >= 1 && CONFIG_WASMBED_SLOTS <= AGENT_MAX_SLOTS,
	     "CONFIG_WASMBED_SLOTS: 1..AGENT_MAX_SLOTS");
BUILD_ASSERT(CONFIG_WASMBED_CMD_PRIORITY < CONFIG_WASMBED_WORKER_PRIORITY,
	     "the command thread must preempt the workers (STATUS/STOP during a job)");

struct port_worker {
	struct k_thread thread;
	struct k_sem job;
	unsigned slot;
	char name[16];
	atomic_t wamr_sections; /* WAMR mutexes held / memory.grow calls in progress */
};

/* How long a forced stop waits for a worker to leave WAMR's mutexes. */
#define PORT_ABORT_WAIT_MS 2000

static struct agent port_agent;
static struct port_worker port_workers[CONFIG_WASMBED_SLOTS];

/* The worker the calling thread is, or NULL (the command thread, WAMR's own). */
static struct port_worker *port_worker_self(void)
{
	k_tid_t self = k_current_get();

	for (unsigned i = 0; i < CONFIG_WASMBED_SLOTS; i++)
		if (&port_workers[i].thread == self)
			return &port_workers[i];
	return NULL;
}

/*
 * Wrapped at link time (CMakeLists.txt: zephyr_ld_options(-Wl,--wrap=...)): WAMR's platform
 * mutexes and memory.grow count as sections a forced stop must not abandon.
 */
int __real_os_mutex_lock(void *mutex);
int __real_os_mutex_unlock(void *mutex);
bool __real_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __real_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);
int __wrap_os_mutex_lock(void *mutex);
int __wrap_os_mutex_unlock(void *mutex);
bool __wrap_wasm_enlarge_memory(void *inst, uint32_t pages);
bool __wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx);

int __wrap_os_mutex_lock(void *mutex)
{
	struct port_worker *w = port_worker_self();

	if (w)
		(void)atomic_inc(&w->wamr_sections);
	return __real_os_mutex_lock(mutex);
}

int __wrap_os_mutex_unlock(void *mutex)
{
	struct port_worker *w = port_worker_self();
	int rc = __real_os_mutex_unlock(mutex);

	if (w)
		(void)atomic_dec(&w->wamr_sections);
	return rc;
}

bool __wrap_wasm_enlarge_memory(void *inst, uint32_t pages)
{
	struct port_worker *w = port_worker_self();
	bool ok;

	if (w)
		(void)atomic_inc(&w->wamr_sections);
	ok = __real_wasm_enlarge_memory(inst, pages);
	if (w)
		(void)atomic_dec(&w->wamr_sections);
	return ok;
}

bool __wrap_wasm_enlarge_memory_with_idx(void *inst, uint32_t pages, uint32_t idx)
{
	struct port_worker *w = port_worker_self();
	bool ok;

	if (w)
		(void)atomic_inc(&w->wamr_sections);
	ok = __real_wasm_enlarge_memory_with_idx(inst, pages, idx);
	if (w)
		(void)atomic_dec(&w->wamr_sections);
	return ok;
}
static K_THREAD_STACK_ARRAY_DEFINE(port_worker_stacks, CONFIG_WASMBED_SLOTS,
				   CONFIG_WASMBED_WORKER_STACK_SIZE);
static struct k_thread port_cmd_thread;
static K_THREAD_STACK_DEFINE(port_cmd_stack, CONFIG_WASMBED_CMD_STACK_SIZE);

/*
 * RAM budget of the chosen zephyr,sram (README.md "RAM budget"): the kernel's stacks, this
 * port's stacks (with Zephyr's per-stack reserve), the RX ring, the agent state and
 * CONFIG_WASMBED_RAM_RESERVE for what cannot be sized here; the pool gets the rest.
 */
#if defined(CONFIG_LOG_PROCESS_THREAD)
#define PORT_LOG_THREAD_RAM CONFIG_LOG_PROCESS_THREAD_STACK_SIZE
#else
#define PORT_LOG_THREAD_RAM 0
#endif
#if defined(CONFIG_LOG_MODE_DEFERRED)
#define PORT_LOG_BUFFER_RAM CONFIG_LOG_BUFFER_SIZE
#else
#define PORT_LOG_BUFFER_RAM 0
#endif
#define PORT_RAM_TOTAL ((size_t)CONFIG_SRAM_SIZE * 1024u)
#define PORT_RAM_KERNEL                                                                            \
	((size_t)CONFIG_ISR_STACK_SIZE + CONFIG_MAIN_STACK_SIZE + CONFIG_IDLE_STACK_SIZE +          \
	 CONFIG_SYSTEM_WORKQUEUE_STACK_SIZE + PORT_LOG_THREAD_RAM + PORT_LOG_BUFFER_RAM)
#define PORT_RAM_AGENT                                                                             \
	(sizeof(port_worker_stacks) + sizeof(port_cmd_stack) + (size_t)CONFIG_WASMBED_RX_RING_SIZE + \
	 sizeof(struct agent))
#define PORT_RAM_OTHERS (PORT_RAM_KERNEL + PORT_RAM_AGENT + CONFIG_WASMBED_RAM_RESERVE)
/* what is left, 1 KiB-rounded (saturates so that the BUILD_ASSERT below reports a shortfall) */
#define PORT_RAM_LEFT                                                                              \
	(PORT_RAM_TOTAL > PORT_RAM_OTHERS ? ((PORT_RAM_TOTAL - PORT_RAM_OTHERS) & ~(size_t)1023) : 0)
#if CONFIG_WASMBED_POOL_SIZE > 0
#define PORT_POOL_SIZE ((size_t)CONFIG_WASMBED_POOL_SIZE)
#else
#define PORT_POOL_SIZE (PORT_RAM_LEFT > 0 ? PORT_RAM_LEFT : 8)
#endif
BUILD_ASSERT(PORT_RAM_LEFT >= CONFIG_WASMBED_POOL_MIN_SIZE,
	     "RAM budget: less than CONFIG_WASMBED_POOL_MIN_SIZE left for the WAMR pool; shrink "
	     "the stacks or the RX ring in boards/<board>.conf (README.md \"RAM budget\")");
BUILD_ASSERT(PORT_POOL_SIZE <= PORT_RAM_LEFT && PORT_POOL_SIZE % 8 == 0,
	     "CONFIG_WASMBED_POOL_SIZE: a multiple of 8 no larger than what the RAM budget leaves");

static uint8_t port_pool[PORT_POOL_SIZE] __aligned(8);
static K_SEM_DEFINE(port_cmd_wake, 0, 1);
static K_MUTEX_DEFINE(port_core_mutex);
static K_MUTEX_DEFINE(port_rx_mutex);
static uint32_t port_rx_dropped_logged;

#if DT_NODE_HAS_STATUS(PORT_LED_NODE, okay)
static const struct gpio_dt_spec port_led = GPIO_DT_SPEC_GET(PORT_LED_NODE, gpios);
static bool port_led_ok;

static bool port_led_init(void)
{
	port_led_ok = gpio_is_ready_dt(&port_led) &&
		      gpio_pin_configure_dt(&port_led, GPIO_OUTPUT_INACTIVE) == 0;
	return port_led_ok;
}

static void port_led_set(void *ctx, int on)
{
	ARG_UNUSED(ctx);
	if (port_led_ok)
		(void)gpio_pin_set_dt(&port_led, on ? 1 : 0);
}
#define PORT_LED_SET port_led_set
#else
static bool port_led_init(void)
{
	return false;
}
#define PORT_LED_SET NULL /* the core still counts toggles */
#endif

static void port_write(void *ctx, const char *line, size_t len)
{
	ARG_UNUSED(ctx);
	port_uart_write(line, len);
}

static uint32_t port_now_ms(void *ctx)
{
	ARG_UNUSED(ctx);
	return k_uptime_get_32();
}

static void port_sleep_ms(void *ctx, uint32_t ms)
{
	ARG_UNUSED(ctx);
	k_msleep((int32_t)ms);
}

static void port_wake(void *ctx)
{
	ARG_UNUSED(ctx);
	k_sem_give(&port_cmd_wake);
}

static void port_job_start(void *ctx, unsigned slot)
{
	ARG_UNUSED(ctx);
	k_sem_give(&port_workers[slot].job);
}

static void port_worker_main(void *p1, void *p2, void *p3)
{
	struct port_worker *w = p1;

	ARG_UNUSED(p2);
	ARG_UNUSED(p3);
	(void)wasm_runtime_init_thread_env();
	for (;;) {
		(void)k_sem_take(&w->job, K_FOREVER);
		agent_job_run(&port_agent, w->slot);
	}
}

static void port_worker_spawn(struct port_worker *w)
{
	k_tid_t tid = k_thread_create(&w->thread, port_worker_stacks[w->slot],
				      K_THREAD_STACK_SIZEOF(port_worker_stacks[w->slot]),
				      port_worker_main, w, NULL, NULL,
				      CONFIG_WASMBED_WORKER_PRIORITY, K_FP_REGS, K_NO_WAIT);

	(void)k_thread_name_set(tid, w->name);
}

/* Command context, core lock not held (the core's contract); returns once the job is gone. */
static int port_job_abort(void *ctx, unsigned slot)
{
	struct port_worker *w = &port_workers[slot];

	ARG_UNUSED(ctx);
	for (uint32_t waited = 0;; waited++) {
		k_mutex_lock(&port_core_mutex, K_FOREVER);
		/* the worker has the lower priority: it does not run again before the abort */
		if (atomic_get(&w->wamr_sections) == 0)
			break;
		k_mutex_unlock(&port_core_mutex);
		if (waited >= PORT_ABORT_WAIT_MS) {
			LOG_ERR("forced stop: slot %u kept a WAMR lock", slot);
			return -ETIMEDOUT;
		}
		k_msleep(1); /* let the worker run until it is out */
	}
	k_thread_abort(&w->thread);
	k_sem_reset(&w->job); /* a pending post belonged to the abandoned run */
	atomic_set(&w->wamr_sections, 0);
	port_worker_spawn(w);
	k_mutex_unlock(&port_core_mutex);
	return 0;
}

static void port_lock(void *ctx)
{
	ARG_UNUSED(ctx);
	k_mutex_lock(&port_core_mutex, K_FOREVER);
}

static void port_unlock(void *ctx)
{
	ARG_UNUSED(ctx);
	k_mutex_unlock(&port_core_mutex);
}

static void port_rx_lock(void *ctx)
{
	ARG_UNUSED(ctx);
	k_mutex_lock(&port_rx_mutex, K_FOREVER);
}

static void port_rx_unlock(void *ctx)
{
	ARG_UNUSED(ctx);
	k_mutex_unlock(&port_rx_mutex);
}

#if defined(CONFIG_INIT_STACKS) && defined(CONFIG_THREAD_STACK_INFO)
static uint32_t port_stack_free(void *ctx, unsigned slot)
{
	size_t unused = 0;

	ARG_UNUSED(ctx);
	if (k_thread_stack_space_get(&port_workers[slot].thread, &unused) != 0)
		return 0;
	return (uint32_t)unused;
}
#define PORT_STACK_FREE port_stack_free

/*
 * A new module takes the slot and its worker is idle (blocked on its semaphore, holding nothing:
 * the core's contract): re-create the worker on the same stack, which re-fills the stack with
 * Zephyr's CONFIG_INIT_STACKS pattern, so that stack_free is the new module's own figure.
 */
static void port_stack_reset(void *ctx, unsigned slot)
{
	struct port_worker *w = &port_workers[slot];

	ARG_UNUSED(ctx);
	k_thread_abort(&w->thread);
	port_worker_spawn(w);
}
#define PORT_STACK_RESET port_stack_reset
#else
#define PORT_STACK_FREE NULL /* the core reports the wasm stack size */
#define PORT_STACK_RESET NULL
#endif
#if defined(CONFIG_LOG)
/* Diagnostics through Zephyr logging: give it a backend other than the protocol UART (RTT). */
static void port_log(void *ctx, const char *msg)
{
	ARG_UNUSED(ctx);
	LOG_INF("%s", msg);
}
#define PORT_LOG port_log
#else
#define PORT_LOG NULL /* the core then skips formatting its diagnostics */
#endif

#if defined(CONFIG_CACHE_MANAGEMENT)
/*
 * After an AOT load, before the code runs (command context). WAMR's loader wrote the code and
 * its relocations through the D-cache, and the I-cache may still hold a previous module's code at
 * the same pool addresses; WAMR 2.4.3's own os_icache_flush() asks Zephyr for an I-cache *flush*,
 * which Cortex-M does not support (-ENOTSUP), so nothing is invalidated. Whole-cache operations:
 * the M7's caches are 4 KiB each (128 set/way steps), cheaper than a by-address walk over the
 * code, whose range WAMR does not export.
 */
static void port_code_sync(void *ctx)
{
	ARG_UNUSED(ctx);
	(void)sys_cache_data_flush_all();
	(void)sys_cache_instr_invd_all();
}
#define PORT_CODE_SYNC port_code_sync
#else
#define PORT_CODE_SYNC NULL /* no caches (Cortex-M4): SRAM writes are visible to fetches */
#endif

static const struct agent_port_ops port_ops = {
	.write = port_write,
	.now_ms = port_now_ms,
	.led_set = PORT_LED_SET,
	.sleep_ms = port_sleep_ms,
	.wake = port_wake,
	.job_start = port_job_start,
	.job_abort = port_job_abort,
	.lock = port_lock,
	.unlock = port_unlock,
	.rx_lock = port_rx_lock,
	.rx_unlock = port_rx_unlock,
	.stack_free = PORT_STACK_FREE,
	.stack_reset = PORT_STACK_RESET,
	.log = PORT_LOG,
	.code_sync = PORT_CODE_SYNC,
	.floor_saved = NULL, /* signed modules: minimum versions stay in RAM (docs/SECURITY.md) */
	.set_baud = NULL, /* BAUD not offered yet (core/PORTING.md "set_baud") */
};

/* Hand the bytes the RX interrupt queued to the core. */
static void port_pump_rx(void)
{
	uint8_t buf[PORT_RX_CHUNK];
	uint32_t dropped;
	size_t n;

	while ((n = port_uart_read(buf, sizeof(buf))) > 0) {
		k_mutex_lock(&port_rx_mutex, K_FOREVER);
		agent_rx(&port_agent, buf, n);
		k_mutex_unlock(&port_rx_mutex);
	}
	dropped = port_uart_dropped();
	if (dropped != port_rx_dropped_logged) {
		LOG_WRN("UART RX: %u bytes lost (ring full or overrun)",
			(unsigned)(dropped - port_rx_dropped_logged));
		port_rx_dropped_logged = dropped;
	}
}

static void port_cmd_main(void *p1, void *p2, void *p3)
{
	static const struct agent_config cfg = {
		.board = CONFIG_BOARD,
		.rtos = "Zephyr",
		.fw_version = "2.0.0",
		.fw_build = "zephyr-" CONFIG_BOARD,
		.aot_arch = PORT_AOT_ARCH,
		.aot_cpu = PORT_AOT_CPU,
		.aot_abi = PORT_AOT_ABI,
		.stop_mode = "forced",
		.slots = CONFIG_WASMBED_SLOTS,
		.pool = port_pool,
		.pool_size = sizeof(port_pool),
		.wasm_stack = CONFIG_WASMBED_WASM_STACK_SIZE,
		.stop_grace_ms = CONFIG_WASMBED_STOP_GRACE_MS,
	};
	int rc;

	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);
	rc = agent_init(&port_agent, &cfg, &port_ops, NULL);
	if (rc) {
		LOG_ERR("agent_init failed (%d)", rc); /* it has sent ERROR code=WAMR_INIT_FAIL */
		return;
	}
	agent_hello(&port_agent);
	for (;;) {
		uint32_t next;

		port_pump_rx();
		next = agent_poll(&port_agent);
		(void)k_sem_take(&port_cmd_wake, K_MSEC(next));
	}
}

int main(void)
{
	int rc;

	/* main runs first (priority 0): everything exists before the agent threads start */
	rc = port_uart_init(&port_cmd_wake);
	if (rc) {
		LOG_ERR("UART not ready (%d)", rc);
		return rc;
	}
	if (!port_led_init())
		LOG_WRN("no usable led0: the LED natives only count toggles");
	for (unsigned i = 0; i < CONFIG_WASMBED_SLOTS; i++) {
		struct port_worker *w = &port_workers[i];

		w->slot = i;
		snprintf(w->name, sizeof(w->name), "slot%u", i);
		k_sem_init(&w->job, 0, 1);
		port_worker_spawn(w);
	}
	k_thread_create(&port_cmd_thread, port_cmd_stack, K_THREAD_STACK_SIZEOF(port_cmd_stack),
			port_cmd_main, NULL, NULL, NULL, CONFIG_WASMBED_CMD_PRIORITY, K_FP_REGS,
			K_NO_WAIT);
	(void)k_thread_name_set(&port_cmd_thread, "wasmbed_cmd");
	return 0;
}
