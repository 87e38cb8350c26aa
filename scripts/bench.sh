#!/usr/bin/env bash
# Builds duosign (Release) and runs the benchmark once per curve (P-256, then
# secp256k1): for each a table on stdout and one JSON line, then the curves
# side by side (every engine ratio of P-256 over secp256k1's).
# Usage: scripts/bench.sh [--quick] [--bits 2048|3072|both] [--curve p256|secp256k1] [...]
# (arguments go to duosign-bench; see docs/BENCHMARKS.md). With --curve, only
# that curve runs.
# --pg (first argument): the run is made twice, on SQLite and then with the
# daemon's store on a real PostgreSQL (tests/integration/pg/pg_env.sh, fsync
# on), one after the other, on one curve (--curve, default p256); then
# signing throughput with one node and with three nodes on one PostgreSQL
# (duosign-pg-nodes-bench, DUO_PG_NODES_REPS runs each, default 3: medians
# side by side and their ratio).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
build=${DUO_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDUO_BUILD_TESTS=ON ${DUO_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" --target duosign-bench duosign-cloud duosign-pg-nodes-bench
echo "# $(uptime)" >&2
if [ "${1:-}" = "--pg" ]; then
  shift
  echo "# key store: SQLite" >&2
  "$build/bin/duosign-bench" "$@"
  echo "# key store: PostgreSQL" >&2
  DUO_PG_DURABLE=1 tests/integration/pg/pg_env.sh sh -c \
    'exec "$0" --store "$DUO_TEST_PG_URL" "$@"' "$build/bin/duosign-bench" "$@"
  scripts/bench_pg_nodes.sh "$build"
  exit 0
fi
for a in "$@"; do
  if [ "$a" = "--curve" ]; then exec "$build/bin/duosign-bench" "$@"; fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for c in p256 secp256k1; do
  "$build/bin/duosign-bench" --curve "$c" "$@" | tee "$out/$c.txt"
done
# side by side: each ratio (protocol figure over its floor) and each
# signing/enrolment figure, P-256 over secp256k1 (target: the engine ratio
# ratio.b2b_cloud_cpu/crt_decrypt within 10 %)
python3 - "$out/p256.txt" "$out/secp256k1.txt" <<'PY'
import json, sys
def load(path):
    line = [l for l in open(path) if l.startswith('{')][-1]
    j = json.loads(line)
    figs = {(f['name'], f['bits']): f['value'] for f in j['figures']}
    for r in j['rows']:
        if 'cpu_ms' in r:
            figs[(r['name'] + '.cpu_med', r['bits'])] = r['cpu_ms']['median']
        if 'wall_ms' in r:
            figs[(r['name'] + '.wall_med', r['bits'])] = r['wall_ms']['median']
    return figs
a, b = load(sys.argv[1]), load(sys.argv[2])
print('\n%-58s %5s %12s %12s %8s' % ('curves side by side', 'bits', 'p256', 'secp256k1', 'p256/k1'))
for key in sorted(k for k in a if k in b and (k[0].startswith(('ratio.', 'b2b.', 'e2e.', 'floor.ecdsa')))):
    x, y = a[key], b[key]
    r = x / y if y else float('nan')
    print('%-58s %5d %12.4f %12.4f %8.3f' % (key[0], key[1], x, y, r))
side = {'%s@%d' % k: {'p256': a[k], 'secp256k1': b[k]} for k in a if k in b}
print(json.dumps({'bench': 'duosign-curves', 'figures': side}, sort_keys=True))
PY
# issue 16: two-key enrolment at 2048 and 3072, CMS signing beside plain
# (through the daemon and the CLI; scripts/bench_certs.sh)
cmake --build "$build" -j"$(nproc)" --target duosign >/dev/null
scripts/bench_certs.sh "$build"
# issue 17: relying parties: RP-to-result latency with the citizen approving at
# once from the CLI, daemon CPU per RP signature against a plain signature
cmake --build "$build" -j"$(nproc)" --target duosign >/dev/null
/usr/bin/python3 scripts/bench_rp.py "$build/bin" 10
# issue 12: what the inner channel adds per signature and per enrolment
# (bytes and CPU of both ends, medians; tests/bench/channel_cost.c)
cmake --build "$build" -j"$(nproc)" --target duosign-bench-channel >/dev/null
for b in 2048 3072; do "$build/bin/duosign-bench-channel" --runs 500 --bits "$b"; done
