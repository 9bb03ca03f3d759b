# Sourced by the scripts: `board_fact NAME` prints the value of `#define NAME
# value` in the board header src/boards/<$BOARD>.h (quotes and a trailing
# comment removed), the one place a board's facts are kept. Sets
# `board_header`; fails if BOARD names no board.
board_header="$(dirname "${BASH_SOURCE[0]}")/src/boards/${BOARD//-/_}.h"
[ -f "$board_header" ] || { echo "unknown BOARD $BOARD (no $board_header)" >&2; exit 2; }
# board_header_files HEADER: HEADER and the files its `#include "..."` lines name (recursively,
# relative to the including file), each before the rest of the including file's own lines.
board_header_files() {
    local inc
    while read -r inc; do
        board_header_files "$(cd "$(dirname "$1")" && cd "$(dirname "$inc")" && pwd)/$(basename "$inc")"
    done < <(sed -n 's/^#include "\(.*\)"$/\1/p' "$1")
    printf '%s\n' "$1"
}
board_fact() {
    local v
    # the header and what it includes (the shared ../../boards/<board>.h, stm32f4_common.h), in
    # #include order: the first definition wins, as the #ifndef guards make it in C
    v="$(sed -n "s/^#define $1 \\(.*\\)\$/\\1/p" $(board_header_files "$board_header") | head -1 |
        sed 's/ *\/\*.*//; s/"//g')"
    [ -n "$v" ] || { echo "board_fact: $1 not in $board_header" >&2; return 1; }
    printf '%s\n' "$v"
}
# Where build.sh puts the board's images.
board_build_dir() {
    local repo
    repo="$(cd "$(dirname "$board_header")/../../../../.." && pwd)"
    # TRUSTED_KEYS=FILE (build.sh): a separate image that requires signed modules
    local signed=""
    [ -n "${TRUSTED_KEYS:-}" ] && signed="-signed"
    if [ "$BOARD" = mps2-an386 ]; then echo "$repo/target/baremetal/build$signed"; else echo "$repo/target/baremetal/build-$BOARD$signed"; fi
}
