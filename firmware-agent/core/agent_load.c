/*
 * Module upload: v1 LOAD (raw payload), v2 chunked LOAD with resume, CHUNK, UNLOAD.
 * The bytes of an upload live in its target slot (state SLOT_PARTIAL); `a->up` describes the one
 * transfer in progress. A chunked upload that stalls is parked in its slot for `resume=1`.
 */
#include <stdio.h>
#include <string.h>

#include "agent_wasm.h"

void agent_upload_park(struct agent *a)
{
	if (a->up.state == UP_NONE)
		return;
	agent_rx_cancel_binary(a);
	agent_rx_arm_chunks(a, NULL, 0, 0);
	agent_inflate_end(a); /* a compressed upload restarts from 0: its inflater state is gone */
	memset(&a->up, 0, sizeof(a->up));
}

void agent_upload_fail(struct agent *a)
{
	unsigned slot = a->up.slot;
	bool active = a->up.state != UP_NONE;

	agent_upload_park(a);
	if (active && a->slots[slot].state == SLOT_PARTIAL)
		agent_slot_unload(&a->slots[slot]);
}

static void load_err(struct agent *a, const char *code, const char *msg)
{
	if (msg)
		agent_sendf(a, "LOAD_ERR code=%s msg=\"%s\"", code, msg);
	else
		agent_sendf(a, "LOAD_ERR code=%s", code);
}

/* The Wasmbed AOT target descriptor (tools/wamrc; docs/PROTOCOL.md "AOT target descriptor"). */
#define AOT_SECTION_CUSTOM 100u
#define WASMBED_AOT_TARGET 0x57424154u

struct aot_target {
	struct agent_param arch, cpu, features, abi, bounds_checks, aot_version;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Finds the descriptor among the AOT file's sections; its text, or NULL. */
static const char *aot_descriptor(const uint8_t *buf, uint32_t size, uint32_t *len)
{
	uint32_t p = 8; /* magic, version */

	while (p + 8 <= size) {
		uint32_t type = le32(buf + p), n = le32(buf + p + 4), body = p + 8;

		if (n > size - body)
			return NULL; /* malformed: WAMR's loader says what */
		if (type == AOT_SECTION_CUSTOM && n >= 4 && le32(buf + body) == WASMBED_AOT_TARGET) {
			*len = n - 4;
			return (const char *)buf + body + 4;
		}
		p = (body + n + 3u) & ~3u; /* the loader aligns each section to 4 bytes */
	}
	return NULL;
}

/* The value of `key` in the descriptor's `key=value` lines. */
static bool aot_field(const char *text, uint32_t len, const char *key, struct agent_param *out)
{
	size_t klen = strlen(key);
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		if ((size_t)(eol - p) > klen && !memcmp(p, key, klen) && p[klen] == '=') {
			out->val = p + klen + 1;
			out->len = (size_t)(eol - out->val);
			return true;
		}
		p = eol + 1;
	}
	return false;
}

static bool param_is(const struct agent_param *p, const char *s)
{
	return p->len == strlen(s) && !memcmp(p->val, s, p->len);
}

/*
 * An AOT file must name the target this device runs (arch, cpu, features, abi, AOT version)
 * and, without hardware bounds checks, carry its own. NULL when it may load; else the LOAD_ERR
 * code, with the message (naming both sides) in err.
 */
