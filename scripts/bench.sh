#!/usr/bin/env bash
# Builds duosign (Release) and runs the benchmark: a table on stdout, then one
# JSON line. Usage: scripts/bench.sh [--quick] [--bits 2048|3072|both] [...]
# (arguments go to duosign-bench; see docs/BENCHMARKS.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
build=${DUO_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDUO_BUILD_TESTS=ON ${DUO_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" --target duosign-bench duosign-cloud
echo "# $(uptime)" >&2
exec "$build/bin/duosign-bench" "$@"
