#!/usr/bin/env bash
# Checks scripts/run-workflow.sh on small workflows: env and GITHUB_ENV/GITHUB_PATH carried
# between steps, a failure skips the plain steps but not `if: always()` ones and fails the run,
# and constructs it cannot run faithfully are refused.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() { # check <description> <command...>
    local what="$1"; shift
    if "$@"; then echo "ok   - $what"; pass=$((pass + 1)); else echo "FAIL - $what"; fail=$((fail + 1)); fi
}

cat >"$work/good.yml" <<'YAML'
name: t
on: [push]
jobs:
  one:
    runs-on: ubuntu-24.04
    timeout-minutes: 2
    env:
      GREETING: "hello"
    steps:
      - uses: actions/checkout@v4
      - name: hand on
        run: |
          mkdir -p "$RUNNER_TEMP/bin"
          printf '#!/bin/sh\necho tool-ran\n' >"$RUNNER_TEMP/bin/mytool"
          chmod +x "$RUNNER_TEMP/bin/mytool"
          echo "$RUNNER_TEMP/bin" >>"$GITHUB_PATH"
          echo "ANSWER=42" >>"$GITHUB_ENV"
      - name: use
        run: |
          test "$GREETING" = hello
          test "$ANSWER" = 42
          mytool
YAML
out="$("$repo/scripts/run-workflow.sh" "$work/good.yml" 2>&1)" && rc=0 || rc=$?
check "env, GITHUB_ENV and GITHUB_PATH reach later steps" test "$rc" -eq 0
check "closing line counts steps" grep -q '^2 passed, 0 failed$' <<<"$out"
check "the tool on GITHUB_PATH ran" grep -q '^tool-ran$' <<<"$out"

cat >"$work/failing.yml" <<'YAML'
name: t
on: [push]
jobs:
  one:
    runs-on: ubuntu-24.04
    steps:
      - name: breaks
        run: "false"
      - name: plain
        run: echo plain-ran
      - name: cleanup
        if: always()
        run: echo cleanup-ran
YAML
out="$("$repo/scripts/run-workflow.sh" "$work/failing.yml" 2>&1)" && rc=0 || rc=$?
check "a failed step fails the run" test "$rc" -eq 1
check "plain steps after it are skipped" grep -q '^skip - plain' <<<"$out"
check "if: always() steps still run" grep -q '^cleanup-ran$' <<<"$out"

for bad in 'run: echo ${{ github.sha }}' 'if: failure()' 'uses: some/action@v1' 'shell: sh'; do
    printf 'name: t\non: [push]\njobs:\n  one:\n    runs-on: x\n    steps:\n      - name: s\n        %s\n' "$bad" >"$work/bad.yml"
    rc=0
    "$repo/scripts/run-workflow.sh" "$work/bad.yml" >"$work/bad.out" 2>&1 || rc=$?
    check "refused: $bad" test "$rc" -eq 2
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