static const char *aot_target_check(struct agent *a, const uint8_t *buf, uint32_t size,
				    char *err, size_t err_len)
{
	const struct agent_config *c = &a->cfg;
	struct aot_target t;
	char version[12];
	const char *text;
	uint32_t len = 0;

	if (size < 8 || memcmp(buf, "\0aot", 4) != 0)
		return NULL; /* a .wasm module */
	if (!(text = aot_descriptor(buf, size, &len)) || !aot_field(text, len, "arch", &t.arch) ||
	    !aot_field(text, len, "cpu", &t.cpu) || !aot_field(text, len, "features", &t.features) ||
	    !aot_field(text, len, "abi", &t.abi) ||
	    !aot_field(text, len, "bounds_checks", &t.bounds_checks) ||
	    !aot_field(text, len, "aot_version", &t.aot_version)) {
		snprintf(err, err_len,
			 "AOT file without a Wasmbed target descriptor: build it with tools/wamrc for "
			 "%s/%s/%s/%s",
			 c->aot_arch, c->aot_cpu, c->aot_features, c->aot_abi);
		return "AOT_TARGET";
	}
	snprintf(version, sizeof(version), "%d", AGENT_AOT_VERSION);
	if (!param_is(&t.arch, c->aot_arch) || !param_is(&t.cpu, c->aot_cpu) ||
	    !param_is(&t.features, c->aot_features) || !param_is(&t.abi, c->aot_abi) ||
	    !param_is(&t.aot_version, version)) {
		snprintf(err, err_len,
			 "AOT file built for %.*s/%.*s/%.*s/%.*s v%.*s, this device runs "
			 "%s/%s/%s/%s v%s (arch/cpu/features/abi AOT version)",
			 (int)t.arch.len, t.arch.val, (int)t.cpu.len, t.cpu.val,
			 (int)t.features.len, t.features.val, (int)t.abi.len, t.abi.val,
			 (int)t.aot_version.len, t.aot_version.val, c->aot_arch, c->aot_cpu,
			 c->aot_features, c->aot_abi, version);
		return "AOT_TARGET";
	}
	if (!c->aot_hw_bounds && !param_is(&t.bounds_checks, "1")) {
		snprintf(err, err_len,
			 "AOT file built without bounds checks; this device has no hardware bounds "
			 "checks: rebuild with wamrc --bounds-checks=1");
		return "AOT_NO_BOUNDS_CHECKS";
	}
	return NULL;
}

/*
 * The whole module is in the slot: check it and load it; its instantiation (start function)
 * then runs in job context, bounded like a job, and answers LOAD_OK or LOAD_ERR.
 */
static void upload_finish(struct agent *a)
{
	struct agent_slot *s = &a->slots[a->up.slot];
	uint32_t crc = agent_crc32(0, s->buf, s->size);
	char err[200], esc[600];
	const char *code;
	enum agent_wasm_err rc;

	if (crc != s->crc) {
		snprintf(err, sizeof(err), "expected=%08lx got=%08lx", (unsigned long)s->crc,
			 (unsigned long)crc);
		load_err(a, "BAD_CRC", err);
		agent_upload_fail(a);
		return;
	}
	code = agent_sig_check(a, s, err, sizeof(err)); /* before anything parses the bytes */
	if (!code)
		code = aot_target_check(a, s->buf, s->size, err, sizeof(err));
	if (code) {
		agent_escape(esc, sizeof(esc), err, strlen(err));
		load_err(a, code, esc);
		agent_logf(a, "load %s refused: %s", s->id, err);
		agent_upload_fail(a);
		return;
	}
	rc = agent_wasm_load(s, err, sizeof(err));
	if (rc != AGENT_WASM_OK) {
		agent_escape(esc, sizeof(esc), err, strlen(err));
		load_err(a, "LOAD_FAIL", esc);
		agent_logf(a, "load %s failed: %s", s->id, err);
		agent_upload_fail(a); /* the slot is free again */
		return;
	}
	s->warn_victim = a->up.warn_victim;
	strcpy(s->victim, a->up.victim);
	s->load_has_seq = a->up.has_seq; /* LOAD_OK/LOAD_ERR come later: they echo the LOAD's seq */
	s->load_seq = a->up.seq;
	agent_upload_park(a);
	agent_slot_start(s, START_LOAD);
}

/* Slot selection of FW-B1..B3; frees the chosen slot. NULL after answering LOAD_ERR. */
static struct agent_slot *load_pick_slot(struct agent *a, const char *id, bool replace,
					 const char *victim, bool *warn)
{
	struct agent_slot *s = agent_slot_find(a, id);

	*warn = false;
	if (s && s->state == SLOT_STARTING) {
		load_err(a, "BUSY", "module starting");
		return NULL;
	}
	if (s) {
		if (s->state == SLOT_RUNNING && (!replace || agent_slot_kill(s) != 0)) {
			load_err(a, "BUSY", "module running");
			return NULL;
		}
		*warn = victim != NULL && s->state != SLOT_PARTIAL;
	} else if (!(s = agent_slot_free_one(a))) {
		if (!replace) {
			load_err(a, "NO_SLOT", "MAX_MODULES reached");
			return NULL;
		}
		if (!victim) {
			load_err(a, "FULL", "NEED_VICTIM");
			return NULL;
		}
		if (!(s = agent_slot_find(a, victim))) {
			load_err(a, "BAD_VICTIM", "NOT_FOUND");
			return NULL;
		}
		if (s->state == SLOT_STARTING) {
			load_err(a, "BUSY", "module starting");
			return NULL;
		}
		if (s->state == SLOT_RUNNING && agent_slot_kill(s) != 0) {
			load_err(a, "BUSY", "module running");
			return NULL;
		}
	}
	if (s->state != SLOT_FREE)
		agent_slot_unload(s);
	return s;
}

