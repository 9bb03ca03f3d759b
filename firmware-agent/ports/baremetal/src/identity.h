/*
 * The board's identity page (src/identity.c): the Ed25519 seed provisioned per board, read from
 * flash at boot (docs/SECURITY.md "Device identity", README.md "Device identity").
 */
#ifndef BAREMETAL_IDENTITY_H
#define BAREMETAL_IDENTITY_H

#include <stdint.h>

/** Magic, seed and CRC-32 of the identity record (wasmbed-agent-proto identity::Provisioned). */
#define IDENTITY_RECORD_BYTES 44u

/**
 * The provisioned seed (32 bytes, in flash), or NULL when the page holds no valid record; then
 * *problem is NULL for a page that was never provisioned (erased or zero), else a console line
 * saying what is wrong with it and what to do.
 */
const uint8_t *identity_seed(const char **problem);

#endif
