/*
 * Negotiated baud switching (docs/PROTOCOL.md "Baud switching"): BAUD rate=<n>.
 *
 * The agent answers BAUD_OK at the old speed, and the port reprograms its UART right after that
 * line's last bit has left. The new speed is confirmed by the first command line that arrives
 * at it; if none arrives within `baud_revert_ms`, the agent goes back to the old speed by itself,
 * so a failed switch never leaves the board unreachable. Ports opt in with ops->set_baud and
 * cfg.baud_rates.
 */
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"

#define BAUD_REVERT_DEFAULT_MS 1000

static uint32_t revert_ms(const struct agent *a)
{
	return a->cfg.baud_revert_ms ? a->cfg.baud_revert_ms : BAUD_REVERT_DEFAULT_MS;
}

static bool rate_allowed(const struct agent *a, uint32_t rate)
{
	for (unsigned i = 0; i < a->cfg.baud_rate_count; i++)
		if (a->cfg.baud_rates[i] == rate)
			return true;
	return false;
}

bool agent_baud_supported(const struct agent *a)
{
	return a->ops->set_baud && a->cfg.baud_rates && a->cfg.baud_rate_count && a->cfg.baud;
}

size_t agent_baud_info(const struct agent *a, char *buf, size_t cap)
{
	size_t len = 0;

	if (cap)
		buf[0] = '\0';
	if (!agent_baud_supported(a))
		return 0;
	for (unsigned i = 0; i < a->cfg.baud_rate_count && len < cap; i++) {
		int n = snprintf(buf + len, cap - len, "%s%lu", i ? "," : " baud_rates=",
				 (unsigned long)a->cfg.baud_rates[i]);
		if (n < 0 || (size_t)n >= cap - len) {
			buf[len] = '\0'; /* drop a rate that does not fit rather than cut one */
			break;
		}
		len += (size_t)n;
	}
	return len;
}

void agent_cmd_baud(struct agent *a, const char *params)
{
	struct agent_param p;
	uint32_t rate, old = a->cfg.baud;
	int rc;

	if (!agent_baud_supported(a)) {
		agent_sendf(a, "ERROR code=UNKNOWN_COMMAND");
		return;
	}
	if (!agent_param_get(params, "rate", &p) || !agent_param_u32(&p, &rate) || rate == 0) {
		agent_sendf(a, "BAUD_ERR code=BAD_PARAMS");
		return;
	}
	if (!rate_allowed(a, rate)) {
		agent_sendf(a, "BAUD_ERR code=BAD_RATE");
		return;
	}
	if (a->up.state != UP_NONE) {
		agent_sendf(a, "BAUD_ERR code=BUSY");
		return;
	}
	if (rate == old) {
		/* nothing to switch, nothing to confirm */
		agent_sendf(a, "BAUD_OK rate=%lu revert_ms=%lu", (unsigned long)rate,
			    (unsigned long)revert_ms(a));
		return;
	}
	rc = a->ops->set_baud(a->ctx, rate, true);
	if (rc != 0) {
		agent_sendf(a, "BAUD_ERR code=FAILED");
		return;
	}
	/* the port switches once this line has left, at the old speed */
	agent_sendf(a, "BAUD_OK rate=%lu revert_ms=%lu", (unsigned long)rate,
		    (unsigned long)revert_ms(a));
	a->baud_prev = old;
	a->cfg.baud = rate;
	a->baud_pending = true;
	a->baud_deadline = agent_now(a) + revert_ms(a);
}

void agent_baud_confirm(struct agent *a)
{
	a->baud_pending = false;
}

uint32_t agent_baud_poll(struct agent *a)
{
	uint32_t was = a->cfg.baud;
	int32_t left;

	if (!a->baud_pending)
		return UINT32_MAX;
	left = -agent_time_diff(agent_now(a), a->baud_deadline);
	if (left > 0)
		return (uint32_t)left;
	a->baud_pending = false;
	if (a->ops->set_baud(a->ctx, a->baud_prev, false) == 0)
		a->cfg.baud = a->baud_prev;
	agent_logf(a, "baud: nothing valid arrived at %lu within %lu ms: back to %lu",
		   (unsigned long)was, (unsigned long)revert_ms(a),
		   (unsigned long)a->baud_prev);
	return UINT32_MAX;
}