static bool flag_set(const char *params, const char *key)
{
	struct agent_param p;
	return agent_param_get(params, key, &p) && p.len > 0 && p.val[0] == '1';
}

/* The acknowledged offset and the total of the active upload: of the deflate stream when it is
 * compressed, else of the module. */
static uint32_t up_acked(struct agent *a)
{
	return a->up.deflate ? a->up.cacked : a->slots[a->up.slot].acked;
}

static uint32_t up_total(struct agent *a)
{
	return a->up.deflate ? a->up.csize : a->slots[a->up.slot].size;
}

/* Where the chunk at the acked offset was stored: the module buffer, or the inflater's stage. */
static const uint8_t *up_data(struct agent *a)
{
	struct agent_slot *s = &a->slots[a->up.slot];
	return a->up.deflate ? a->up.stage : s->buf + s->acked;
}

static void chunks_rearm(struct agent *a)
{
	struct agent_slot *s = &a->slots[a->up.slot];

	if (a->up.deflate)
		agent_rx_arm_chunks(a, a->up.stage, agent_inflate_chunk(a), a->up.cacked);
	else
		agent_rx_arm_chunks(a, s->buf + s->acked, s->size - s->acked, s->acked);
}

/* Make `s` the active transfer and answer LOAD_READY; csize > 0 asks for a compressed one. */
static void upload_begin(struct agent *a, struct agent_slot *s, bool chunked, bool framed,
			 bool warn, const char *victim, const struct agent_param *crc_text,
			 uint32_t csize)
{
	struct agent_upload *up = &a->up;

	memset(up, 0, sizeof(*up));
	up->state = chunked ? UP_CHUNKED : UP_V1;
	up->framed = chunked && framed;
	up->has_seq = a->reply_tag;
	up->seq = a->reply_seq;
	up->slot = s->index;
	up->warn_victim = warn;
	if (warn)
		strcpy(up->victim, victim);
	if (up->framed && csize) {
		if (agent_inflate_begin(a, csize))
			s->acked = 0; /* a compressed upload always starts over */
		else
			agent_logf(a, "load %s: no room for the inflater, uncompressed", s->id);
	}
	if (up->deflate) {
		up->deadline = agent_now(a) + a->cfg.chunk_wait_ms;
		chunks_rearm(a);
		agent_sendf(a,
			    "LOAD_READY module_id=%s size=%lu crc32=%.*s chunk=%lu offset=0 framed=1 "
			    "compress=deflate csize=%lu",
			    s->id, (unsigned long)s->size, (int)crc_text->len, crc_text->val,
			    (unsigned long)agent_inflate_chunk(a), (unsigned long)csize);
	} else if (chunked) {
		up->deadline = agent_now(a) + a->cfg.chunk_wait_ms;
		chunks_rearm(a);
		agent_sendf(a, "LOAD_READY module_id=%s size=%lu crc32=%.*s chunk=%lu offset=%lu%s",
			    s->id, (unsigned long)s->size, (int)crc_text->len, crc_text->val,
			    (unsigned long)a->cfg.chunk_max, (unsigned long)s->acked,
			    up->framed ? " framed=1" : "");
	} else {
		up->deadline = agent_now(a) + a->cfg.load_timeout_ms;
		agent_rx_arm_binary(a, s->buf, s->size); /* before LOAD_READY: the payload follows */
		agent_sendf(a, "LOAD_READY module_id=%s size=%lu crc32=%.*s", s->id,
			    (unsigned long)s->size, (int)crc_text->len, crc_text->val);
	}
}

