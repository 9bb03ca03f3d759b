/* Core helpers: CRC-32, line output, escaping and key=value parameter parsing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"

/* CRC-32 (zlib, reflected 0xEDB88320) of every byte value: one lookup per byte instead of
 * eight shift/xor steps (a framed 64 KiB upload is checked twice, per frame and whole; bit by
 * bit that took ~0.9 ms per pass on the simulated board). 1 KiB of flash. */
static const uint32_t crc_table[256] = {
	0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
	0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
	0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
	0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
	0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
	0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
	0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
	0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
	0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
	0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
	0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
	0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
	0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
	0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
	0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
	0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
	0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
	0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
	0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
	0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
	0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
	0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
	0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
	0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
	0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
	0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
	0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
	0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
	0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
	0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
	0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
	0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
	0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
	0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
	0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
	0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
	0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
	0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
	0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
	0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
	0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
	0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
	0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t agent_crc32(uint32_t crc, const uint8_t *buf, size_t len)
{
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = (crc >> 8) ^ crc_table[(crc ^ buf[i]) & 0xFFu];
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
