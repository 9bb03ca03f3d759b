#!/usr/bin/env bash
# Copy the WAMR 2.4.3 sources (the wamrx-sys crate's bundled tree, never edited in place) to
# <dest> and apply firmware-agent/wamr/patches/*.patch in name order. Every Wasmbed build of
# WAMR (sim build.rs, bare metal, Zephyr, tools/wamrc) compiles the patched copy.
# Idempotent: <dest>/.wasmbed-patches records the patch set; an unchanged set is not redone.
# Usage: patch-wamr.sh <wamr source tree> <dest>; prints <dest>.
set -euo pipefail

src="$1"
dest="$2"
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -d "$src/core/iwasm" ]; then
    echo "patch-wamr.sh: $src is not a WAMR source tree" >&2
    exit 1
fi
stamp="$(cd "$here/patches" && cat ./*.patch | sha256sum | cut -d' ' -f1) $src"
if [ -f "$dest/.wasmbed-patches" ] && [ "$(cat "$dest/.wasmbed-patches")" = "$stamp" ]; then
    echo "$dest"
    exit 0
fi
tmp="$(mktemp -d "${dest%/}.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for part in core build-scripts LICENSE; do
    if [ -e "$src/$part" ]; then
        cp -R "$src/$part" "$tmp/"
    fi
done
for p in "$here"/patches/*.patch; do
    if ! patch -d "$tmp" -p1 --quiet --forward --no-backup-if-mismatch <"$p" >"$tmp/.patch.log" 2>&1; then
        echo "patch-wamr.sh: $(basename "$p") does not apply to $src:" >&2
        cat "$tmp/.patch.log" >&2
        exit 1
    fi
done
rm -f "$tmp/.patch.log"
echo "$stamp" >"$tmp/.wasmbed-patches"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$dest"