void agent_cmd_load(struct agent *a, const char *params)
{
	struct agent_param p_id, p_size, p_crc, p_victim, p_comp, p_csize;
	char id[AGENT_ID_MAX + 1], victim[AGENT_ID_MAX + 1];
	uint32_t size, crc, csize = 0;
	bool replace, chunked, framed, has_victim, warn;
	struct agent_slot *s;
	uint8_t *buf;

	if (!agent_param_get(params, "module_id", &p_id) || !agent_param_get(params, "size", &p_size) ||
	    !agent_param_get(params, "crc32", &p_crc) || p_id.len == 0) {
		load_err(a, "BAD_PARAMS", "missing module_id/size/crc32");
		return;
	}
	if (!agent_param_copy(&p_id, id, sizeof(id)) || !agent_ident_valid(id, AGENT_ID_MAX)) {
		load_err(a, "BAD_PARAMS", "bad module_id");
		return;
	}
	if (!agent_param_u32(&p_size, &size)) {
		load_err(a, "BAD_PARAMS", "bad size");
		return;
	}
	if (size == 0) {
		load_err(a, "BAD_PARAMS", "size=0");
		return;
	}
	if (!agent_param_hex(&p_crc, &crc)) {
		load_err(a, "BAD_PARAMS", "bad crc32");
		return;
	}
	has_victim = agent_param_get(params, "replace_victim", &p_victim) && p_victim.len > 0;
	if (has_victim && !agent_param_copy(&p_victim, victim, sizeof(victim))) {
		load_err(a, "BAD_VICTIM", "NOT_FOUND");
		return;
	}
	replace = flag_set(params, "replace");
	chunked = flag_set(params, "chunked");
	framed = flag_set(params, "framed");
	/* compress=deflate csize=<M>: another method is not known here, the upload goes raw */
	if (chunked && framed && agent_param_get(params, "compress", &p_comp) && p_comp.len == 7 &&
	    !memcmp(p_comp.val, "deflate", 7)) {
		if (!agent_param_get(params, "csize", &p_csize) ||
		    !agent_param_u32(&p_csize, &csize) || csize == 0) {
			load_err(a, "BAD_PARAMS", "compress=deflate needs csize=<compressed bytes>");
			return;
		}
	}

	agent_upload_park(a); /* a new LOAD ends the transfer in progress (kept for resume) */
	s = agent_slot_find(a, id);
	if (chunked && flag_set(params, "resume") && s && s->state == SLOT_PARTIAL &&
	    s->size == size && s->crc == crc) {
		agent_sig_take(a, s, true);
		upload_begin(a, s, true, framed, false, NULL, &p_crc, csize);
		return;
	}
	if (!(s = load_pick_slot(a, id, replace, has_victim ? victim : NULL, &warn))) {
		agent_sig_take(a, NULL, false); /* a refused LOAD drops the pending SIG */
		return;
	}
	if (!(buf = agent_wasm_malloc(size))) {
		agent_sendf(a, "LOAD_ERR code=NO_MEM");
		return;
	}
	s->buf = buf;
	s->size = size;
	s->crc = crc;
	s->acked = 0;
	strcpy(s->id, id);
	agent_sig_take(a, s, false);
	s->state = SLOT_PARTIAL;
	agent_logf(a, "load %s: %lu bytes%s into slot %u", id, (unsigned long)size,
		   chunked ? " chunked" : "", s->index);
	upload_begin(a, s, chunked, framed, warn, victim, &p_crc, csize);
}

/* Re-arm for the next chunk before answering: the gateway sends it as soon as it reads the reply. */
static void chunk_reply(struct agent *a, const char *code)
{
	a->up.deadline = agent_now(a) + a->cfg.chunk_wait_ms;
	chunks_rearm(a);
	if (code)
		agent_sendf(a, "CHUNK_ERR code=%s offset=%lu", code, (unsigned long)up_acked(a));
	else
		agent_sendf(a, "CHUNK_OK offset=%lu", (unsigned long)up_acked(a));
}

/* Classifies one CHUNK; NULL when its bytes are good and stored at the acked offset. */
static const char *chunk_check(struct agent *a, const char *params, uint32_t *len)
{
	struct agent_slot *s = &a->slots[a->up.slot];
	struct agent_param p_off, p_size, p_crc;
	uint32_t off, crc;
	uint8_t flags = a->rx_flags;

	if (!agent_param_get(params, "offset", &p_off) || !agent_param_get(params, "size", &p_size) ||
	    !agent_param_get(params, "crc32", &p_crc) || !agent_param_u32(&p_off, &off) ||
	    !agent_param_u32(&p_size, len) || !agent_param_hex(&p_crc, &crc) || *len == 0)
		return "BAD_PARAMS";
	if (flags & AGENT_RXL_INCOMPLETE)
		return "TIMEOUT";
	/* n > C, o + n > N, a wrong offset, or bytes not stored: all BAD_OFFSET (bytes consumed) */
	if (!(flags & AGENT_RXL_STORED) || off != s->acked || (uint64_t)off + *len > s->size)
		return "BAD_OFFSET";
	if (agent_crc32(0, s->buf + off, *len) != crc)
		return "BAD_CRC";
	return NULL;
}

