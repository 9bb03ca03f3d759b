#!/usr/bin/env bash
# Regenerates tinfl.h / tinfl.c (the inflater of miniz) from the crates.io package miniz-sys 0.1.12.
# Usage: extract.sh [path/to/miniz-sys-0.1.12.crate]
# Without an argument the .crate is fetched with cargo (a scratch project's `cargo fetch`).
# Nothing is rewritten: the files are line ranges of the package's miniz.h / miniz.c, verbatim.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=1e9e3ae51cea1576ceba0dde3d484d30e6e5b86dee0b2d412fe3a16a15c98202
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
crate=${1:-}
if [ -z "$crate" ]; then
	mkdir -p "$tmp/p/src"
	printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nminiz-sys = "=0.1.12"\n' >"$tmp/p/Cargo.toml"
	: >"$tmp/p/src/lib.rs"
	(cd "$tmp/p" && cargo fetch -q)
	crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/miniz-sys-0.1.12.crate | head -1)
fi
echo "$want  $crate" | sha256sum -c -
tar xzf "$crate" -C "$tmp"
src=$tmp/miniz-sys-0.1.12
# the line ranges below are those of this exact package (sha256 above)
lines() { sed -n "$2,$3p" "$src/$1"; }
{
	echo "/* tinfl.h: extracted by extract.sh from miniz-sys 0.1.12 (miniz.h lines 153-185, 470-560, 749-891), verbatim. */"
	echo "#ifndef WASMBED_TINFL_H"
	echo "#define WASMBED_TINFL_H"
	lines miniz.h 153 185
	lines miniz.h 470 560
	lines miniz.h 749 891
	echo "#endif"
} >"$here/tinfl.h"
{
	echo "/* tinfl.c: extracted by extract.sh from miniz-sys 0.1.12 (miniz.c lines 2166-2898), verbatim. */"
	echo '#include "tinfl.h"'
	lines miniz.c 2166 2898
} >"$here/tinfl.c"
cp "$src/LICENSE-MIT" "$here/LICENSE-miniz-sys"
lines miniz.c 1 25 >"$here/LICENSE"
echo "wrote $here/tinfl.h $here/tinfl.c"
