#!/usr/bin/env bash
# Builds duosign (Release) and runs the benchmark: a table on stdout, then one
# JSON line. Usage: scripts/bench.sh [--pg] [--quick] [--bits 2048|3072|both] [...]
# (arguments go to duosign-bench; see docs/BENCHMARKS.md). --pg: the run is
# made twice, on SQLite and then with the daemon's store on a real
# PostgreSQL (tests/integration/pg/pg_env.sh, fsync on), one after the other.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
build=${DUO_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDUO_BUILD_TESTS=ON ${DUO_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" --target duosign-bench duosign-cloud
echo "# $(uptime)" >&2
if [ "${1:-}" = "--pg" ]; then
  shift
  echo "# key store: SQLite" >&2
  "$build/bin/duosign-bench" "$@"
  echo "# key store: PostgreSQL" >&2
  DUO_PG_DURABLE=1 exec tests/integration/pg/pg_env.sh sh -c \
    'exec "$0" --store "$DUO_TEST_PG_URL" "$@"' "$build/bin/duosign-bench" "$@"
fi
exec "$build/bin/duosign-bench" "$@"
