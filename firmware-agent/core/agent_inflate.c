/*
 * Compressed uploads (LOAD ... compress=deflate, docs/PROTOCOL.md "Compressed uploads"): the
 * frames carry a raw deflate stream, inflated by miniz's tinfl (third_party/miniz, taken verbatim
 * from the crates.io package miniz-sys 0.1.12) straight into the module buffer. The buffer is
 * its own dictionary (TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF): no 32 KiB window, no second copy
 * of the module. The inflater's state (about 11 KB) and one frame's staging buffer come from the
 * WAMR pool for the upload only; nothing is static.
 */
#define MINIZ_NO_MALLOC
#define MINIZ_NO_STDIO
#define MINIZ_NO_TIME
#include <stdio.h>
#include <string.h>

#include "../third_party/miniz/tinfl.h"
#include "agent_wasm.h"

uint32_t agent_inflate_chunk(const struct agent *a)
{
	return a->cfg.chunk_max < AGENT_INFLATE_CHUNK ? a->cfg.chunk_max : AGENT_INFLATE_CHUNK;
}

bool agent_inflate_begin(struct agent *a, uint32_t csize)
{
	struct agent_upload *up = &a->up;
	tinfl_decompressor *r = agent_wasm_malloc(sizeof(*r));
	uint8_t *stage = r ? agent_wasm_malloc(agent_inflate_chunk(a)) : NULL;

	if (!stage) {
		if (r)
			agent_wasm_free(r);
		return false;
	}
	tinfl_init(r);
	up->deflate = true;
	up->inflater = r;
	up->stage = stage;
	up->csize = csize;
	up->cacked = 0;
	up->produced = 0;
	return true;
}

void agent_inflate_end(struct agent *a)
{
	struct agent_upload *up = &a->up;

	if (up->stage)
		agent_wasm_free(up->stage);
	if (up->inflater)
		agent_wasm_free(up->inflater);
	up->stage = NULL;
	up->inflater = NULL;
	up->deflate = false;
}

const char *agent_inflate_feed(struct agent *a, struct agent_slot *s, uint32_t n, char *err,
			       size_t err_len)
{
	struct agent_upload *up = &a->up;
	bool last = up->cacked + n == up->csize;
	size_t in_n = n, out_n = s->size - up->produced;
	mz_uint32 flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
	tinfl_status st;

	if (!last)
		flags |= TINFL_FLAG_HAS_MORE_INPUT;
	st = tinfl_decompress(up->inflater, up->stage, &in_n, s->buf, s->buf + up->produced,
			      &out_n, flags);
	up->produced += (uint32_t)out_n;
	if (st == TINFL_STATUS_HAS_MORE_OUTPUT) {
		snprintf(err, err_len, "the deflate stream inflates to more than size=%lu bytes",
			 (unsigned long)s->size);
		return err;
	}
	if (st < TINFL_STATUS_DONE) {
		snprintf(err, err_len,
			 "corrupt or truncated deflate stream in the chunk at compressed offset %lu "
			 "(%lu bytes inflated): compress the module as one raw deflate stream",
			 (unsigned long)up->cacked, (unsigned long)up->produced);
		return err;
	}
	if (st == TINFL_STATUS_DONE && (!last || in_n != n)) {
		snprintf(err, err_len, "the deflate stream ends at compressed byte %lu of csize=%lu",
			 (unsigned long)(up->cacked + in_n), (unsigned long)up->csize);
		return err;
	}
	if (last && (st != TINFL_STATUS_DONE || up->produced != s->size)) {
		snprintf(err, err_len, "the deflate stream inflates to %lu bytes, LOAD said size=%lu",
			 (unsigned long)up->produced, (unsigned long)s->size);
		return err;
	}
	return NULL;
}
