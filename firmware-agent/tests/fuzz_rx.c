/*
 * libFuzzer target for the RX framing, line assembly, parameter parsing and command dispatch.
 * Arbitrary bytes go through agent_rx()/agent_poll() with virtual time jumps; jobs are queued but
 * never run (the fuzzer exercises the command side). Build: see tests/run.sh.
 *
 * Property (docs/PROTOCOL.md "Integrity rules"): only complete lines outside any payload execute.
 * A reference tokenizer written from the rules, independent of agent_rx.c, splits the same bytes
 * into lines: a line ends at '\n' only; a line starting with the frame mark is a frame (payload);
 * a line with a byte outside 0x20..0x7e (a lone '\r' included, "\r\n" excepted) is junk; a line
 * over 255 bytes is refused. Bytes fed while the agent is in a raw payload mode (the legacy v1
 * LOAD body or a raw CHUNK body, whose end is defined by a count or a timeout) are payload too.
 * Every line the agent executes (trace_command) must be the next command line of the reference,
 * in order; the reference may have more (the input queue drops lines when full).
 *
 * Input encoding: 0xFE n advances time by n*100 ms; 0xFD n wraps the next n input bytes in a
 * valid frame at the active upload's acked offset (so frames also get accepted); other bytes are
 * fed as they are, in runs of up to 64.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"

static struct fake_port F;

/* the reference tokenizer */
static char ref_line[AGENT_LINE_MAX + 2];
static size_t ref_len;
static int ref_kind; /* 0 text, 1 frame, 2 junk, 3 too long */
static int ref_cr;
static char ref_cmds[64][AGENT_LINE_MAX + 1];
static unsigned ref_head, ref_count;

static void ref_byte(uint8_t c)
{
	if (c == '\n') {
		if (ref_kind == 0 && ref_len > 0) {
			if (ref_count == 64) { /* far more than the agent can hold: it dropped these */
				ref_head = (ref_head + 1) % 64;
				ref_count--;
			}
			memcpy(ref_cmds[(ref_head + ref_count) % 64], ref_line, ref_len);
			ref_cmds[(ref_head + ref_count) % 64][ref_len] = '\0';
			ref_count++;
		}
		ref_len = 0;
		ref_kind = 0;
		ref_cr = 0;
		return;
	}
	if (ref_kind == 1 || ref_kind == 2)
		return;
	if (ref_cr || c == '\r') {
		if (ref_cr)
			ref_kind = 2;
		ref_cr = 1;
		return;
	}
	if (c == 0x01 && ref_len == 0 && ref_kind == 0) {
		ref_kind = 1;
		return;
	}
	if (c < 0x20 || c > 0x7e) {
		ref_kind = 2;
		return;
	}
	if (ref_len == AGENT_LINE_MAX)
		ref_kind = 3;
	else if (ref_kind == 0)
		ref_line[ref_len++] = (char)c;
}

/* Every executed line is the next (not dropped) reference command. */
static void check_executed(void)
{
	for (unsigned i = 0; i < F.ncmds; i++) {
		while (ref_count > 0 && strcmp(ref_cmds[ref_head], F.cmds[i]) != 0) {
			ref_head = (ref_head + 1) % 64; /* dropped by the agent's full queue */
			ref_count--;
		}
		if (ref_count == 0) {
			fprintf(stderr, "executed a line that is no complete line outside payload: \"%s\"\n",
				F.cmds[i]);
			abort();
		}
		ref_head = (ref_head + 1) % 64;
		ref_count--;
	}
	F.ncmds = 0;
	if (F.cmd_lost)
		abort();
}

/* Feeds bytes one by one, each classified by the agent's raw mode at the moment it arrives. */
static void feed(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!F.agent.rx.bin_active)
			ref_byte(d[i]);
		agent_rx(&F.agent, d + i, 1);
	}
	agent_poll(&F.agent);
	check_executed();
	fake_clear(&F);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fr[512];
	struct agent_config c;
	size_t i = 0;

	memset(&c, 0, sizeof(c));
	c.pool_size = 256 * 1024;
	if (fake_init(&F, &c) != 0)
		abort();
	ref_len = ref_count = ref_head = 0;
	ref_kind = ref_cr = 0;
	while (i < size) {
		if (data[i] == 0xFE && i + 1 < size) {
			for (unsigned k = 0; k < data[i + 1]; k++) {
				fake_advance(&F, 100);
				check_executed();
			}
			fake_clear(&F);
			i += 2;
			continue;
		}
		if (data[i] == 0xFD && i + 1 < size) {
			size_t n = data[i + 1];
			const struct agent *a = &F.agent;
			uint32_t off = a->up.state ? a->slots[a->up.slot].acked : 0;

			i += 2;
			if (n > size - i)
				n = size - i;
			if (n > 0) {
				size_t len = fake_frame(fr, sizeof(fr), off, data + i, n, 0);
				feed(fr, len);
			}
			i += n;
			continue;
		}
		size_t n = size - i < 64 ? size - i : 64;
		for (size_t k = 0; k < n; k++) {
			if (data[i + k] == 0xFE || data[i + k] == 0xFD) {
				n = k ? k : 1;
				break;
			}
		}
		feed(data + i, n);
		i += n;
	}
	fake_advance(&F, 11000); /* let every deadline fire */
	check_executed();
	fake_deinit(&F);
	return 0;
}
