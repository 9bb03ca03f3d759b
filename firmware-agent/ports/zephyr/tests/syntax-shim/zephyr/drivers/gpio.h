/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. */
#ifndef SHIM_ZEPHYR_DRIVERS_GPIO_H
#define SHIM_ZEPHYR_DRIVERS_GPIO_H

#include <stdbool.h>
#include <stdint.h>

#include <zephyr/device.h>
#include <zephyr/devicetree.h>

typedef uint32_t gpio_flags_t;
typedef uint8_t gpio_pin_t;
typedef uint16_t gpio_dt_flags_t;

struct gpio_dt_spec {
	const struct device *port;
	gpio_pin_t pin;
	gpio_dt_flags_t dt_flags;
};

#define GPIO_OUTPUT_INACTIVE ((gpio_flags_t)0x0e0000u)
/* as Zephyr: the controller's device object and the pin/flags cells of the node's property */
#define GPIO_DT_SPEC_GET_BY_IDX(node_id, prop, idx)                                                \
	{                                                                                          \
		.port = DEVICE_DT_GET(DT_GPIO_CTLR_BY_IDX(node_id, prop, idx)),                    \
		.pin = DT_GPIO_PIN_BY_IDX(node_id, prop, idx),                                     \
		.dt_flags = DT_GPIO_FLAGS_BY_IDX(node_id, prop, idx),                              \
	}
#define GPIO_DT_SPEC_GET(node_id, prop) GPIO_DT_SPEC_GET_BY_IDX(node_id, prop, 0)

bool gpio_is_ready_dt(const struct gpio_dt_spec *spec);
int gpio_pin_configure_dt(const struct gpio_dt_spec *spec, gpio_flags_t extra_flags);
int gpio_pin_set_dt(const struct gpio_dt_spec *spec, int value);

#endif
