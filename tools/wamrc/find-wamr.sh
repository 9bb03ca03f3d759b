# Sourced by the build scripts: locate the WAMR source tree bundled in the
# wamrx-sys 0.3.0 crate. Prints the path; fails with a clear message.
# Usage: wasmbed_find_wamr <repo root>

wasmbed_find_wamr() {
    local repo="$1" cand dir
    if [ -n "${WAMR_ROOT:-}" ]; then
        if [ -d "$WAMR_ROOT/core/iwasm" ]; then
            echo "$WAMR_ROOT"
            return 0
        fi
        echo "WAMR_ROOT=$WAMR_ROOT is not a WAMR source tree" >&2
        return 1
    fi
    for cand in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wamrx-sys-0.3.0/wasm-micro-runtime; do
        if [ -d "$cand/core/iwasm" ]; then
            echo "$cand"
            return 0
        fi
    done
    # Not unpacked yet (or a custom registry layout): ask cargo.
    (cd "$repo" && cargo fetch >/dev/null 2>&1) || true
    dir="$(cd "$repo" && cargo metadata --format-version 1 2>/dev/null \
        | grep -o '"manifest_path":"[^"]*/wamrx-sys-0\.3\.0/Cargo\.toml"' \
        | head -n 1 | sed -e 's/^"manifest_path":"//' -e 's#/Cargo\.toml"$##' || true)"
    if [ -n "$dir" ] && [ -d "$dir/wasm-micro-runtime/core/iwasm" ]; then
        echo "$dir/wasm-micro-runtime"
        return 0
    fi
    echo "cannot find the WAMR sources of wamrx-sys 0.3.0: run 'cargo fetch' in the repo or set WAMR_ROOT" >&2
    return 1
}

# The tree every Wasmbed build compiles: a copy of the wamrx-sys one in <repo>/target/wamr-patched
# with firmware-agent/wamr/patches applied (the registry's sources are never edited).
# Usage: wasmbed_patched_wamr <repo root>
wasmbed_patched_wamr() {
    local repo="$1" src
    src="$(wasmbed_find_wamr "$repo")" || return 1
    "$repo/firmware-agent/wamr/patch-wamr.sh" "$src" "$repo/target/wamr-patched"
}
