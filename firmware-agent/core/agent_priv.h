/* Internal declarations shared by the core's translation units. Not for ports. */
#ifndef WASMBED_AGENT_PRIV_H
#define WASMBED_AGENT_PRIV_H

#include "agent.h"

#define AGENT_FW_WAMR "2.4.3"
#define AGENT_AOT_VERSION 6 /* WAMR 2.4.3 AOT_CURRENT_VERSION (core/config.h) */

/* SLOT_PARTIAL: an upload in progress or parked for resume (buf/size/crc/acked valid, no instance) */
/* SLOT_STARTING: module loaded, its instantiation (start function) runs in job context */
enum agent_slot_state { SLOT_FREE = 0, SLOT_LOADED, SLOT_RUNNING, SLOT_PARTIAL, SLOT_STARTING };
/* what an instantiation in job context answers: LOAD_OK/LOAD_ERR, or the RESULT of the job it
 * replaces: forced stop (START_RELOAD) or CPU fault (START_FAULTED) */
enum agent_start_kind { START_LOAD = 0, START_RELOAD, START_FAULTED };
enum agent_upload_state { UP_NONE = 0, UP_V1, UP_CHUNKED };

/* RX line flags */
#define AGENT_RXL_TOO_LONG 0x01u
#define AGENT_RXL_CHUNK 0x02u /* a CHUNK line whose payload follows in binary mode */
#define AGENT_RXL_STORED 0x08u /* its payload went to the upload buffer (else discarded) */
#define AGENT_RXL_INCOMPLETE 0x80u /* its payload timed out */
#define AGENT_RXL_FRAME 0x10u /* a frame line (f_off/f_len/f_crc valid if it decoded) */
#define AGENT_RXL_FRAME_BAD 0x20u /* the frame did not decode (COBS, kind or length) */

/* kinds of the line being received (struct agent_rx.cur_kind) */
#define RXK_TEXT 0u
#define RXK_FRAME 1u
#define RXK_JUNK 2u

