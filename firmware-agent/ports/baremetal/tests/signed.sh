#!/usr/bin/env bash
# Signed modules on the bare-metal agent under QEMU (BOARD, default mps2-an386): an image built
# with TRUSTED_KEYS (a fresh Ed25519 key made here with OpenSSL, which also signs: an
# implementation independent of the gateway's ed25519-dalek and the device's Monocypher).
# The image trusts two keys (a rotation window: the old key and the new one). Checks: INFO
# sig=required and both key ids; an unsigned LOAD, a tampered module, another module's signature,
# a module signed by a key the image does not trust, and an older version are refused and never
# run; signed wasm and AOT load and run, signed by either trusted key. Prints the device's verify
# time per module (SHA-512 of the module + one Ed25519 check, the agent's own log line; QEMU is
# not cycle-accurate: see docs/benchmarks.md).
# SIG_ICOUNT=N runs QEMU with -icount shift=N (one guest instruction = 2^N ns of the board's
# clock), so a logged millisecond is 10^6 / 2^N guest instructions (the docs/benchmarks.md figure).
# Exits non-zero on any failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export BOARD="${BOARD:-mps2-an386}"
# shellcheck source=lib.sh
. "$here/tests/lib.sh"

# the key, and the image that trusts it (<build dir>-signed: the other tests' image is unchanged)
# key: the signing key; new: the key it is being rotated to (both trusted); stranger: not trusted
for k in key new stranger; do
    openssl genpkey -algorithm ed25519 -out "$work/$k.pem"
