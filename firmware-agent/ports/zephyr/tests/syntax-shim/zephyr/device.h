/*
 * SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. DEVICE_DT_GET() names the device object of a
 * node by its dependency ordinal, as Zephyr does; the board header declares an object for every
 * node with status "okay" only, so a missing or disabled node fails to compile (Zephyr: fails to
 * compile or to link).
 */
#ifndef SHIM_ZEPHYR_DEVICE_H
#define SHIM_ZEPHYR_DEVICE_H

#include <stdbool.h>

#include <zephyr/devicetree.h>

struct device {
	const char *name;
	const void *config;
	const void *api;
	void *data;
};

#define DEVICE_DT_NAME_GET(ord) DT_CAT(__device_dts_ord_, ord)
#define SHIM_DEVICE_BY_ORD(ord) DEVICE_DT_NAME_GET(ord)
#define DEVICE_DT_GET(node_id) (&SHIM_DEVICE_BY_ORD(DT_DEP_ORD(node_id)))

bool device_is_ready(const struct device *dev);

#endif
