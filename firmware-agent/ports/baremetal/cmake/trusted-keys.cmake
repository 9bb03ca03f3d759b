# cmake -DIN=<keys file> -DOUT=<trusted_keys.h> -P trusted-keys.cmake
# The module-signing keys a bare-metal image trusts (docs/SECURITY.md "Signed modules"): one
# Ed25519 public key per line, 64 hex digits (`wasmbed-host keys show`); blank lines and lines
# starting with '#' are skipped. Writes a header defining PORT_TRUSTED_KEYS and
# PORT_TRUSTED_KEYS_N; a malformed file or more than 4 keys (AGENT_TRUSTED_KEYS_MAX) fails the
# build with the line at fault.
file(STRINGS "${IN}" lines)
set(body "")
set(n 0)
foreach (line IN LISTS lines)
  string(STRIP "${line}" line)
  if (line STREQUAL "" OR line MATCHES "^#")
    continue()
  endif ()
  string(TOLOWER "${line}" line)
  if (NOT line MATCHES "^[0-9a-f]+$")
    message(FATAL_ERROR "${IN}: '${line}' is not a 64-hex-digit Ed25519 public key")
  endif ()
  string(LENGTH "${line}" len)
  if (NOT len EQUAL 64)
    message(FATAL_ERROR "${IN}: '${line}' is not a 64-hex-digit Ed25519 public key")
  endif ()
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${line}")
  string(APPEND body "\t{ ${bytes} }, \\\n")
  math(EXPR n "${n} + 1")
endforeach ()
if (n EQUAL 0 OR n GREATER 4)
  message(FATAL_ERROR "${IN}: ${n} keys; a device trusts 1 to 4 (AGENT_TRUSTED_KEYS_MAX)")
endif ()
file(WRITE "${OUT}" "/* Generated from ${IN}; do not edit. */\n#define PORT_TRUSTED_KEYS_N ${n}u\n#define PORT_TRUSTED_KEYS \\\n{ \\\n${body}}\n")
