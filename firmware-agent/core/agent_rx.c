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

/* Puts one completed entry in the queue (or counts the overflow). */
static struct agent_rx_line *rx_queue(struct agent *a)
{
	struct agent_rx *rx = &a->rx;
	struct agent_rx_line *e;

	if (rx->q_count == AGENT_RXQ_DEPTH) {
		rx->overflow++;
		return NULL;
	}
	e = &rx->q[(rx->q_head + rx->q_count) % AGENT_RXQ_DEPTH];
	e->len = 0;
	e->flags = 0;
	e->text[0] = '\0';
	e->f_off = e->f_len = e->f_crc = 0;
	rx->q_count++;
	return e;
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* One decoded frame byte: kind, offset (4 bytes LE), then data followed by its CRC (4 bytes LE).
 * The last 4 bytes seen are held back in fr_tail, so only data reaches the destination. */
static void fr_out(struct agent_rx *rx, uint8_t b)
{
	uint32_t p = rx->fr_pos++;
	uint32_t q;

	if (p < 5) {
		rx->fr_hdr[p] = b;
		if (p == 0 && b != AGENT_FRAME_CHUNK)
			rx->fr_bad = true;
		if (p == 4 && le32(rx->fr_hdr + 1) != rx->fr_base)
			rx->fr_dst = NULL; /* not the acked offset: decode, never store */
		return;
	}
	q = p - 5;
	if (q >= 4) {
		if (q - 4 >= rx->fr_cap)
			rx->fr_over = true;
		else if (rx->fr_dst)
			rx->fr_dst[q - 4] = rx->fr_tail[q % 4];
	}
	rx->fr_tail[q % 4] = b;
}

/* One byte of a frame line after its mark: COBS with every byte XORed with '\n' (no '\n' inside). */
static void fr_byte(struct agent_rx *rx, uint8_t r)
{
	uint8_t c = r ^ (uint8_t)'\n'; /* never 0: r is not '\n' */

	if (rx->fr_left == 0) {
		if (rx->fr_started && rx->fr_zero)
			fr_out(rx, 0);
		rx->fr_started = true;
		rx->fr_left = (uint16_t)(c - 1);
		rx->fr_zero = c != 0xFF;
	} else {
		fr_out(rx, c);
		rx->fr_left--;
	}
}

/* A frame line starts: it takes the armed destination (one frame per arming, stop-and-wait). */
static void fr_begin(struct agent_rx *rx)
{
	rx->fr_dst = rx->chunk_dst;
	rx->fr_cap = rx->chunk_dst ? rx->chunk_cap : 0;
	rx->fr_base = rx->chunk_off;
	rx->chunk_dst = NULL;
	rx->fr_pos = 0;
	rx->fr_left = 0;
	rx->fr_zero = rx->fr_started = rx->fr_bad = rx->fr_over = rx->fr_held_ok = false;
}

static void fr_done(struct agent *a)
{
	struct agent_rx *rx = &a->rx;
	struct agent_rx_line *e = rx_queue(a);
	uint32_t n;

	if (!e)
		return;
	e->flags = AGENT_RXL_FRAME;
	if (rx->fr_bad || rx->fr_left != 0 || rx->fr_pos < 10 || !rx->fr_held_ok ||
	    rx->fr_held != AGENT_FRAME_END) {
		e->flags |= AGENT_RXL_FRAME_BAD;
		return;
	}
	n = rx->fr_pos - 9;
	e->f_off = le32(rx->fr_hdr + 1);
	e->f_len = n;
	for (unsigned i = 0; i < 4; i++)
		e->f_crc |= (uint32_t)rx->fr_tail[(n + i) % 4] << (8 * i);
	if (rx->fr_dst && !rx->fr_over)
		e->flags |= AGENT_RXL_STORED;
}

static void rx_line_done(struct agent *a)
{
	struct agent_rx *rx = &a->rx;
	struct agent_rx_line *e;
	long chunk = -1;
	uint8_t flags = 0;
	uint8_t kind = rx->cur_kind;

	rx->cur_kind = RXK_TEXT;
	rx->cur_cr = false;
	if (kind != RXK_TEXT) {
		if (kind == RXK_FRAME)
			fr_done(a);
		else
			rx->junk++; /* never executed, never answered */
		rx->fr_dst = NULL;
		rx->cur_len = 0;
		rx->cur_too_long = false;
		wake(a);
		return;
	}
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
	if ((e = rx_queue(a))) {
		e->flags = flags;
		e->len = (flags & AGENT_RXL_TOO_LONG) ? 0 : rx->cur_len;
		memcpy(e->text, rx->cur, e->len);
		e->text[e->len] = '\0';
	}
	if (chunk > 0)
		rx_start_chunk(rx, chunk); /* even if the line was dropped: swallow its bytes */
	rx->cur_len = 0;
	rx->cur_too_long = false;
	wake(a);
}

/*
 * Line assembly. A line ends at '\n' only ("\r\n" works: a '\r' right before the '\n' is
 * dropped). A line whose first byte is AGENT_FRAME_MARK is a frame, decoded on the fly; a line
 * with any other byte outside 0x20..0x7e (a lone '\r' included) is junk up to its '\n'. Only
 * text lines reach the dispatcher, and no timeout ever turns the rest of a frame into text: a
 * stalled frame stays a frame until its '\n'. A frame's last byte is AGENT_FRAME_END, so any
 * tail of a frame (its start lost, or the board reset in the middle) is junk too.
 */
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
		if (c == '\n') {
			rx_line_done(a);
		} else if (rx->cur_kind == RXK_FRAME) {
			if (rx->fr_held_ok)
				fr_byte(rx, rx->fr_held);
			rx->fr_held = c;
			rx->fr_held_ok = true;
		} else if (rx->cur_kind == RXK_JUNK) {
			continue;
		} else if (rx->cur_cr || c == '\r') {
			if (rx->cur_cr)
				rx->cur_kind = RXK_JUNK; /* a '\r' not followed by '\n' */
			rx->cur_cr = true;
		} else if (c == AGENT_FRAME_MARK && rx->cur_len == 0 && !rx->cur_too_long) {
			rx->cur_kind = RXK_FRAME;
			fr_begin(rx);
		} else if (c < 0x20 || c > 0x7e) {
			rx->cur_kind = RXK_JUNK;
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

void agent_rx_arm_chunks(struct agent *a, uint8_t *dst, uint32_t cap, uint32_t off)
{
	rx_lock(a);
	a->rx.chunk_dst = dst;
	a->rx.chunk_cap = cap;
	a->rx.chunk_off = off;
	if (!dst)
		a->rx.fr_dst = NULL; /* a frame being received is decoded but no longer stored */
	rx_unlock(a);
}

/* A new connection (called under the port's RX lock): nothing of the old one carries over, so
 * its first byte starts a line, never continues a payload or a frame. */
void agent_rx_reset(struct agent *a)
{
	struct agent_rx *rx = &a->rx;

	rx->cur_len = 0;
	rx->cur_too_long = false;
	rx->cur_kind = RXK_TEXT;
	rx->cur_cr = false;
	rx->fr_dst = NULL;
	rx->bin_active = false;
	rx->bin_dst = NULL;
	rx->q_count = 0; /* lines of the old connection are not answered on the new one */
	rx->link_reset = true; /* the command side ends the transfer in progress */
}

bool agent_rx_take_reset(struct agent *a)
{
	bool r;

	rx_lock(a);
	r = a->rx.link_reset;
	a->rx.link_reset = false;
	rx_unlock(a);
	return r;
}
