#!/usr/bin/env bash
# Builds and runs the test suite under AddressSanitizer +
# UndefinedBehaviorSanitizer (LeakSanitizer included), in build-asan/.
# Extra arguments go to ctest.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDUO_WERROR=ON \
      -DDUO_SANITIZE="address;undefined" >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Fewer repetitions of the long loops (1000 signatures become a few dozen):
# the sanitizers look for memory and UB errors, which the first rounds show.
export DUO_TEST_QUICK=1
# The PostgreSQL tests (label postgresql: three daemons and a database server
# per test, minutes each) run in the plain suite only: under the sanitizers
# they would double CI's time for C code (keystore_pg.c) that the plain run
# exercises; the store's own logic is sanitized through the SQLite tests.
# The load tests (label load: 100 relying-party sessions over 16 devices) too:
# their code paths are the ones rp_e2e runs under the sanitizers.
ctest --output-on-failure -j"$(nproc)" -L "unit|protocol|integration" -LE "postgresql|load" "$@"
