/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. Zephyr 4.x's limits and assertion. */
#ifndef SHIM_ZEPHYR_SYS_RING_BUFFER_H
#define SHIM_ZEPHYR_SYS_RING_BUFFER_H

#include <stdint.h>

#include <zephyr/toolchain.h>

#ifdef CONFIG_RING_BUFFER_LARGE
typedef uint32_t ring_buf_idx_t;
#define RING_BUFFER_MAX_SIZE (UINT32_MAX / 4U)
#define RING_BUFFER_SIZE_ASSERT_MSG "Size too large"
#else
typedef uint16_t ring_buf_idx_t;
/* read/write indexes live in [0, 2N) */
#define RING_BUFFER_MAX_SIZE (UINT16_MAX / 2U)
#define RING_BUFFER_SIZE_ASSERT_MSG "Size too large, please enable CONFIG_RING_BUFFER_LARGE"
#endif

struct ring_buf {
	uint8_t *buffer;
	ring_buf_idx_t size;
	ring_buf_idx_t read_idx, write_idx;
};

/* Like Zephyr's: the buffer is static, the ring_buf itself is not (no `static` before it). */
#define RING_BUF_DECLARE(name, size8)                                                              \
	BUILD_ASSERT(size8 <= RING_BUFFER_MAX_SIZE, RING_BUFFER_SIZE_ASSERT_MSG);                  \
	static uint8_t _ring_buffer_data_##name[size8];                                            \
	struct ring_buf name = { .buffer = _ring_buffer_data_##name, .size = (size8) }

uint32_t ring_buf_put(struct ring_buf *buf, const uint8_t *data, uint32_t size);
uint32_t ring_buf_get(struct ring_buf *buf, uint8_t *data, uint32_t size);

#endif