void agent_cmd_chunk(struct agent *a, const char *params)
{
	struct agent_slot *s;
	const char *err;
	uint32_t n = 0;

	if (a->up.state == UP_CHUNKED && a->up.framed) {
		/* a framed upload takes no raw CHUNK: its bytes were consumed, never acked */
		chunk_reply(a, "NO_UPLOAD");
		return;
	}
	if (a->up.state != UP_CHUNKED) {
		agent_sendf(a, "CHUNK_ERR code=NO_UPLOAD offset=0");
		return;
	}
	s = &a->slots[a->up.slot];
	err = chunk_check(a, params, &n);
	if (!err)
		s->acked += n;
	if (!err && s->acked == s->size) {
		agent_rx_arm_chunks(a, NULL, 0, 0);
		agent_sendf(a, "CHUNK_OK offset=%lu", (unsigned long)s->acked);
		upload_finish(a);
		return;
	}
	chunk_reply(a, err);
}

/* The stored frame's data is at the acked offset: check it, then ack or refuse it. */
static const char *frame_check(struct agent *a, const struct agent_rx_line *line)
{
	uint8_t hdr[5] = { AGENT_FRAME_CHUNK };
	uint32_t crc, cap = a->up.deflate ? agent_inflate_chunk(a) : a->cfg.chunk_max;

	if (line->flags & AGENT_RXL_FRAME_BAD)
		return "BAD_CRC"; /* damaged on the way: its bytes cannot be trusted */
	if (!(line->flags & AGENT_RXL_STORED) || line->f_off != up_acked(a) || line->f_len > cap ||
	    (uint64_t)line->f_off + line->f_len > up_total(a))
		return "BAD_OFFSET";
	for (unsigned i = 0; i < 4; i++)
		hdr[1 + i] = (uint8_t)(line->f_off >> (8 * i));
	crc = agent_crc32(agent_crc32(0, hdr, sizeof(hdr)), up_data(a), line->f_len);
	return crc == line->f_crc ? NULL : "BAD_CRC";
}

static void frame_chunk(struct agent *a, const struct agent_rx_line *line);

/* A good frame of a compressed upload: inflate it, then ack it; a stream the inflater refuses
 * ends the upload (nothing is loaded, the slot is freed). */
static void frame_inflate(struct agent *a, struct agent_slot *s, uint32_t n)
{
	char err[160], esc[200];

	if (agent_inflate_feed(a, s, n, err, sizeof(err))) {
		agent_escape(esc, sizeof(esc), err, strlen(err));
		agent_logf(a, "load %s refused: %s", s->id, err);
		agent_upload_fail(a);
		load_err(a, "BAD_STREAM", esc);
		return;
	}
	a->up.cacked += n;
	if (a->up.cacked < a->up.csize) {
		chunk_reply(a, NULL);
		return;
	}
	agent_rx_arm_chunks(a, NULL, 0, 0);
	agent_sendf(a, "CHUNK_OK offset=%lu", (unsigned long)a->up.cacked);
	agent_inflate_end(a); /* before WAMR loads the module: its pool blocks are free again */
	s->acked = s->size;
	upload_finish(a);
}

/* A frame answers with the seq= of its LOAD. */
void agent_frame_chunk(struct agent *a, const struct agent_rx_line *line)
{
	a->reply_tag = a->up.state != UP_NONE && a->up.has_seq;
	a->reply_seq = a->up.seq;
	frame_chunk(a, line);
	a->reply_tag = false;
}

static void frame_chunk(struct agent *a, const struct agent_rx_line *line)
{
	struct agent_slot *s;
	const char *err;

	if (a->up.state != UP_CHUNKED || !a->up.framed) {
		agent_sendf(a, "CHUNK_ERR code=NO_UPLOAD offset=0");
		return;
	}
	s = &a->slots[a->up.slot];
	err = frame_check(a, line);
	if (!err && a->up.deflate) {
		frame_inflate(a, s, line->f_len);
		return;
	}
	if (!err)
		s->acked += line->f_len;
	if (!err && s->acked == s->size) {
		agent_rx_arm_chunks(a, NULL, 0, 0);
		agent_sendf(a, "CHUNK_OK offset=%lu", (unsigned long)s->acked);
		upload_finish(a);
		return;
	}
	chunk_reply(a, err);
}

