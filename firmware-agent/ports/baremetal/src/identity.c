/*
 * The board's identity page: the last flash sector on the STM32F4 boards, the last 4 KiB of code
 * memory on mps2-an386 (the linker scripts' IDENTITY region, symbol __wasmbed_identity). The image
 * never writes it and its ELF/bin/hex do not cover it, so flashing a new image keeps the board's
 * identity; `wasmbed-host keys provision` makes the record, flashed once per board at that address.
 *
 * The record (44 bytes, wasmbed-agent-proto identity::Provisioned): "WBIDENT1", the 32-byte
 * Ed25519 seed, CRC-32 (zlib, little endian) of the 40 bytes before it. The core derives the key
 * pair from the seed (agent_ident.c); the seed stays in flash only (no copy in RAM here).
 */
#include <string.h>

#include "agent.h"
#include "identity.h"

extern const uint8_t __wasmbed_identity[];

static const char identity_magic[8] = { 'W', 'B', 'I', 'D', 'E', 'N', 'T', '1' };

const uint8_t *identity_seed(const char **problem)
{
	const uint8_t *r = __wasmbed_identity;
	uint32_t crc;
	bool blank = true;

	*problem = NULL;
	if (memcmp(r, identity_magic, sizeof(identity_magic)) != 0) {
		for (unsigned i = 0; i < IDENTITY_RECORD_BYTES; i++)
			blank = blank && (r[i] == 0xff || r[i] == 0x00);
		if (!blank)
			*problem = "agent: the identity page holds no identity record; provision one with "
				   "`wasmbed-host keys provision` (README.md \"Device identity\")";
		return NULL;
	}
	crc = (uint32_t)r[40] | (uint32_t)r[41] << 8 | (uint32_t)r[42] << 16 | (uint32_t)r[43] << 24;
	if (agent_crc32(0, r, 40) != crc) {
		*problem = "agent: the identity record's CRC does not match (a broken write?); "
			   "provision the board again (README.md \"Device identity\")";
		return NULL;
	}
	return r + sizeof(identity_magic);
}
