/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. */
#ifndef SHIM_ZEPHYR_SYS_RING_BUFFER_H
#define SHIM_ZEPHYR_SYS_RING_BUFFER_H

#include <stdint.h>

struct ring_buf {
	uint8_t *buffer;
	uint32_t size;
	uint32_t head, tail;
};

/* Like Zephyr's: the buffer is static, the ring_buf itself is not (no `static` before it). */
#define RING_BUF_DECLARE(name, size8)                              \
	static uint8_t _ring_buffer_data_##name[size8];            \
	struct ring_buf name = { .buffer = _ring_buffer_data_##name, .size = (size8) }

uint32_t ring_buf_put(struct ring_buf *buf, const uint8_t *data, uint32_t size);
uint32_t ring_buf_get(struct ring_buf *buf, uint8_t *data, uint32_t size);

#endif
