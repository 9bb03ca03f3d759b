#!/usr/bin/env bash
# Checks dist/systemd/wasmbed-gateway.service without installing it: `systemd-analyze verify`
# (syntax, directives, the ExecStart binary) must print nothing, and the offline security review
# must rate its exposure at most 2.5 (of 10). ExecStart is pointed at the built gateway
# (GATEWAY, default target/debug/wasmbed-gateway), since /usr/local/bin has none on CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
gateway="${GATEWAY:-$repo/target/debug/wasmbed-gateway}"
[ -x "$gateway" ] || { echo "check.sh: $gateway missing: cargo build -p wasmbed-gateway" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "check.sh: systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unit="$work/wasmbed-gateway.service"
sed "s#/usr/local/bin/wasmbed-gateway#$gateway#" "$here/wasmbed-gateway.service" >"$unit"
grep -q "^ExecStart=$gateway " "$unit" || { echo "check.sh: ExecStart not rewritten" >&2; exit 1; }

out="$(cd "$work" && systemd-analyze verify "$unit" 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:" >&2
  echo "$out" >&2
  exit 1
fi
echo "ok   systemd-analyze verify: no complaint"

# The unit's own config file must be one the gateway accepts.
"$gateway" --config "$here/gateway.toml" --listen 127.0.0.1:0 >"$work/gw.out" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q '^listening on ' "$work/gw.out" && break; sleep 0.1; done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
grep -q '^listening on ' "$work/gw.out" || { cat "$work/gw.out" >&2; echo "check.sh: gateway.toml refused" >&2; exit 1; }
echo "ok   dist/systemd/gateway.toml starts a gateway"

security="$(cd "$work" && systemd-analyze security --offline=yes --threshold=25 "$unit" 2>&1)" || {
  echo "$security" | tail -n 40 >&2
  echo "check.sh: exposure above 2.5" >&2
  exit 1
}
echo "ok   $(echo "$security" | grep 'Overall exposure level')"
echo "3 passed, 0 failed"
