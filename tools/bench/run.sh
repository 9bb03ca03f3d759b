#!/usr/bin/env bash
# One command for the Wasmbed benchmarks (docs/benchmarks.md): builds the release binaries the
# harness starts (sim, gateway, host, bench) and our wamrc, then runs the harness.
#   tools/bench/run.sh            # everything; writes docs/bench/results.json and the charts
#   tools/bench/run.sh --quick    # smoke check on the debug build (figures meaningless; output in $TMPDIR)
#   tools/bench/run.sh upload,nagle --no-qemu
# Env: CARGO_TARGET_DIR (default target), WASMBED_QEMU_ELF (default
# target/baremetal/build/agent.elf; built by firmware-agent/ports/baremetal/build.sh if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# The smoke check only proves the harness works: it reuses the debug build `cargo test` made
# (a fresh release build costs CI ~10 minutes); its figures are not measurements.
case " $* " in
  *" --quick "*) profile=dev dir=debug ;;
  *) profile=release dir=release ;;
esac
cargo build --profile "$profile" -q -p wasmbed-agent-sim -p wasmbed-gateway -p wasmbed-host -p wasmbed-bench
[ -x target/wamrc/wamrc ] || tools/wamrc/build.sh
case " $* " in
  *" --no-qemu "*|*" --quick "*) ;;
  *) [ -f "${WASMBED_QEMU_ELF:-target/baremetal/build/agent.elf}" ] || WAMRC=none firmware-agent/ports/baremetal/build.sh ;;
esac
exec "$CARGO_TARGET_DIR/$dir/wasmbed-bench" "$@"
