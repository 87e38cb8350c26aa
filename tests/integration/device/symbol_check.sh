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
