/* Core helpers: CRC-32, line output, escaping and key=value parameter parsing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"

uint32_t agent_crc32(uint32_t crc, const uint8_t *buf, size_t len)
{
	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= buf[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

void agent_lock(struct agent *a)
{
	if (a->ops->lock)
		a->ops->lock(a->ctx);
}

void agent_unlock(struct agent *a)
{
	if (a->ops->unlock)
		a->ops->unlock(a->ctx);
}

uint32_t agent_now(struct agent *a) { return a->ops->now_ms(a->ctx); }

/*
 * Which lines answer the command being executed (and so echo its seq=): all but module output
 * (LOG), HELLO and the RESULT that ends a job (status OK, EXCEPTION, STOPPED, NO_EXEC_ENV, and
 * NO_FUNC without name=), which is routed by its module_id (docs/PROTOCOL.md "Sequence numbers").
 */
bool agent_reply_tagged(const char *line)
{
	static const char *const immediate[] = { "NO_MODULE", "BUSY", "BAD_PARAMS", "NO_ENTRYPOINT",
						 "NO_MEM" };
	const char *st;

	if (!strncmp(line, "LOG ", 4) || !strncmp(line, "HELLO ", 6))
		return false;
	if (strncmp(line, "RESULT status=", 14) != 0)
		return true;
	st = line + 14;
	for (size_t i = 0; i < sizeof(immediate) / sizeof(immediate[0]); i++) {
		size_t k = strlen(immediate[i]);
		if (!strncmp(st, immediate[i], k) && (st[k] == ' ' || st[k] == '\0'))
			return true;
	}
	return !strncmp(st, "NO_FUNC ", 8) && strstr(st, " name=") != NULL;
}

void agent_sendf(struct agent *a, const char *fmt, ...)
{
	char buf[AGENT_TX_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2; /* truncated, but the line still ends */
	if (a->reply_tag && agent_reply_tagged(buf)) {
		int m = snprintf(buf + n, sizeof(buf) - 1 - (size_t)n, " seq=%lu",
				 (unsigned long)a->reply_seq);
		if (m > 0 && (size_t)(n + m) < sizeof(buf) - 1)
			n += m;
	}
	buf[n++] = '\n';
	a->ops->write(a->ctx, buf, (size_t)n);
}

void agent_logf(struct agent *a, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!a->ops->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	a->ops->log(a->ctx, buf);
}

size_t agent_escape(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char tmp[4];
		size_t n;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c > 0x7e) {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 15];
			n = 4;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n >= cap)
			break; /* never split an escape sequence */
		memcpy(dst + o, tmp, n);
		o += n;
	}
	dst[o] = '\0';
	return o;
}

/* Walks `key=value` tokens separated by spaces; a value starting with '"' runs to the next '"'. */
bool agent_param_get(const char *params, const char *key, struct agent_param *out)
{
	size_t klen = strlen(key);
	const char *p = params;

	while (*p) {
		const char *tok, *eq, *v;
		size_t vlen;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		tok = p;
		while (*p && *p != ' ' && *p != '=')
			p++;
		eq = p;
		if (*p != '=') { /* bare word: skip it */
			while (*p && *p != ' ')
				p++;
			continue;
		}
		v = p + 1;
		if (*v == '"') {
			const char *end = strchr(v + 1, '"');
			v++;
			vlen = end ? (size_t)(end - v) : strlen(v);
			p = end ? end + 1 : v + vlen;
		} else {
			p = v;
			while (*p && *p != ' ')
				p++;
			vlen = (size_t)(p - v);
		}
		if ((size_t)(eq - tok) == klen && memcmp(tok, key, klen) == 0) {
			out->val = v;
			out->len = vlen;
			return true;
		}
	}
	return false;
}

bool agent_param_copy(const struct agent_param *p, char *dst, size_t cap)
{
	if (p->len + 1 > cap)
		return false;
	memcpy(dst, p->val, p->len);
	dst[p->len] = '\0';
	return true;
}

bool agent_ident_valid(const char *s, size_t max)
{
	size_t n = 0;

	if (!*s)
		return false;
	for (; *s; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (n >= max || c <= ' ' || c > '~' || c == '"' || c == '\'' || c == ',' || c == ':' ||
		    c == '=' || c == '\\')
			return false;
	}
	return true;
}

bool agent_param_u32(const struct agent_param *p, uint32_t *out)
{
	uint64_t v = 0;

	if (p->len == 0 || p->len > 10)
		return false;
	for (size_t i = 0; i < p->len; i++) {
		if (p->val[i] < '0' || p->val[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p->val[i] - '0');
	}
	if (v > 0xFFFFFFFFu)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool agent_param_hex(const struct agent_param *p, uint32_t *out)
{
	const char *s = p->val;
	size_t n = p->len;
	uint32_t v = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

void agent_hex_encode(char *dst, const uint8_t *src, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 15];
	}
	dst[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool agent_hex_decode(uint8_t *dst, const char *src, size_t len, size_t n)
{
	if (len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(src[2 * i]), lo = hex_digit(src[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		dst[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}