/* --- util --- */
void agent_lock(struct agent *a);
void agent_unlock(struct agent *a);
uint32_t agent_now(struct agent *a);
/* a - b for wrap-safe deadlines: >= 0 when `t` is at or after `deadline` */
static inline int32_t agent_time_diff(uint32_t t, uint32_t deadline)
{
	return (int32_t)(t - deadline);
}
/* Format and write one line (a '\n' is appended). Caller holds the core lock. */
void agent_sendf(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* True for lines that answer a command (they echo its seq=), false for LOG, HELLO, job RESULTs. */
bool agent_reply_tagged(const char *line);
void agent_logf(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Escape `src` (len bytes) for a quoted field into dst (cap bytes, NUL-terminated). */
size_t agent_escape(char *dst, size_t cap, const char *src, size_t len);

/* key=value parameters of one command line (token-anchored, `"`-quoted values). */
struct agent_param {
	const char *val;
	size_t len;
};
/* Finds `key`; returns true and the value if present. */
bool agent_param_get(const char *params, const char *key, struct agent_param *out);
/* Copies a value into dst (cap incl. NUL); false if it does not fit. */
bool agent_param_copy(const struct agent_param *p, char *dst, size_t cap);
/* The identifier rule (module ids, function names), mirrored from wasmbed-agent-proto's
 * src/ident.rs: 1..max bytes, each printable ASCII except space " ' , : = and backslash.
 * testdata/identifiers.txt is checked against both. */
bool agent_ident_valid(const char *s, size_t max);
/* Parses a decimal u32 (no sign, no garbage); false otherwise. */
bool agent_param_u32(const struct agent_param *p, uint32_t *out);
/* Parses hex (optional 0x) u32; false on garbage or overflow. */
bool agent_param_hex(const struct agent_param *p, uint32_t *out);

/* --- rx --- */
bool agent_rx_pop(struct agent *a, struct agent_rx_line *out);
void agent_rx_arm_binary(struct agent *a, uint8_t *dst, uint32_t len);
void agent_rx_cancel_binary(struct agent *a);
/* Payload progress: returns bytes received; *done when complete. */
uint32_t agent_rx_binary_progress(struct agent *a, bool *done);
/* Where the next CHUNK payload or frame goes: dst stands for module offset `off`. */
void agent_rx_arm_chunks(struct agent *a, uint8_t *dst, uint32_t cap, uint32_t off);
/* True once after agent_rx_reset() (a new connection). */
bool agent_rx_take_reset(struct agent *a);
/* The CHUNK payload length announced in a CHUNK line, or -1 if not parseable. */
long agent_chunk_line_size(const char *line, size_t len);

/* --- commands --- */
void agent_dispatch(struct agent *a, char *line, size_t len);
void agent_cmd_load(struct agent *a, const char *params);
void agent_cmd_chunk(struct agent *a, const char *params);
/* A frame line completed (its flags and f_* fields in `line`). */
void agent_frame_chunk(struct agent *a, const struct agent_rx_line *line);
void agent_cmd_unload(struct agent *a, const char *params);
void agent_cmd_start(struct agent *a, const char *params);
void agent_cmd_stop(struct agent *a, const char *params);
void agent_cmd_status(struct agent *a, const char *params);
void agent_cmd_info(struct agent *a, const char *params);
void agent_cmd_hello(struct agent *a, const char *params);
/* Identity (agent_ident.c): derive the key pair from cfg.identity_seed, answer IDENT. */
void agent_ident_init(struct agent *a);
void agent_cmd_ident(struct agent *a, const char *params);
void agent_cmd_sig(struct agent *a, const char *params);
void agent_cmd_minver(struct agent *a, const char *params);

/* --- module signatures (agent_sig.c) --- */
/* A LOAD of `s` (module id set) begins: the SIG waiting for a LOAD of that module id now signs
 * this upload; otherwise the upload is unsigned, except that a `resume` keeps the signature
 * its upload started with. s NULL (a refused LOAD): drops the SIG. */
void agent_sig_take(struct agent *a, struct agent_slot *s, bool resume);
/* The upload of `s` is complete and its CRC good: NULL if it may load (signature, key, version
 * checked as the mode asks), else the LOAD_ERR code, with the message in err. */
const char *agent_sig_check(struct agent *a, struct agent_slot *s, char *err, size_t err_len);
/* INFO's " sig=<mode> sig_keys=<id>,<id>" (empty when off) into buf. */
void agent_sig_info(struct agent *a, char *buf, size_t cap);
/* Upload deadlines and payload completion; returns ms until the next deadline. */
uint32_t agent_upload_poll(struct agent *a);
/* End the active transfer (slot keeps its partial upload). */
void agent_upload_park(struct agent *a);
/* End the active transfer and free its slot. */
void agent_upload_fail(struct agent *a);
/* A CHUNK line reached the head of the queue while its payload is still arriving. */
bool agent_chunk_pending(struct agent *a);

/* --- compressed uploads (agent_inflate.c) --- */
/* The largest frame of a compressed upload (its staging buffer, from the WAMR pool). */
#define AGENT_INFLATE_CHUNK 4096u
uint32_t agent_inflate_chunk(const struct agent *a);
/* The active upload of `csize` compressed bytes becomes compressed; false (nothing allocated)
 * when the pool has no room for the inflater: the upload then goes uncompressed. */
bool agent_inflate_begin(struct agent *a, uint32_t csize);
/* Frees the inflater (idempotent); the upload is no longer compressed. */
void agent_inflate_end(struct agent *a);
/* Inflates the n staged bytes at compressed offset up.cacked into s->buf: NULL, or the reason the
 * stream is refused (in err). The last chunk must end the stream at exactly s->size bytes. */
const char *agent_inflate_feed(struct agent *a, struct agent_slot *s, uint32_t n, char *err,
			       size_t err_len);

/* --- baud switching (agent_baud.c) --- */
void agent_cmd_baud(struct agent *a, const char *params);
/* The port can switch (ops->set_baud, cfg.baud_rates, a current cfg.baud). */
bool agent_baud_supported(const struct agent *a);
/* Writes " baud_rates=<n>,<n>..." (or nothing) for INFO_OK; returns its length. */
size_t agent_baud_info(const struct agent *a, char *buf, size_t cap);
/* A command line was executed: a pending switch is confirmed. */
void agent_baud_confirm(struct agent *a);
/* Reverts an unconfirmed switch at its deadline; returns ms until then (UINT32_MAX: none). */
uint32_t agent_baud_poll(struct agent *a);

/* --- slots and jobs --- */
struct agent_slot *agent_slot_find(struct agent *a, const char *id);
struct agent_slot *agent_slot_free_one(struct agent *a);
/* Release the module of a slot (not running). */
void agent_slot_unload(struct agent_slot *s);
/* Abandon a running job. Lock held on entry and exit. 0, AGENT_ABORT_DEFERRED or -errno. */
int agent_slot_kill(struct agent_slot *s);
/* Forced-stop completion: RESULT forced=1 and re-instantiate. Lock held. */
void agent_slot_forced_done(struct agent_slot *s);
/* Queue the instantiation of s->module in job context (state SLOT_STARTING). Lock held. */
void agent_slot_start(struct agent_slot *s, int kind);
/* Stop deadlines; returns ms until the next one. Lock held. */
uint32_t agent_jobs_poll(struct agent *a);

#endif
