/*
 * libFuzzer target for the RX framing, line assembly, parameter parsing and command dispatch:
 * arbitrary bytes go through agent_rx()/agent_poll() with virtual time jumps. Jobs are queued
 * but never run (the fuzzer exercises the command side). Build: see tests/run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"

static struct fake_port F;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config c;
	size_t i = 0;

	memset(&c, 0, sizeof(c));
	c.pool_size = 256 * 1024;
	if (fake_init(&F, &c) != 0)
		abort();
	while (i < size) {
		/* a 0xFE byte followed by n advances time by n*100 ms; else feed up to 64 bytes */
		if (data[i] == 0xFE && i + 1 < size) {
			fake_advance(&F, (uint32_t)data[i + 1] * 100u);
			i += 2;
			continue;
		}
		size_t n = size - i < 64 ? size - i : 64;
		const uint8_t *fe = memchr(data + i, 0xFE, n);
		if (fe && fe != data + i)
			n = (size_t)(fe - (data + i));
		fake_rx_bytes(&F, data + i, n);
		fake_clear(&F);
		i += n;
	}
	fake_advance(&F, 11000); /* let every deadline fire */
	fake_deinit(&F);
	return 0;
}