done
pub_of() { openssl pkey -in "$work/$1.pem" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n'; }
id_of() { openssl pkey -in "$work/$1.pem" -pubout -outform DER | tail -c 32 | sha512sum | cut -c1-16; }
key_id="$(id_of key)"
printf '# test keys (tests/signed.sh): the old key and the new one\n%s\n%s\n' "$(pub_of key)" "$(pub_of new)" \
    >"$work/trusted.keys"
export TRUSTED_KEYS="$work/trusted.keys"
export SEMIHOSTING=0
board_image
module_tools
aot_target="$(board_fact BOARD_AOT_ARCH)/$(board_fact BOARD_AOT_CPU)/none/$(board_fact BOARD_AOT_ABI)"
aot_version="$("$wamrc" --version | sed -n 's/.*AOT file version \([0-9]*\).*/\1/p')"

printf 'int add(int a, int b) { return a + b; }\n' >"$work/add.c"
"$clang" "${wasm_flags[@]}" -Wl,--export-all -o "$work/add.wasm" "$work/add.c"
"$wamrc" "${aot_flags[@]}" -o "$work/add.aot" "$work/add.wasm" >/dev/null
CLANG="$clang" "$repo/modules/build.sh" "$work/mods" >/dev/null
"$wamrc" "${aot_flags[@]}" -o "$work/fft.aot" "$work/mods/fft_bench.wasm" >/dev/null
# the start function lights the LED: STATUS led_toggles shows whether any of it ran
printf '(module (import "env" "led_toggle" (func $l (param i32))) (func $s (call $l (i32.const 0))) (start $s))' \
    >"$work/fx.wat"
wat2wasm "$work/fx.wat" -o "$work/fx.wasm"
# the same module with one more (custom) section: still valid, other bytes
cp "$work/fx.wasm" "$work/fx-tampered.wasm"
printf '\x00\x05\x04note' >>"$work/fx-tampered.wasm"

crc32() { gzip -c "$1" | tail -c8 | od -An -tx4 -N4 | tr -d ' \n'; }

# sig <id> <ver> <file> [aot target]: the SIG line (docs/PROTOCOL.md "Signed modules"), signed
# with $signer (default: key)
sig() {
    local signer="${signer:-key}"
    local kind=wasm target=none
    if [ "$(head -c 4 "$3" | od -An -tx1 | tr -d ' \n')" = 00616f74 ]; then
        kind=aot target="$4"
    fi
    printf 'wasmbed-module-signature-v1\nmodule_id=%s\nkind=%s\ntarget=%s\nver=%s\nsize=%s\nsha512=%s\n' \
        "$1" "$kind" "$target" "$2" "$(stat -c %s "$3")" "$(sha512sum "$3" | cut -d' ' -f1)" >"$work/msg"
    openssl pkeyutl -sign -inkey "$work/$signer.pem" -rawin -in "$work/msg" -out "$work/sig"
    printf 'SIG module_id=%s ver=%s key=%s sig=%s' "$1" "$2" "$(id_of "$signer")" \
        "$(od -An -tx1 "$work/sig" | tr -d ' \n')"
}

if [ -n "${SIG_ICOUNT:-}" ]; then
    printf '#!/bin/sh\nexec %s -icount shift=%d "$@"\n' "${QEMU:-qemu-system-arm}" "$SIG_ICOUNT" \
        >"$work/qemu-icount"
    chmod +x "$work/qemu-icount"
    export QEMU="$work/qemu-icount"
fi
start_qemu "$elf" 240
coproc S { exec timeout 240 socat - "TCP:127.0.0.1:$(cat "$work/port")"; }

fails=0
last=""
send() { printf '%s\n' "$1" >&"${S[1]}"; echo ">> $1" >>"$work/session.log"; }
expect() { # expect <prefix> <regex> [seconds]: the next line starting with prefix must match
    local l
    while IFS= read -r -t "${3:-10}" l <&"${S[0]}"; do
        echo "<< $l" >>"$work/session.log"
        if [[ "$l" == "$1"* ]]; then
            last="$l"
            if [[ "$l" =~ $2 ]]; then echo "ok   - $1: $2"; return 0; fi
            echo "FAIL - $1: want /$2/, got: $l"; fails=$((fails + 1)); return 0
        fi
    done
    echo "FAIL - no $1 line within ${3:-10} s"; fails=$((fails + 1))
}
load() { # load <id> <file>: v1 LOAD, payload after LOAD_READY
    send "LOAD module_id=$1 size=$(stat -c %s "$2") crc32=$(crc32 "$2")"
    expect LOAD_READY "module_id=$1 "
    cat "$2" >&"${S[1]}"
}
verify_time() { # the agent's log line for the last checked signature
    expect "signature of $1" "checked in [0-9]+ ms: $2\$" 30
    echo "info - verify: ${last#signature of }"
}

expect HELLO '^HELLO '
send INFO
expect INFO_OK " sig=required sig_keys=$key_id,$(id_of new)( |$)"

# unsigned (any gateway that does not sign): refused after the CRC, never run
load fx "$work/fx.wasm"
expect LOAD_ '^LOAD_ERR code=BAD_SIGNATURE msg="unsigned module'
# signed, then tampered on the way
send "$(sig fx 1 "$work/fx.wasm")"
expect SIG_OK '^SIG_OK module_id=fx$'
load fx "$work/fx-tampered.wasm"
verify_time fx bad
expect LOAD_ '^LOAD_ERR code=BAD_SIGNATURE msg="signature does not match'
# another module's signature
send "$(sig other 1 "$work/fx.wasm" | sed 's/module_id=other/module_id=fx/')"
expect SIG_OK '^SIG_OK module_id=fx$'
load fx "$work/fx.wasm"
verify_time fx bad
expect LOAD_ '^LOAD_ERR code=BAD_SIGNATURE'
# signed by a key the image does not trust
send "$(signer=stranger sig fx 1 "$work/fx.wasm")"
expect SIG_OK '^SIG_OK module_id=fx$'
load fx "$work/fx.wasm"
expect LOAD_ '^LOAD_ERR code=UNTRUSTED_KEY'
send STATUS
expect STATUS_OK 'modules="none" .* led_toggles=0$'

# signed wasm loads and runs; an older version of it is then refused
send "$(sig m1 2 "$work/add.wasm")"
expect SIG_OK '^SIG_OK module_id=m1$'
load m1 "$work/add.wasm"
verify_time m1 good
expect LOAD_ '^LOAD_OK$'
send 'START module_id=m1 func=add args="a=200,b=26"'
expect START_OK '^START_OK$'
expect RESULT 'status=OK module_id=m1 func=add ret_i32=226$'
send UNLOAD\ module_id=m1
expect UNLOAD_OK ''
send "$(sig m1 1 "$work/add.wasm")"
expect SIG_OK ''
load m1 "$work/add.wasm"
verify_time m1 good
expect LOAD_ '^LOAD_ERR code=ROLLBACK msg="version 1 of m1 is older than this device.s minimum 2"'
send 'MINVER module_id=m1'
expect MINVER_OK '^MINVER_OK module_id=m1 ver=2$'

# AOT: signed for this board's target loads and runs; signed for another target does not
send "$(sig a1 0 "$work/add.aot" "thumbv7em/cortex-m7/none/eabihf/$aot_version")"
expect SIG_OK ''
load a1 "$work/add.aot"
verify_time a1 bad
expect LOAD_ '^LOAD_ERR code=BAD_SIGNATURE'
send "$(sig a1 0 "$work/add.aot" "$aot_target/$aot_version")"
expect SIG_OK ''
load a1 "$work/add.aot"
verify_time a1 good
expect LOAD_ '^LOAD_OK$'
send 'START module_id=a1 func=add args="a=2,b=3"'
expect START_OK '^START_OK$'
expect RESULT 'status=OK module_id=a1 func=add ret_i32=5$'
send UNLOAD\ module_id=a1
expect UNLOAD_OK ''
# a bigger module, for the verify time's dependence on size
send "$(sig fft 0 "$work/fft.aot" "$aot_target/$aot_version")"
expect SIG_OK ''
load fft "$work/fft.aot"
verify_time fft good
expect LOAD_ '^LOAD_OK$' 30
send STATUS
expect STATUS_OK 'fft:LOADED'
send UNLOAD\ module_id=fft
expect UNLOAD_OK ''
# rotation: a build signed by the new key loads too (docs/SECURITY.md "Rotation")
send "$(signer=new sig m2 0 "$work/add.wasm")"
expect SIG_OK '^SIG_OK module_id=m2$'
load m2 "$work/add.wasm"
expect LOAD_ '^LOAD_OK$'
send 'START module_id=m2 func=add args="a=40,b=2"'
expect START_OK '^START_OK$'
expect RESULT 'status=OK module_id=m2 func=add ret_i32=42$'

if [ "$fails" -ne 0 ]; then
    echo "signed.sh: $fails check(s) failed; session:"
    cat "$work/session.log"
    exit 1
fi
echo "signed.sh: all checks passed on $BOARD"
