/*
 * Signed modules (docs/PROTOCOL.md "Signed modules", docs/SECURITY.md): the SIG and MINVER
 * commands, the signed message, Ed25519 verification (Monocypher, third_party/monocypher) and the
 * minimum version per module id (anti-rollback). Verification runs after the last byte of an
 * upload arrived and its CRC passed, before WAMR sees any of it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_priv.h"
#include "monocypher-ed25519.h"

#define SIG_DOMAIN "wasmbed-module-signature-v1"

static const char *mode_name(enum agent_sig_mode m)
{
	return m == AGENT_SIG_REQUIRED ? "required" : "optional";
}

/* Exactly 2n hex digits into n bytes. */
static bool hex_get(const struct agent_param *p, uint8_t *dst, size_t n)
{
	return agent_hex_decode(dst, p->val, p->len, n);
}

/* Key id: the first 8 bytes of SHA-512(public key). */
static void key_id(const uint8_t pk[32], uint8_t id[8])
{
	uint8_t h[64];

	crypto_sha512(h, pk, 32);
	memcpy(id, h, 8);
}

static void key_ids(struct agent *a, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < a->cfg.trusted_keys_n && len + 18 < cap; i++) {
		uint8_t id[8];

		key_id(a->cfg.trusted_keys[i], id);
		if (len)
			buf[len++] = ',';
		agent_hex_encode(buf + len, id, 8);
		len += 16;
	}
	if (!len)
		snprintf(buf, cap, "none");
}

void agent_sig_info(struct agent *a, char *buf, size_t cap)
{
	char ids[AGENT_TRUSTED_KEYS_MAX * 17 + 8];

	buf[0] = '\0';
	if (a->cfg.sig_mode == AGENT_SIG_OFF)
		return;
	key_ids(a, ids, sizeof(ids));
	snprintf(buf, cap, " sig=%s sig_keys=%s", mode_name(a->cfg.sig_mode), ids);
}

static uint32_t *floor_find(struct agent *a, const char *id, bool add)
{
	for (unsigned i = 0; i < AGENT_FLOORS_MAX; i++)
		if (a->floors[i].id[0] && !strcmp(a->floors[i].id, id))
			return &a->floors[i].ver;
	if (!add)
		return NULL;
	for (unsigned i = 0; i < AGENT_FLOORS_MAX; i++) {
		if (!a->floors[i].id[0]) {
			strcpy(a->floors[i].id, id);
			a->floors[i].ver = 0;
			return &a->floors[i].ver;
		}
	}
	return NULL;
}

static uint32_t floor_of(struct agent *a, const char *id)
{
	uint32_t *v = floor_find(a, id, false);
	return v ? *v : 0;
}

/* Raise the floor of `id` to `ver` (never lowers). 0 or -ENOSPC. */
static int floor_raise(struct agent *a, const char *id, uint32_t ver, bool save)
{
	uint32_t *v;

	if (ver == 0 || ver <= floor_of(a, id))
		return 0;
	if (!(v = floor_find(a, id, true)))
		return -ENOSPC;
	*v = ver;
	if (save && a->ops->floor_saved)
		a->ops->floor_saved(a->ctx, id, ver);
	return 0;
}

int agent_sig_floor_restore(struct agent *a, const char *id, uint32_t ver)
{
	if (!agent_ident_valid(id, AGENT_ID_MAX))
		return -EINVAL;
	return floor_raise(a, id, ver, false);
}

void agent_sig_take(struct agent *a, struct agent_slot *s, bool resume)
{
	struct agent_sig *g = &a->sig;

	if (s && g->present && g->slot < 0 && !strcmp(g->id, s->id))
		g->slot = (int)s->index; /* this upload is signed by it */
	else if (!(s && resume && g->present && g->slot == (int)s->index))
		memset(g, 0, sizeof(*g)); /* the upload is unsigned (a resume keeps its own) */
}

