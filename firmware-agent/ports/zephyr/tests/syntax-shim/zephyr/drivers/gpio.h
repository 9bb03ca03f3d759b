/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. */
#ifndef SHIM_ZEPHYR_DRIVERS_GPIO_H
#define SHIM_ZEPHYR_DRIVERS_GPIO_H

#include <stdbool.h>
#include <stdint.h>

#include <zephyr/device.h>

typedef uint32_t gpio_flags_t;
typedef uint8_t gpio_pin_t;
typedef uint16_t gpio_dt_flags_t;

struct gpio_dt_spec {
	const struct device *port;
	gpio_pin_t pin;
	gpio_dt_flags_t dt_flags;
};

#define GPIO_OUTPUT_INACTIVE ((gpio_flags_t)0x0e0000u)
#define GPIO_DT_SPEC_GET(node_id, prop) { .port = &shim_device, .pin = 5, .dt_flags = 0 }

bool gpio_is_ready_dt(const struct gpio_dt_spec *spec);
int gpio_pin_configure_dt(const struct gpio_dt_spec *spec, gpio_flags_t extra_flags);
int gpio_pin_set_dt(const struct gpio_dt_spec *spec, int value);

#endif
