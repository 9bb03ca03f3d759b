/* Fake port: lines are captured, time only moves when a test says so, jobs run on demand. */
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"

static void f_write(void *ctx, const char *line, size_t len)
{
	struct fake_port *f = ctx;
	char *dst;

	if (f->count == FAKE_LINES)
		return;
	dst = f->lines[(f->head + f->count) % FAKE_LINES];
	if (len && line[len - 1] == '\n')
		len--;
	if (len >= AGENT_TX_MAX)
		len = AGENT_TX_MAX - 1;
	memcpy(dst, line, len);
	dst[len] = '\0';
	f->count++;
}

static uint32_t f_now(void *ctx) { return ((struct fake_port *)ctx)->now; }
static void f_sleep(void *ctx, uint32_t ms) { ((struct fake_port *)ctx)->now += ms; }
static void f_led(void *ctx, int on)
{
	(void)on;
	((struct fake_port *)ctx)->led_sets++;
}
static void f_code_sync(void *ctx) { ((struct fake_port *)ctx)->code_syncs++; }
static void f_job_start(void *ctx, unsigned slot) { ((struct fake_port *)ctx)->pending_job = (int)slot; }
static int f_job_abort(void *ctx, unsigned slot)
{
	struct fake_port *f = ctx;
	(void)slot;
	f->aborts++;
	if (f->abort_rc == 0)
		f->pending_job = -1; /* the job never gets to run */
	return f->abort_rc;
}

static void f_trace(void *ctx, const char *line, size_t len)
{
	struct fake_port *f = ctx;

	if (f->ncmds == sizeof(f->cmds) / sizeof(f->cmds[0])) {
		f->cmd_lost++;
		return;
	}
	memcpy(f->cmds[f->ncmds], line, len);
	f->cmds[f->ncmds++][len] = '\0';
}

static const struct agent_port_ops fake_ops = {
	.trace_command = f_trace,
	.write = f_write,
	.now_ms = f_now,
	.sleep_ms = f_sleep,
	.led_set = f_led,
	.job_start = f_job_start,
	.job_abort = f_job_abort,
	.code_sync = f_code_sync,
};

int fake_init(struct fake_port *f, const struct agent_config *cfg)
{
	struct agent_config c = *cfg;

	memset(f, 0, sizeof(*f));
	f->pending_job = -1;
	f->now = 1000;
	if (!c.pool_size)
		c.pool_size = 512 * 1024;
	c.pool = aligned_alloc(8, c.pool_size);
	return agent_init(&f->agent, &c, &fake_ops, f);
}

void fake_deinit(struct fake_port *f)
{
	void *pool = f->agent.cfg.pool;
	agent_deinit(&f->agent);
	free(pool);
}

void fake_rx_bytes(struct fake_port *f, const void *data, size_t len)
{
	agent_rx(&f->agent, data, len);
	agent_poll(&f->agent);
}

void fake_rx(struct fake_port *f, const char *text) { fake_rx_bytes(f, text, strlen(text)); }

void fake_advance(struct fake_port *f, uint32_t ms)
{
	while (ms > 0) {
		uint32_t step = ms < 10 ? ms : 10;
		f->now += step;
		ms -= step;
		agent_poll(&f->agent);
	}
}

int fake_run_job(struct fake_port *f)
{
	int slot = f->pending_job;

	if (slot < 0)
		return 0;
	f->pending_job = -1;
	agent_job_run(&f->agent, (unsigned)slot);
	return 1;
}

const char *fake_line(struct fake_port *f)
{
	const char *l;

	if (!f->count)
		return NULL;
	l = f->lines[f->head];
	f->head = (f->head + 1) % FAKE_LINES;
	f->count--;
	return l;
}

void fake_clear(struct fake_port *f)
{
	f->head = 0;
	f->count = 0;
}

uint32_t agent_crc32(uint32_t crc, const uint8_t *buf, size_t len);

size_t fake_frame(uint8_t *out, size_t cap, uint32_t off, const uint8_t *data, size_t n,
		  uint32_t crc_xor)
{
	size_t body_n = 5 + n + 4, o = 0, code_at;
	uint8_t *body = malloc(body_n);
	uint32_t crc;

	if (!body || cap < 3 + body_n + body_n / 254 + 2) {
		free(body);
		return 0;
	}
	body[0] = AGENT_FRAME_CHUNK;
	for (unsigned i = 0; i < 4; i++)
		body[1 + i] = (uint8_t)(off >> (8 * i));
	memcpy(body + 5, data, n);
	crc = agent_crc32(0, body, 5 + n) ^ crc_xor;
	for (unsigned i = 0; i < 4; i++)
		body[5 + n + i] = (uint8_t)(crc >> (8 * i));
	out[o++] = AGENT_FRAME_MARK;
	/* COBS (Cheshire & Baker), then every encoded byte XOR '\n' */
	code_at = o++;
	for (size_t i = 0; i < body_n; i++) {
		if (body[i] == 0) {
			out[code_at] = (uint8_t)(o - code_at);
			code_at = o++;
		} else {
			out[o++] = body[i];
			if (o - code_at == 0xFF && i + 1 < body_n) {
				out[code_at] = 0xFF;
				code_at = o++;
			}
		}
	}
	out[code_at] = (uint8_t)(o - code_at);
	for (size_t i = 1; i < o; i++)
		out[i] ^= (uint8_t)'\n';
	out[o++] = AGENT_FRAME_END;
	out[o++] = '\n';
	free(body);
	return o;
}
