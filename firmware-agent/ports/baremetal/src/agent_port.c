/*
 * Wasmbed agent on bare metal (QEMU mps2-an386): the portable core driven
 * by one polled main loop. No protocol code here: UART bytes go into
 * agent_rx(), the core answers through write().
 *
 * Single-threaded model: the main loop is the command context and also runs
 * queued jobs (job context). While a job runs, every native that waits
 * (delay_ms, led_toggle, gpio_toggle, uart_print) sleeps through
 * port_sleep_ms(), which keeps feeding the UART to the core and polling it,
 * so STATUS and STOP are answered during a job. A STOP that reaches its
 * grace period aborts the job at its next wait (AGENT_ABORT_DEFERRED).
 * A module that loops without calling a native cannot be stopped: INFO
 * reports stop=cooperative.
 */
#include <stdbool.h>
#include <string.h>

#include "agent.h"
#include "board.h"
#include "wasm_export.h"

#define SLOTS 2
#define POOL_BYTES (1024u * 1024u)
/* FPGA IO LED register of the MPS2 images (bit 0 = LED0). */
#define FPGAIO_LED (*(volatile uint32_t *)0x40028000u)

static __attribute__((aligned(8))) uint8_t wamr_pool[POOL_BYTES];
static struct agent agent;

/* Jobs queued by the core (bit per slot) and the job now running (-1). */
static volatile uint32_t jobs_queued;
static int job_current = -1;
static bool job_abort_pending[SLOTS];

/* Move received UART bytes into the core. */
static void
port_pump_rx(void)
{
    uint8_t buf[128];
    size_t n;

    while ((n = board_uart_read(buf, sizeof(buf))) > 0)
        agent_rx(&agent, buf, n);
}

static void
port_write(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    board_uart_write(line, len);
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
    FPGAIO_LED = on ? 1u : 0u;
}

/* A job's running instance is told to unwind; the core reports the stop. */
static void
port_abandon_current_job(void)
{
    struct agent_slot *s = &agent.slots[job_current];

    if (s->inst)
        wasm_runtime_set_exception(s->inst, "terminated by forced stop");
}

/* Job context: wait `ms` while the link keeps being served. */
static void
port_sleep_ms(void *ctx, uint32_t ms)
{
    uint32_t start = board_now_ms();

    (void)ctx;
    while ((uint32_t)(board_now_ms() - start) < ms) {
        port_pump_rx();
        agent_poll(&agent);
        if (job_current >= 0
            && agent_job_abort_requested(&agent, (unsigned)job_current)) {
            port_abandon_current_job();
            return;
        }
        board_wait_for_interrupt();
    }
}

static void
port_wake(void *ctx)
{
    (void)ctx; /* the main loop polls; nothing to signal */
}

static void
port_job_start(void *ctx, unsigned slot)
{
    (void)ctx;
    jobs_queued |= 1u << slot;
}

static int
port_job_abort(void *ctx, unsigned slot)
{
    (void)ctx;
    if ((int)slot != job_current) {
        /* Queued, not started: it simply never runs. */
        jobs_queued &= ~(1u << slot);
        return 0;
    }
    job_abort_pending[slot] = true;
    return AGENT_ABORT_DEFERRED;
}

static void
port_noop(void *ctx)
{
    (void)ctx;
}

static void
port_log(void *ctx, const char *msg)
{
    (void)ctx;
    board_debug_puts(msg);
    board_debug_puts("\n");
}

static const struct agent_port_ops port_ops = {
    .write = port_write,
    .now_ms = port_now_ms,
    .led_set = port_led_set,
    .sleep_ms = port_sleep_ms,
    .wake = port_wake,
    .job_start = port_job_start,
    .job_abort = port_job_abort,
    .lock = port_noop,
    .unlock = port_noop,
    .rx_lock = port_noop,
    .rx_unlock = port_noop,
    .log = port_log,
};

/* Run every queued job to its end (job context = the main loop). */
static void
port_run_jobs(void)
{
    for (unsigned slot = 0; slot < SLOTS; slot++) {
        if (!(jobs_queued & (1u << slot)))
            continue;
        jobs_queued &= ~(1u << slot);
        job_current = (int)slot;
        agent_job_run(&agent, slot);
        job_current = -1;
        if (job_abort_pending[slot]) {
            job_abort_pending[slot] = false;
            agent_job_aborted(&agent, slot);
        }
    }
}

int
main(void)
{
    static const struct agent_config cfg = {
        .board = "mps2-an386",
        .rtos = "baremetal",
        .fw_version = "2.0.0",
        .fw_build = "baremetal-mps2-an386",
        .aot_arch = "thumbv7em",
        .aot_cpu = "cortex-m4",
        .aot_abi = "eabihf",
        .stop_mode = "cooperative",
        .slots = SLOTS,
        .pool = wamr_pool,
        .pool_size = sizeof(wamr_pool),
    };

    board_init();
    if (agent_init(&agent, &cfg, &port_ops, NULL) != 0)
        return 1;
    agent_hello(&agent);
    for (;;) {
        port_pump_rx();
        agent_poll(&agent);
        if (jobs_queued)
            port_run_jobs();
        else
            board_wait_for_interrupt();
    }
}