/* The signed message: a fixed text naming everything the signature binds (see PROTOCOL.md). */
static size_t sig_message(struct agent *a, const struct agent_slot *s, char *msg, size_t cap)
{
	const struct agent_config *c = &a->cfg;
	bool aot = s->size >= 4 && !memcmp(s->buf, "\0aot", 4);
	char target[160], digest[129];
	uint8_t h[64];
	int n;

	crypto_sha512(h, s->buf, s->size);
	agent_hex_encode(digest, h, sizeof(h));
	if (aot)
		snprintf(target, sizeof(target), "%s/%s/%s/%s/%d", c->aot_arch, c->aot_cpu,
			 c->aot_features, c->aot_abi, AGENT_AOT_VERSION);
	else
		snprintf(target, sizeof(target), "none");
	n = snprintf(msg, cap,
		     SIG_DOMAIN "\nmodule_id=%s\nkind=%s\ntarget=%s\nver=%lu\nsize=%lu\nsha512=%s\n",
		     s->id, aot ? "aot" : "wasm", target, (unsigned long)a->sig.ver,
		     (unsigned long)s->size, digest);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static const char *sig_check(struct agent *a, struct agent_slot *s, char *err, size_t err_len)
{
	const struct agent_sig *g = &a->sig;
	char msg[448], kid[17], ids[AGENT_TRUSTED_KEYS_MAX * 17 + 8];
	const uint8_t *pk = NULL;
	size_t len;
	uint32_t floor, t0;
	bool bad;

	if (a->cfg.sig_mode == AGENT_SIG_OFF)
		return NULL;
	if (!g->present || g->slot != (int)s->index) {
		if (a->cfg.sig_mode == AGENT_SIG_OPTIONAL)
			return NULL;
		snprintf(err, err_len,
			 "unsigned module: this device requires a signature (send SIG before LOAD; "
			 "configure the gateway's signing key)");
		return "BAD_SIGNATURE";
	}
	for (unsigned i = 0; i < a->cfg.trusted_keys_n && !pk; i++) {
		uint8_t id[8];

		key_id(a->cfg.trusted_keys[i], id);
		if (!memcmp(id, g->key_id, sizeof(id)))
			pk = a->cfg.trusted_keys[i];
	}
	if (!pk) {
		agent_hex_encode(kid, g->key_id, 8);
		key_ids(a, ids, sizeof(ids));
		snprintf(err, err_len, "key %s is not trusted by this device (trusted: %s)", kid, ids);
		return "UNTRUSTED_KEY";
	}
	t0 = agent_now(a);
	len = sig_message(a, s, msg, sizeof(msg));
	bad = !len || crypto_ed25519_check(g->sig, pk, (const uint8_t *)msg, len) != 0;
	/* the cost figure of docs/benchmarks.md: SHA-512 of the module + one Ed25519 check */
	agent_logf(a, "signature of %s (%lu bytes) checked in %lu ms: %s", s->id,
		   (unsigned long)s->size, (unsigned long)(agent_now(a) - t0), bad ? "bad" : "good");
	if (bad) {
		snprintf(err, err_len,
			 "signature does not match the module's bytes, id, kind, target or version");
		return "BAD_SIGNATURE";
	}
	floor = floor_of(a, s->id);
	if (g->ver < floor) {
		snprintf(err, err_len, "version %lu of %s is older than this device's minimum %lu",
			 (unsigned long)g->ver, s->id, (unsigned long)floor);
		return "ROLLBACK";
	}
	if (floor_raise(a, s->id, g->ver, true) != 0) {
		snprintf(err, err_len,
			 "no room to remember a minimum version for %s (%d module ids): sign it "
			 "with ver=0 or reuse a module id",
			 s->id, AGENT_FLOORS_MAX);
		return "VERSION_TABLE_FULL";
	}
	return NULL;
}

const char *agent_sig_check(struct agent *a, struct agent_slot *s, char *err, size_t err_len)
{
	const char *code = sig_check(a, s, err, err_len);

	memset(&a->sig, 0, sizeof(a->sig)); /* a signature signs one upload */
	return code;
}

/* SIG module_id=<id> ver=<u32> key=<16 hex> sig=<128 hex>: the signature of the next LOAD. */
void agent_cmd_sig(struct agent *a, const char *params)
{
	struct agent_param p_id, p_ver, p_key, p_sig;
	struct agent_sig sig = { .present = true, .slot = -1 };
	char id[AGENT_ID_MAX + 1];

	if (a->cfg.sig_mode == AGENT_SIG_OFF) {
		agent_sendf(a, "ERROR code=UNKNOWN_COMMAND");
		return;
	}
	if (!agent_param_get(params, "module_id", &p_id) || !agent_param_get(params, "ver", &p_ver) ||
	    !agent_param_get(params, "key", &p_key) || !agent_param_get(params, "sig", &p_sig)) {
		agent_sendf(a, "SIG_ERR code=BAD_PARAMS msg=\"missing module_id/ver/key/sig\"");
		return;
	}
	if (!agent_param_copy(&p_id, id, sizeof(id)) || !agent_ident_valid(id, AGENT_ID_MAX)) {
		agent_sendf(a, "SIG_ERR code=BAD_PARAMS msg=\"bad module_id\"");
		return;
	}
	if (!agent_param_u32(&p_ver, &sig.ver) || !hex_get(&p_key, sig.key_id, 8) ||
	    !hex_get(&p_sig, sig.sig, 64)) {
		agent_sendf(a, "SIG_ERR code=BAD_PARAMS module_id=%s msg=\"ver: decimal, key: 16 hex, "
			       "sig: 128 hex\"",
			    id);
		return;
	}
	strcpy(sig.id, id);
	a->sig = sig; /* replaces an earlier one, bound or not */
	agent_sendf(a, "SIG_OK module_id=%s", id);
}

/* MINVER module_id=<id>[ ver=<u32>]: raise (never lower) and report a module's minimum version. */
void agent_cmd_minver(struct agent *a, const char *params)
{
	struct agent_param p_id, p_ver;
	char id[AGENT_ID_MAX + 1];
	uint32_t ver;

	if (a->cfg.sig_mode == AGENT_SIG_OFF) {
		agent_sendf(a, "ERROR code=UNKNOWN_COMMAND");
		return;
	}
	if (!agent_param_get(params, "module_id", &p_id) || !agent_param_copy(&p_id, id, sizeof(id)) ||
	    !agent_ident_valid(id, AGENT_ID_MAX)) {
		agent_sendf(a, "MINVER_ERR code=BAD_PARAMS msg=\"missing or bad module_id\"");
		return;
	}
	if (agent_param_get(params, "ver", &p_ver)) {
		if (!agent_param_u32(&p_ver, &ver)) {
			agent_sendf(a, "MINVER_ERR code=BAD_PARAMS module_id=%s msg=\"bad ver\"", id);
			return;
		}
		if (floor_raise(a, id, ver, true) != 0) {
			agent_sendf(a, "MINVER_ERR code=VERSION_TABLE_FULL module_id=%s msg=\"%d module "
				       "ids already have a minimum version\"",
				    id, AGENT_FLOORS_MAX);
			return;
		}
	}
	agent_sendf(a, "MINVER_OK module_id=%s ver=%lu", id, (unsigned long)floor_of(a, id));
}
