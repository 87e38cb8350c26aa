#!/usr/bin/env bash
# Exported-symbols check (secp256k1 tools/symbol-check.py in spirit): every
# dynamic symbol a duosign shared library defines starts with duo_.
set -euo pipefail
fail=0
for lib in "$@"; do
  syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 {print $3}')
  n=$(printf '%s\n' "$syms" | grep -c . || true)
  bad=$(printf '%s\n' "$syms" | grep -v '^duo_' | grep . || true)
  if [ -n "$bad" ]; then
    echo "FAIL $lib exports non-API symbols:"; printf '  %s\n' $bad; fail=1
  elif [ "$n" -eq 0 ]; then
    echo "FAIL $lib exports nothing"; fail=1
  else
    echo "ok   $lib: $n symbols, all duo_*"
  fi
  # No internal duo__ symbols either.
  if printf '%s\n' "$syms" | grep -q '^duo__'; then
    echo "FAIL $lib exports internal duo__ symbols"; fail=1
  fi
done
# The device library must not pull gRPC or libuv in.
dev=$1
if ldd "$dev" 2>/dev/null | grep -Eq 'libgrpc|libgpr|libuv'; then
  echo "FAIL $dev links gRPC or libuv"; fail=1
else
  echo "ok   $dev links neither gRPC nor libuv"
fi
# The exported list is exactly the DUO_API functions of the public headers:
# a new API function must be declared (and documented) there, and nothing
# declared may be missing (duo_device_version, duo_device_revoke_with_code,
# duo_err_exit_code, duo_grpc_set_log were added for issue 13).
inc=$(cd "$(dirname "$0")/../../.." && pwd)
declared() { sed -n 's/.*DUO_API[^(]*[ *]\(duo_[a-z0-9_]*\)(.*/\1/p' "$@" | sort -u; }
check_list() { # check_list LIB HEADER...
  local lib=$1; shift
  local d
  d=$(diff <(declared "$@") <(nm -D --defined-only "$lib" | awk 'NF >= 3 {print $3}' | sort -u) || true)
  if [ -n "$d" ]; then
    echo "FAIL $lib: exported symbols differ from the DUO_API declarations (< declared only, > exported only):"
    printf '%s\n' "$d" | grep '^[<>]' | sed 's/^/  /'; fail=1
  else
    echo "ok   $lib exports exactly the $(declared "$@" | wc -l) DUO_API functions of $(for h in "$@"; do basename "$h"; done | tr '\n' ' ')"
  fi
}
check_list "$1" "$inc/device_half/include/duosign/device.h" "$inc/device_half/include/duosign/device_x509.h" \
    "$inc/common/include/duosign/errors.h"
if [ $# -ge 2 ]; then check_list "$2" "$inc/device_half/include/duosign/device_grpc.h"; fi

# explicit_bzero is glibc/BSD only (not in Android's bionic before API 34, nor
# in Apple's libc): the device libraries wipe with OPENSSL_cleanse instead.
for lib in "$@"; do
  if nm -D --undefined-only "$lib" | grep -qw explicit_bzero; then
    echo "FAIL $lib needs explicit_bzero (not portable; use duo_memzero / OPENSSL_cleanse)"; fail=1
  else
    echo "ok   $lib does not need explicit_bzero"
  fi
done
exit $fail
