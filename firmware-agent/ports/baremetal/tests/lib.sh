# Shared by the QEMU test scripts (source it after `set -euo pipefail` and setting `here`):
# a scratch dir `$work`, cleanup on exit of QEMU (`$qpid`) and helper processes, and
# `start_qemu ELF LIMIT_S` which boots ELF through qemu-run.sh (free port, hard timeout, killed by
# PID) and waits, bounded, until its UART listens; the port is then in "$work/port".
work="$(mktemp -d)"
qpid=""
extra_pids=() # helpers (socat, coprocs) a script starts; killed on exit
cleanup() {
    local p
    for p in "${extra_pids[@]}" "${S_PID:-}" "$qpid"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true # qemu-run.sh kills its QEMU by PID
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start_qemu() { # start_qemu <elf> <limit_s>
    rm -f "$work/port"
    "$here/qemu-run.sh" "$1" "$work/port" "$2" >"$work/qemu.out" 2>&1 &
    qpid=$!
    for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.05; done
    [ -s "$work/port" ] || { echo "FAIL - QEMU did not listen"; cat "$work/qemu.out"; exit 1; }
}

board_image() { # the board's agent image (BOARD, board-facts.sh), built if needed: sets `elf`,
    # `board_name` and `aot_flags` (wamrc's flags for the board's AOT target); needs `repo`
    # shellcheck source=../board-facts.sh
    . "$here/board-facts.sh"
    "$here/build.sh" >/dev/null 2>&1 || "$here/build.sh"
    elf="$(board_build_dir)/agent.elf"
    board_name="$(board_fact BOARD_NAME)"
    aot_flags=(--target="$(board_fact BOARD_AOT_ARCH)" --cpu="$(board_fact BOARD_AOT_CPU)"
        --target-abi="$(board_fact BOARD_AOT_ABI)")
    # LLVM cpu features, where the board names some (INFO aot_features)
    local features
    if features="$(board_fact BOARD_AOT_FEATURES 2>/dev/null)"; then
        aot_flags+=(--cpu-features="$features")
    fi
}

module_tools() { # sets `wamrc` ($WAMRC or tools/wamrc built), `clang` and `wasm_flags`, the
    # project's one set of module flags (modules/clang-flags.txt); needs `repo`
    wamrc="${WAMRC:-$("$repo/tools/wamrc/build.sh")}"
    clang="$(command -v clang-14 || command -v clang)"
    mapfile -t wasm_flags <"$repo/modules/clang-flags.txt"
}
