#!/usr/bin/env bash
# Signing throughput with one node and with three nodes on one PostgreSQL
# (issue 20): duosign-pg-nodes-bench through tests/integration/pg/pg_env.sh
# (a fresh server each run, fsync on), DUO_PG_NODES_REPS runs of each
# (default 3), alternating; prints the medians side by side and the ratio.
# Usage: scripts/bench_pg_nodes.sh [BUILD_DIR]   (DUO_PG_NODES_DEVICES,
# DUO_PG_NODES_SIGS: devices at once and signatures each; default 8 and 8)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${1:-build}
reps=${DUO_PG_NODES_REPS:-3}
devices=${DUO_PG_NODES_DEVICES:-8}
sigs=${DUO_PG_NODES_SIGS:-8}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(uptime)" >&2
for r in $(seq "$reps"); do
  for n in 1 3; do
    DUO_PG_DURABLE=1 tests/integration/pg/pg_env.sh "$build/bin/duosign-pg-nodes-bench" \
      "$build/bin/duosign-cloud" "$n" "$devices" "$sigs" 2>/dev/null | grep '^{' | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = {n: statistics.median(r['per_s'] for r in runs if r['nodes'] == n) for n in (1, 3)}
print('\n%-40s %10s %10s %8s' % ('signatures per second (median)', '1 node', '3 nodes', '3/1'))
print('%-40s %10.2f %10.2f %8.3f' % ('%d devices at once' % runs[0]['devices'], med[1], med[3], med[3] / med[1]))
print(json.dumps({'bench': 'pg-nodes-throughput', 'median_per_s': med, 'ratio_3_over_1': med[3] / med[1],
                  'runs': runs}, sort_keys=True))
PY
