/* SYNTAX-CHECK SHIM, not Zephyr: see ../README.md. Nodes are plain tokens here. */
#ifndef SHIM_ZEPHYR_DEVICETREE_H
#define SHIM_ZEPHYR_DEVICETREE_H

#define DT_CHOSEN(prop) shim_dt_chosen_##prop
#define DT_ALIAS(alias) shim_dt_alias_##alias
/* Every node is "okay" unless the script passes -DSHIM_NO_NODES (checks the #else branches). */
#ifdef SHIM_NO_NODES
#define DT_NODE_HAS_STATUS(node, status) 0
#else
#define DT_NODE_HAS_STATUS(node, status) 1
#endif

#endif