/* A CHUNK payload that stopped arriving: cancel it (its CHUNK line then answers TIMEOUT). */
static uint32_t chunk_bytes_poll(struct agent *a, uint32_t got, uint32_t now)
{
	struct agent_upload *up = &a->up;

	if (got != up->last_got || !up->chunk_busy) {
		up->last_got = got;
		up->chunk_busy = true;
		a->chunk_idle_since = now;
		up->deadline = now + a->cfg.chunk_wait_ms;
	}
	if (agent_time_diff(now, a->chunk_idle_since + a->cfg.chunk_timeout_ms) >= 0) {
		agent_logf(a, "chunk payload timed out after %lu bytes", (unsigned long)got);
		agent_rx_cancel_binary(a);
		up->chunk_busy = false;
		return 1;
	}
	return 20;
}

static uint32_t upload_poll(struct agent *a);

/* Payload completion and upload deadlines: their lines answer the LOAD (its seq=). */
uint32_t agent_upload_poll(struct agent *a)
{
	uint32_t next;

	a->reply_tag = a->up.state != UP_NONE && a->up.has_seq;
	a->reply_seq = a->up.seq;
	next = upload_poll(a);
	a->reply_tag = false;
	return next;
}

static uint32_t upload_poll(struct agent *a)
{
	struct agent_upload *up = &a->up;
	uint32_t now = agent_now(a);
	bool done;
	uint32_t got;
	int32_t left;

	if (agent_rx_take_reset(a) && up->state != UP_NONE) {
		/* the link dropped: its transfer is over (a chunked one stays parked for resume=1) */
		agent_logf(a, "link reset during upload of %s", a->slots[up->slot].id);
		if (up->state == UP_V1)
			agent_upload_fail(a);
		else
			agent_upload_park(a);
	}
	got = agent_rx_binary_progress(a, &done);

	if (up->state != UP_V1 && !done)
		return chunk_bytes_poll(a, got, now);
	up->chunk_busy = false;
	up->last_got = 0;
	if (up->state == UP_NONE)
		return UINT32_MAX;
	if (up->state == UP_V1 && done) {
		upload_finish(a);
		return UINT32_MAX;
	}
	left = -agent_time_diff(now, up->deadline);
	if (left > 0)
		return (uint32_t)left;
	if (up->state == UP_V1) {
		struct agent_slot *s = &a->slots[up->slot];
		agent_logf(a, "load %s: timeout after %lu of %lu bytes", s->id, (unsigned long)got,
			   (unsigned long)s->size);
		/* leave payload mode before answering: the next bytes are a command */
		agent_upload_fail(a);
		load_err(a, "TIMEOUT", "binary payload not received");
	} else {
		uint32_t acked = up_acked(a);

		agent_upload_park(a); /* kept for LOAD ... resume=1 */
		agent_sendf(a, "LOAD_ERR code=TIMEOUT msg=\"no chunk\" offset=%lu",
			    (unsigned long)acked);
	}
	return UINT32_MAX;
}

void agent_cmd_unload(struct agent *a, const char *params)
{
	struct agent_param p;
	char id[AGENT_ID_MAX + 1];
	struct agent_slot *s;

	if (!agent_param_get(params, "module_id", &p) || p.len == 0) {
		agent_sendf(a, "UNLOAD_ERR code=BAD_PARAMS msg=\"missing module_id\"");
		return;
	}
	if (!agent_param_copy(&p, id, sizeof(id)) || !(s = agent_slot_find(a, id))) {
		agent_sendf(a, "UNLOAD_ERR code=NOT_FOUND module_id=%.*s", (int)p.len, p.val);
		return;
	}
	if (s->state == SLOT_STARTING) {
		agent_sendf(a, "UNLOAD_ERR code=BUSY module_id=%s msg=\"module starting\"", id);
		return;
	}
	if (s->state == SLOT_RUNNING) {
		if (agent_slot_kill(s) != 0) {
			agent_sendf(a, "UNLOAD_ERR code=BUSY module_id=%s", id);
			return;
		}
		agent_sendf(a, "RESULT status=STOPPED forced=1 module_id=%s func=%s", s->id,
			    s->func[0] ? s->func : "<unknown>");
	}
	if (a->up.state != UP_NONE && a->up.slot == s->index)
		agent_upload_park(a);
	agent_slot_unload(s);
	agent_logf(a, "unloaded %s", id);
	agent_sendf(a, "UNLOAD_OK module_id=%s", id);
}
