#!/usr/bin/env bash
# Runs a GitHub Actions workflow's job locally, step by step, the way the runner does:
#
#   scripts/run-workflow.sh [WORKFLOW.yml] [JOB]
#
# (default .github/workflows/wasmbed-qemu.yml and its only job). Each `run:` step runs with
# `bash --noprofile --norc -eo pipefail` in the repository root, with the job's `env:`,
# $GITHUB_ENV and $GITHUB_PATH honoured between steps, $RUNNER_TEMP a fresh directory, and
# $CI/$GITHUB_ACTIONS set. A step without `if:` runs only while every earlier step passed; `if:
# always()` steps run anyway. `uses:` steps are skipped locally (only actions/checkout, which the
# local tree already is, and actions/upload-artifact are allowed). Anything else in the file (an
# unknown key, `${{ }}` inside `run:`, another `if:`) is an error rather than silently ignored,
# so a workflow that passes here runs the same commands on GitHub.
#
# The job's `timeout-minutes` bounds the whole run. On exit every process whose PID a step wrote
# to $RUNNER_TEMP/*.pid is killed (a safety net behind the workflow's own stop steps).
# Environment: KEEP_RUNNER_TEMP=1 keeps $RUNNER_TEMP (logs) and prints its path.
# Prints one line per step and `N passed, N failed` at the end; exits 1 if a step failed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
wf="${1:-.github/workflows/wasmbed-qemu.yml}"
want_job="${2:-}"
[ -f "$wf" ] || { echo "run-workflow: no such workflow: $wf" >&2; exit 2; }

tmp="$(mktemp -d)"
steps="$tmp/steps"
mkdir -p "$steps" "$tmp/runner-temp"

