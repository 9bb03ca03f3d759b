/* Command dispatch (one static table) and the informational commands: STATUS, INFO, HELLO. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_wasm.h"

#define LOW_STACK_BYTES 512

struct agent_cmd {
	const char *name;
	void (*handler)(struct agent *a, const char *params);
};

static const struct agent_cmd commands[] = {
	{ .name = "LOAD", .handler = agent_cmd_load },
	{ .name = "CHUNK", .handler = agent_cmd_chunk },
	{ .name = "START", .handler = agent_cmd_start },
	{ .name = "STOP", .handler = agent_cmd_stop },
	{ .name = "STATUS", .handler = agent_cmd_status },
	{ .name = "INFO", .handler = agent_cmd_info },
	{ .name = "UNLOAD", .handler = agent_cmd_unload },
	{ .name = "HELLO", .handler = agent_cmd_hello },
	{ .name = "IDENT", .handler = agent_cmd_ident },
	{ .name = "SIG", .handler = agent_cmd_sig },
	{ .name = "MINVER", .handler = agent_cmd_minver },
	{ .name = "BAUD", .handler = agent_cmd_baud },
};

void agent_dispatch(struct agent *a, char *line, size_t len)
{
	char *p = line, *name;
	size_t n;

	line[len] = '\0';
	while (*p == ' ')
		p++;
	name = p;
	while (*p && *p != ' ')
		p++;
	n = (size_t)(p - name);
	while (*p == ' ')
		p++;
	if (n == 0)
		return; /* only spaces (or a NUL byte first): like an empty line */
	{
		struct agent_param ps;
		a->reply_tag = agent_param_get(p, "seq", &ps) && agent_param_u32(&ps, &a->reply_seq);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].name) == n && memcmp(commands[i].name, name, n) == 0) {
			agent_baud_confirm(a); /* a command arrived intact: the link speed works */
			commands[i].handler(a, p);
			a->reply_tag = false;
			return;
		}
	}
	agent_sendf(a, "ERROR code=UNKNOWN_COMMAND");
	a->reply_tag = false;
}

static uint32_t slot_stack_free(struct agent *a, unsigned i)
{
	return a->ops->stack_free ? a->ops->stack_free(a->ctx, i) : a->cfg.wasm_stack;
}

/* Appends with snprintf semantics; stops writing when full. */
static void cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len = (*len + (size_t)n < cap) ? *len + (size_t)n : cap - 1;
}

void agent_cmd_status(struct agent *a, const char *params)
{
	char mods[512], low[160];
	size_t ml = 0, ll = 0;
	uint32_t total, free_b, high;

	(void)params;
	mods[0] = low[0] = '\0';
	for (unsigned i = 0; i < a->cfg.slots; i++) {
		struct agent_slot *s = &a->slots[i];
		uint32_t sf;
		if (!s->inst)
			continue;
		sf = slot_stack_free(a, i);
		cat(mods, sizeof(mods), &ml, "%s%s:%s:wasm=%lu:stack_free=%lu:crc32=%08lx",
		    ml ? "," : "", s->id, s->state == SLOT_RUNNING ? "RUNNING" : "LOADED",
		    (unsigned long)s->size, (unsigned long)sf, (unsigned long)s->crc);
		if (sf < LOW_STACK_BYTES)
			cat(low, sizeof(low), &ll, "%s%s", ll ? "," : "", s->id);
	}
	agent_wasm_pool_info(&total, &free_b, &high);
	agent_sendf(a,
		    "STATUS_OK modules=\"%s\" low_stack=\"%s\" wamr_total=%lu wamr_free=%lu "
		    "wamr_used=%lu wamr_highmark=%lu rx_overflow=%lu rx_too_long=%lu rx_junk=%lu led_toggles=%lu",
		    ml ? mods : "none", ll ? low : "none", (unsigned long)total,
		    (unsigned long)free_b, (unsigned long)(total - free_b), (unsigned long)high,
		    (unsigned long)a->rx.overflow, (unsigned long)a->rx.too_long,
		    (unsigned long)a->rx.junk, (unsigned long)a->led_toggles);
}

/* " reset=<cause>[ last_fault="<what>"]" when the board did not start from a plain power-on */
static void reset_tokens(struct agent *a, char *out, size_t cap, bool detail)
{
	const struct agent_config *c = &a->cfg;
	char esc[160];

	out[0] = '\0';
	if (!c->reset_cause)
		return;
	if (detail && c->last_fault) {
		agent_escape(esc, sizeof(esc), c->last_fault, strlen(c->last_fault));
		snprintf(out, cap, " reset=%s last_fault=\"%s\"", c->reset_cause, esc);
	} else {
		snprintf(out, cap, " reset=%s", c->reset_cause);
	}
}

void agent_cmd_info(struct agent *a, const char *params)
{
	const struct agent_config *c = &a->cfg;
	uint32_t total, free_b, high;
	char baud[128] = "", sig[120], reset[200] = "";
	size_t bl = 0;

	(void)params;
	agent_wasm_pool_info(&total, &free_b, &high);
	if (c->baud)
		bl = (size_t)snprintf(baud, sizeof(baud), " baud=%lu", (unsigned long)c->baud);
	if (bl < sizeof(baud))
		agent_baud_info(a, baud + bl, sizeof(baud) - bl);
	agent_sig_info(a, sig, sizeof(sig));
	reset_tokens(a, reset, sizeof(reset), true);
	agent_sendf(a,
		    "INFO_OK proto=2 board=%s fw=%s wamr=%s aot_arch=%s aot_cpu=%s aot_abi=%s "
		    "aot_version=%d slots=%u max_module=%lu pool_total=%lu pool_free=%lu chunk_max=%lu "
		    "line_max=%d%s stop=%s natives=\"%s\" framed=1 compress=deflate seq=1 led_toggles=%lu aot_features=%s "
		    "aot_bounds_checks=%s%s%s identity=%s",
		    c->board, c->fw_build, AGENT_FW_WAMR, c->aot_arch, c->aot_cpu, c->aot_abi,
		    AGENT_AOT_VERSION, c->slots, (unsigned long)free_b, (unsigned long)total,
		    (unsigned long)free_b, (unsigned long)c->chunk_max, AGENT_LINE_MAX, baud,
		    c->stop_mode, agent_wasm_natives(), (unsigned long)a->led_toggles, c->aot_features,
		    c->aot_hw_bounds ? "optional" : "required", sig, reset, a->ident.info);
}

void agent_cmd_hello(struct agent *a, const char *params)
{
	char reset[40];

	(void)params;
	reset_tokens(a, reset, sizeof(reset), false);
	agent_sendf(a, "HELLO device_id=%s rtos=%s runtime=WAMR fw_version=%s proto=2%s",
		    a->cfg.board, a->cfg.rtos, a->cfg.fw_version, reset);
}
