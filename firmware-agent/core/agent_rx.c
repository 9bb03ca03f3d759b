/*
 * RX side: bytes from the ISR / reader thread become queued lines or payload bytes.
 * agent_rx() runs in RX context; everything else here runs in command context inside
 * rx_lock()/rx_unlock(), so agent_rx() itself needs no atomics.
 */
#include <string.h>

#include "agent_priv.h"

#define RXL_TIMEOUT 0x04u

static void rx_lock(struct agent *a)
{
	if (a->ops->rx_lock)
		a->ops->rx_lock(a->ctx);
}

static void rx_unlock(struct agent *a)
{
	if (a->ops->rx_unlock)
		a->ops->rx_unlock(a->ctx);
}

static void wake(struct agent *a)
{
	if (a->ops->wake)
		a->ops->wake(a->ctx);
}

long agent_chunk_line_size(const char *line, size_t len)
{
	char tmp[AGENT_LINE_MAX + 1];
	struct agent_param p;
	uint32_t n;

	if (len < 6 || memcmp(line, "CHUNK ", 6) != 0 || len > AGENT_LINE_MAX)
		return -1;
	memcpy(tmp, line, len);
	tmp[len] = '\0';
	if (!agent_param_get(tmp + 6, "size", &p) || !agent_param_u32(&p, &n))
		return -1;
	return (long)n;
}

/* A CHUNK line just completed: its payload follows at once, so switch to binary mode here. */
static void rx_start_chunk(struct agent_rx *rx, long size)
{
	rx->bin_active = true;
	rx->bin_len = (uint32_t)size;
	rx->bin_got = 0;
	if (rx->chunk_dst && (uint32_t)size <= rx->chunk_cap && (uint32_t)size <= rx->chunk_max) {
		rx->bin_dst = rx->chunk_dst;
		rx->bin_discard = false;
	} else {
		rx->bin_dst = NULL;
		rx->bin_discard = true;
	}
	rx->chunk_dst = NULL; /* one payload per arming (stop-and-wait) */
}

static void rx_line_done(struct agent *a)
{
	struct agent_rx *rx = &a->rx;
	struct agent_rx_line *e;
	long chunk = -1;
	uint8_t flags = 0;

	if (rx->cur_too_long) {
		rx->too_long++;
		flags = AGENT_RXL_TOO_LONG;
	} else if (rx->cur_len == 0) {
		return; /* blank line or the second half of \r\n */
	} else {
		chunk = agent_chunk_line_size(rx->cur, rx->cur_len);
		/* the announced bytes are always consumed, stored only if they fit the upload */
		if (chunk > 0) {
			flags = AGENT_RXL_CHUNK;
			if (rx->chunk_dst && (uint32_t)chunk <= rx->chunk_cap &&
			    (uint32_t)chunk <= rx->chunk_max)
				flags |= AGENT_RXL_STORED;
		}
	}
	if (rx->q_count == AGENT_RXQ_DEPTH) {
		rx->overflow++;
	} else {
		e = &rx->q[(rx->q_head + rx->q_count) % AGENT_RXQ_DEPTH];
		e->flags = flags;
		e->len = (flags & AGENT_RXL_TOO_LONG) ? 0 : rx->cur_len;
		memcpy(e->text, rx->cur, e->len);
		e->text[e->len] = '\0';
		rx->q_count++;
	}
	if (chunk > 0)
		rx_start_chunk(rx, chunk); /* even if the line was dropped: swallow its bytes */
	rx->cur_len = 0;
	rx->cur_too_long = false;
	wake(a);
}

void agent_rx(struct agent *a, const uint8_t *data, size_t len)
{
	struct agent_rx *rx = &a->rx;
	size_t i = 0;

	while (i < len) {
		if (rx->bin_active) {
			uint32_t want = rx->bin_len - rx->bin_got;
			uint32_t n = (len - i) < want ? (uint32_t)(len - i) : want;
			if (!rx->bin_discard)
				memcpy(rx->bin_dst + rx->bin_got, data + i, n);
			rx->bin_got += n;
			i += n;
			if (rx->bin_got == rx->bin_len) {
				rx->bin_active = false;
				wake(a);
			}
			continue;
		}
		uint8_t c = data[i++];
		if (c == '\n' || c == '\r') {
			rx_line_done(a);
		} else if (rx->cur_len < AGENT_LINE_MAX) {
			rx->cur[rx->cur_len++] = (char)c;
		} else {
			rx->cur_too_long = true;
		}
	}
}

bool agent_rx_pop(struct agent *a, struct agent_rx_line *out)
{
	struct agent_rx *rx = &a->rx;
	bool ok = false;

	rx_lock(a);
	if (rx->q_count > 0) {
		struct agent_rx_line *e = &rx->q[rx->q_head];
		/* the payload of the newest CHUNK line is still arriving: wait for it */
		bool waiting = (e->flags & AGENT_RXL_CHUNK) && rx->bin_active && rx->q_count == 1 &&
			       !(e->flags & RXL_TIMEOUT);
		if (!waiting) {
			*out = *e;
			out->flags &= (uint8_t)~RXL_TIMEOUT;
			if (e->flags & RXL_TIMEOUT)
				out->flags |= AGENT_RXL_INCOMPLETE;
			rx->q_head = (rx->q_head + 1) % AGENT_RXQ_DEPTH;
			rx->q_count--;
			ok = true;
		}
	}
	rx_unlock(a);
	return ok;
}

bool agent_chunk_pending(struct agent *a)
{
	struct agent_rx *rx = &a->rx;
	bool pending;

	rx_lock(a);
	pending = rx->q_count == 1 && (rx->q[rx->q_head].flags & AGENT_RXL_CHUNK) &&
		  rx->bin_active;
	rx_unlock(a);
	return pending;
}

void agent_rx_arm_binary(struct agent *a, uint8_t *dst, uint32_t len)
{
	rx_lock(a);
	a->rx.bin_dst = dst;
	a->rx.bin_len = len;
	a->rx.bin_got = 0;
	a->rx.bin_discard = false;
	a->rx.bin_active = true;
	rx_unlock(a);
}

void agent_rx_cancel_binary(struct agent *a)
{
	struct agent_rx *rx = &a->rx;

	rx_lock(a);
	if (rx->bin_active && rx->q_count > 0) {
		struct agent_rx_line *last = &rx->q[(rx->q_head + rx->q_count - 1) % AGENT_RXQ_DEPTH];
		if (last->flags & AGENT_RXL_CHUNK)
			last->flags |= RXL_TIMEOUT;
	}
	rx->bin_active = false;
	rx->bin_dst = NULL;
	rx->chunk_dst = NULL;
	rx_unlock(a);
}

uint32_t agent_rx_binary_progress(struct agent *a, bool *done)
{
	uint32_t got;

	rx_lock(a);
	got = a->rx.bin_got;
	*done = !a->rx.bin_active;
	rx_unlock(a);
	return got;
}

void agent_rx_arm_chunks(struct agent *a, uint8_t *dst, uint32_t cap)
{
	rx_lock(a);
	a->rx.chunk_dst = dst;
	a->rx.chunk_cap = cap;
	rx_unlock(a);
}

void agent_rx_reset(struct agent *a)
{
	a->rx.cur_len = 0;
	a->rx.cur_too_long = false;
}