# --- parse (a strict subset of YAML: two-space indentation, as in our workflows) -------------
awk -v dir="$steps" -v want="$want_job" '
function fail(msg) { printf "run-workflow: %s:%d: %s\n", FILENAME, NR, msg > "/dev/stderr"; bad = 1; exit 2 }
function indent(s) { match(s, /^ */); return RLENGTH }
function unquote(v) {
    sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
    if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
    return v
}
function newstep() { n++; f = sprintf("%s/%03d", dir, n); printf "" > (f ".run") }
BEGIN { n = 0; injob = 0; jobs = 0; inrun = 0; section = "" }
{
    line = $0
    if (inrun) {
        if (line ~ /^[ \t]*$/) { print "" >> (f ".run"); next }
        if (indent(line) >= runindent) {
            body = substr(line, runindent + 1)
            if (body ~ /\$\{\{/) fail("`${{ }}` inside run: is not evaluated locally: use an environment variable")
            print body >> (f ".run"); next
        }
        inrun = 0
    }
    if (line ~ /^[ \t]*#/ || line ~ /^[ \t]*$/) next
    ind = indent(line)
    s = substr(line, ind + 1)
    if (ind == 0) {
        key = s; sub(/:.*/, "", key)
        if (key != "name" && key != "on" && key != "jobs" && key != "permissions" && key != "concurrency") fail("unknown top-level key " key)
        section = key; next
    }
    if (section != "jobs") next
    if (ind == 2) {
        jobs++; job = s; sub(/:.*/, "", job)
        injob = (want == "" || want == job)
        if (want == "" && jobs > 1) fail("several jobs: name the one to run")
        if (injob) print job > (dir "/job")
        sub_ = ""; next
    }
    if (!injob) next
    if (ind == 4) {
        key = s; sub(/:.*/, "", key); val = s; sub(/^[^:]*:/, "", val)
        if (key == "timeout-minutes") { print unquote(val) > (dir "/timeout"); sub_ = ""; next }
        if (key == "runs-on" || key == "name") { sub_ = ""; next }
        if (key == "env" || key == "steps") { sub_ = key; next }
        fail("unknown job key " key)
    }
    if (sub_ == "env" && ind == 6) {
        key = s; sub(/:.*/, "", key); val = s; sub(/^[^:]*:/, "", val)
        printf "%s=%s\n", key, unquote(val) >> (dir "/env"); next
    }
    if (sub_ == "steps") {
        if (ind == 6 && s ~ /^- /) { newstep(); s = substr(s, 3); ind = 8 }
        if (n == 0) fail("step content before the first `- `")
        if (ind == 8) {
            key = s; sub(/:.*/, "", key); val = s; sub(/^[^:]*:[ ]?/, "", val)
            if (key == "name") { print unquote(val) > (f ".name"); next }
            if (key == "if") {
                v = unquote(val)
                if (v != "always()") fail("only `if: always()` is supported, not `" v "`")
                print "always" > (f ".if"); next
            }
            if (key == "uses") {
                v = unquote(val)
                if (v !~ /^actions\/(checkout|upload-artifact)@/) fail("uses: " v " has no local equivalent")
                print v > (f ".uses"); next
            }
            if (key == "with") { inwith = 1; next }
            if (key == "run") {
                if (val ~ /^\|[-+]?[ \t]*$/) { inrun = 1; runindent = 10; next }
                v = unquote(val)
                if (v ~ /\$\{\{/) fail("`${{ }}` inside run: is not evaluated locally")
                print v > (f ".run"); next
            }
            fail("unknown step key " key)
        }
        if (ind >= 10) next   # the `with:` of a uses step (not used locally)
        fail("unexpected indentation")
    }
    fail("unexpected line")
}
END { if (!bad && !injob && jobs == 0) { print "run-workflow: no job found" > "/dev/stderr"; exit 2 } }
' "$wf"
[ -f "$steps/job" ] || { echo "run-workflow: job ${want_job:-?} not found in $wf" >&2; exit 2; }
job="$(cat "$steps/job")"
limit_min="$(cat "$steps/timeout" 2>/dev/null || echo 60)"

# --- run -----------------------------------------------------------------------------------
export RUNNER_TEMP="$tmp/runner-temp" GITHUB_WORKSPACE="$repo" CI=true GITHUB_ACTIONS=true
export GITHUB_ENV="$tmp/github_env" GITHUB_PATH="$tmp/github_path"
: >"$GITHUB_ENV"
: >"$GITHUB_PATH"
if [ -f "$steps/env" ]; then
    while IFS= read -r kv; do export "${kv?}"; done <"$steps/env"
fi

cleanup() {
    local f
    for f in "$RUNNER_TEMP"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    if [ "${KEEP_RUNNER_TEMP:-0}" = 1 ]; then
        echo "run-workflow: RUNNER_TEMP kept: $RUNNER_TEMP"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

echo "run-workflow: $wf, job $job (limit ${limit_min} min)"
deadline=$((SECONDS + limit_min * 60))
passed=0
failed=0
for run in "$steps"/*.run; do
    s="${run%.run}"
    name="$(cat "$s.name" 2>/dev/null || true)"
    if [ -f "$s.uses" ]; then
        echo "skip - $(cat "$s.uses") (no local equivalent needed)"
        continue
    fi
    [ -n "$name" ] || name="$(head -n1 "$run")"
    if [ "$failed" -gt 0 ] && [ ! -f "$s.if" ]; then
        echo "skip - $name (an earlier step failed)"
        continue
    fi
    left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || { echo "FAIL - $name: the job's timeout-minutes ($limit_min) passed"; failed=$((failed + 1)); continue; }
    t0=$SECONDS
    echo "==> $name"
    rc=0
    timeout --signal=TERM "$left" bash --noprofile --norc -eo pipefail "$run" || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "ok   - $name ($((SECONDS - t0)) s)"
        passed=$((passed + 1))
    else
        echo "FAIL - $name (exit $rc after $((SECONDS - t0)) s)"
        failed=$((failed + 1))
    fi
    # What the step handed on, as the runner does between steps.
    if grep -q '<<' "$GITHUB_ENV"; then
        echo "run-workflow: multi-line values in GITHUB_ENV are not supported" >&2
        exit 2
    fi
    while IFS= read -r kv; do [ -n "$kv" ] && export "${kv?}"; done <"$GITHUB_ENV"
    while IFS= read -r p; do [ -n "$p" ] && PATH="$p:$PATH"; done <"$GITHUB_PATH"
    : >"$GITHUB_PATH"
    export PATH
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
