/*
 * SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. As in Zephyr, a node identifier is a token
 * that the board's generated header (here boards/<board>/devicetree_generated.h, written by hand
 * from the board's .dts and this port's overlay) defines properties for by token pasting. A
 * missing chosen node or alias leaves an undefined token, so every use fails to compile, as
 * with the real headers.
 */
#ifndef SHIM_ZEPHYR_DEVICETREE_H
#define SHIM_ZEPHYR_DEVICETREE_H

#include <zephyr/sys/util.h>

#include <devicetree_generated.h>

#define DT_CAT(a, b) a##b
#define DT_CAT3(a, b, c) a##b##c
#define DT_CAT4(a, b, c, d) a##b##c##d
#define DT_CAT6(a, b, c, d, e, f) a##b##c##d##e##f
#define DT_CAT7(a, b, c, d, e, f, g) a##b##c##d##e##f##g

#define DT_CHOSEN(prop) DT_CAT(DT_N_CHOSEN_, prop)
#define DT_ALIAS(alias) DT_CAT(DT_N_ALIAS_, alias)
/* the dependency ordinal: every node that exists has one (an unknown node has none) */
#define DT_DEP_ORD(node_id) DT_CAT(node_id, _ORD)
#define DT_NODE_HAS_STATUS(node_id, status) IS_ENABLED(DT_CAT3(node_id, _STATUS_, status))
#define DT_NODE_EXISTS(node_id) IS_ENABLED(DT_CAT(node_id, _EXISTS))

#define DT_PHANDLE_BY_IDX(node_id, prop, idx) DT_CAT6(node_id, _P_, prop, _IDX_, idx, _PH)
#define DT_GPIO_CTLR_BY_IDX(node_id, prop, idx) DT_PHANDLE_BY_IDX(node_id, prop, idx)
#define DT_PHA_BY_IDX(node_id, pha, idx, cell) DT_CAT7(node_id, _P_, pha, _IDX_, idx, _VAL_, cell)
#define DT_GPIO_PIN_BY_IDX(node_id, prop, idx) DT_PHA_BY_IDX(node_id, prop, idx, pin)
#define DT_GPIO_FLAGS_BY_IDX(node_id, prop, idx) DT_PHA_BY_IDX(node_id, prop, idx, flags)

#endif
