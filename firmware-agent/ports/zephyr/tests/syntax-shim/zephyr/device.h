/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. */
#ifndef SHIM_ZEPHYR_DEVICE_H
#define SHIM_ZEPHYR_DEVICE_H

#include <stdbool.h>

struct device {
	const char *name;
	const void *config;
	const void *api;
	void *data;
};

extern const struct device shim_device;
#define DEVICE_DT_GET(node_id) (&shim_device)

bool device_is_ready(const struct device *dev);

#endif
