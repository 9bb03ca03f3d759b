/* Agent lifecycle and the command-context loop body (agent_poll). */
#include <errno.h>
#include <string.h>

#include "agent_wasm.h"

#define POLL_MAX_MS 50
#define LINES_PER_POLL 8

static const char *or_default(const char *v, const char *d) { return v ? v : d; }

static void config_defaults(struct agent_config *c)
{
	c->board = or_default(c->board, "wasmbed");
	c->rtos = or_default(c->rtos, "baremetal");
	c->fw_version = or_default(c->fw_version, "2.0.0");
	c->fw_build = or_default(c->fw_build, "dev");
	c->aot_arch = or_default(c->aot_arch, "none");
	c->aot_cpu = or_default(c->aot_cpu, "generic");
	c->aot_abi = or_default(c->aot_abi, "gnu");
	c->aot_features = or_default(c->aot_features, "none");
	c->stop_mode = or_default(c->stop_mode, "forced");
	if (c->slots == 0)
		c->slots = 2;
	if (c->slots > AGENT_MAX_SLOTS)
		c->slots = AGENT_MAX_SLOTS;
	if (!c->wasm_stack)
		c->wasm_stack = 16384;
	if (!c->stop_grace_ms)
		c->stop_grace_ms = 1200;
	if (!c->start_timeout_ms)
		c->start_timeout_ms = 1000;
	if (!c->load_timeout_ms)
		c->load_timeout_ms = 5000;
	if (!c->chunk_timeout_ms)
		c->chunk_timeout_ms = 2000;
	if (!c->chunk_wait_ms)
		c->chunk_wait_ms = 10000;
	if (!c->chunk_max)
		c->chunk_max = 16384;
}

int agent_init(struct agent *a, const struct agent_config *cfg,
	       const struct agent_port_ops *ops, void *ctx)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->ops = ops;
	a->ctx = ctx;
	a->cfg = *cfg;
	config_defaults(&a->cfg);
	a->rx.chunk_max = a->cfg.chunk_max;
	for (unsigned i = 0; i < AGENT_MAX_SLOTS; i++) {
		a->slots[i].agent = a;
		a->slots[i].index = i;
	}
	if (!ops->write || !ops->now_ms || !ops->sleep_ms || !ops->job_start)
		return -EINVAL;
	agent_ident_init(a);
	rc = agent_wasm_init(a);
	if (rc) {
		agent_sendf(a, "ERROR code=WAMR_INIT_FAIL");
		return rc;
	}
	a->wasm_ready = true;
	return 0;
}

void agent_deinit(struct agent *a)
{
	if (!a->wasm_ready)
		return;
	agent_lock(a);
	agent_upload_park(a);
	for (unsigned i = 0; i < a->cfg.slots; i++) {
		struct agent_slot *s = &a->slots[i];
		if ((s->state == SLOT_RUNNING || s->state == SLOT_STARTING) &&
		    agent_slot_kill(s) != 0)
			continue; /* still running: leave its memory alone */
		if (s->state == SLOT_STARTING) {
			s->inst = NULL; /* abandoned mid-instantiation: not ours to free */
			s->exec_env = NULL;
		}
		if (s->state != SLOT_FREE)
			agent_slot_unload(s);
	}
	agent_unlock(a);
	agent_wasm_deinit(a);
	a->wasm_ready = false;
}

void agent_hello(struct agent *a)
{
	agent_lock(a);
	agent_cmd_hello(a, "");
	agent_unlock(a);
}

static uint32_t min_u32(uint32_t x, uint32_t y) { return x < y ? x : y; }

static void report_overflow(struct agent *a)
{
	uint32_t lost;

	if (a->ops->rx_lock)
		a->ops->rx_lock(a->ctx);
	lost = a->rx.overflow - a->rx.overflow_reported;
	a->rx.overflow_reported = a->rx.overflow;
	if (a->ops->rx_unlock)
		a->ops->rx_unlock(a->ctx);
	if (lost)
		agent_sendf(a, "ERROR code=RX_OVERFLOW dropped=%lu", (unsigned long)lost);
}

uint32_t agent_poll(struct agent *a)
{
	struct agent_rx_line line;
	uint32_t next = POLL_MAX_MS;

	agent_lock(a);
	for (int i = 0; i < LINES_PER_POLL; i++) {
		report_overflow(a);
		next = min_u32(next, agent_upload_poll(a));
		if (!agent_rx_pop(a, &line))
			break;
		a->rx_flags = line.flags;
		if (line.flags & AGENT_RXL_TOO_LONG) {
			agent_sendf(a, "ERROR code=LINE_TOO_LONG");
		} else if (line.flags & AGENT_RXL_FRAME) {
			agent_frame_chunk(a, &line);
		} else {
			if (a->ops->trace_command)
				a->ops->trace_command(a->ctx, line.text, line.len);
			agent_dispatch(a, line.text, line.len);
		}
		a->rx_flags = 0;
	}
	report_overflow(a);
	next = min_u32(next, agent_upload_poll(a));
	next = min_u32(next, agent_jobs_poll(a));
	next = min_u32(next, agent_baud_poll(a));
	agent_unlock(a);
	return next ? next : 1;
}
