/* A single-threaded fake port for the core's unit tests: captured output, virtual time. */
#ifndef WASMBED_FAKE_PORT_H
#define WASMBED_FAKE_PORT_H

#include "agent.h"

#define FAKE_LINES 256

struct fake_port {
	struct agent agent;
	char lines[FAKE_LINES][AGENT_TX_MAX];
	unsigned head, count;
	uint32_t now;
	int pending_job; /* slot queued by job_start, -1 if none */
	int abort_rc;    /* what job_abort returns */
	unsigned aborts;
	unsigned led_sets;
	/* command lines the core executed (trace_command), oldest first; cmd_lost counts overflow */
	char cmds[16][AGENT_LINE_MAX + 1];
	unsigned ncmds, cmd_lost;
	unsigned code_syncs; /* code_sync calls (after AOT loads) */
};

/** Init the agent on the fake port (pool from the heap); 0 on success. */
int fake_init(struct fake_port *f, const struct agent_config *cfg);
/** Deinit the agent and free the pool. */
void fake_deinit(struct fake_port *f);
/** Feed text (as if received) and run agent_poll once. */
void fake_rx(struct fake_port *f, const char *text);
/** Feed raw bytes and run agent_poll once. */
void fake_rx_bytes(struct fake_port *f, const void *data, size_t len);
/** Advance virtual time in steps and poll. */
void fake_advance(struct fake_port *f, uint32_t ms);
/** Run the queued job, if any (returns 1 if one ran). */
int fake_run_job(struct fake_port *f);
/** Pop the next captured line (without '\n'), or NULL. */
const char *fake_line(struct fake_port *f);
/** Drop all captured lines. */
void fake_clear(struct fake_port *f);
/**
 * Encode one framed chunk (docs/PROTOCOL.md "Framed chunks") of `n` data bytes at module offset
 * `off` into out (mark, COBS with sentinel '\n', '\n'). `crc_xor` corrupts the CRC. Returns
 * its length, 0 if `cap` is too small.
 */
size_t fake_frame(uint8_t *out, size_t cap, uint32_t off, const uint8_t *data, size_t n,
		  uint32_t crc_xor);

#endif
