#!/usr/bin/env bash
# Fetches the dashboard's front-end libraries from the npm registry (`npm pack`) and copies their
# minified files into wasmbed-gateway/src/http/assets/vendor/ (versions: VENDOR.md there).
# `--check` only compares the fetched files with the committed copies.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=wasmbed-gateway/src/http/assets/vendor
PKGS=(htmx.org@2.0.11 htmx-ext-sse@2.2.4 uplot@1.6.32)
# file in the package -> file in $DEST
MAP=(
  "htmx.org package/dist/htmx.min.js htmx.min.js"
  "htmx.org package/LICENSE LICENSE.htmx.org"
  "htmx-ext-sse package/dist/sse.min.js htmx-ext-sse.min.js"
  "htmx-ext-sse package/LICENSE LICENSE.htmx-ext-sse"
  "uplot package/dist/uPlot.iife.min.js uPlot.iife.min.js"
  "uplot package/dist/uPlot.min.css uPlot.min.css"
  "uplot package/LICENSE LICENSE.uplot"
)
command -v npm >/dev/null || { echo "vendor-web: npm not found (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "${PKGS[@]}" >/dev/null)
for p in "${PKGS[@]}"; do
  name=${p%@*}
  mkdir -p "$tmp/$name"
  tar xzf "$tmp/$name-${p##*@}.tgz" -C "$tmp/$name"
done
status=0
for m in "${MAP[@]}"; do
  read -r name src dst <<<"$m"
  if [[ "${1:-}" == --check ]]; then
    cmp -s "$tmp/$name/$src" "$DEST/$dst" || { echo "vendor-web: $DEST/$dst differs from $name $src" >&2; status=1; }
  else
    cp "$tmp/$name/$src" "$DEST/$dst"
  fi
done
exit $status
