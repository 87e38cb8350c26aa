#!/usr/bin/env bash
# Issue 16 figures through the real daemon and CLI (loopback, TLS, SQLite):
#  - enrolment of the citizen's two keys from one token in one `duosign
#    enroll --pin1-file --pin2-file`, each key's certificate issued inside the
#    enrolment (CSR-purpose signature + IssueCertificate), at Paillier 2048
#    and 3072: wall time, the device's CPU
#    (the duosign process: user+sys) and the cloud's CPU during the command
#    (the daemon's utime+stime from /proc; the Paillier pool's refill after
#    the command is not counted, DECISIONS "Paillier keys only in the
#    background pool");
#  - signing latency: plain (--format der) beside CMS (--format cms), wall
#    median and the two CPUs per signature.
# Usage: scripts/bench_certs.sh [BUILD_DIR] [ENROLMENTS] [SIGNATURES]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/$build" ;; esac
NE=${2:-3}
NS=${3:-10}
CLOUD=$build/bin/duosign-cloud
DUO=$build/bin/duosign
T=$(mktemp -d /tmp/duo-bench-certs-XXXXXX)
pid=
stop() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop; rm -rf "$T"' EXIT
tck=$(getconf CLK_TCK)
cloud_cpu() { awk -v t="$tck" '{printf "%.3f\n", ($14 + $15) / t}' "/proc/$pid/stat"; }
now() { date +%s.%N; }
# dev_run LOGFILE CMD...: the device's CPU (s) appended to LOGFILE
dev_run() { local f=$1; shift; /usr/bin/time -a -o "$f" -f '%U %S' "$@" >/dev/null 2>"$T/err" || { cat "$T/err"; return 1; }; }
printf '1234\n' >"$T/p1"
printf '12345\n' >"$T/p2"
printf '%s\n' "# $(uptime)"
for bits in 2048 3072; do
  d=$T/d$bits
  "$CLOUD" init --data "$d" >/dev/null 2>&1
  "$CLOUD" serve --data "$d" --listen 127.0.0.1:0 --paillier-bits "$bits" >"$T/serve$bits.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do grep -q 'listening on' "$T/serve$bits.log" && break; sleep 0.1; done
  addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$T/serve$bits.log" | head -1 | awk '{print $3}')
  : >"$T/rows$bits"
  for i in $(seq 1 "$NE"); do
    t1=$("$CLOUD" token issue --data "$d" --citizen "c$i" --name "C $i" 2>/dev/null | tail -1)
    sleep 2 # let the pool refill from the previous enrolment settle
    c0=$(cloud_cpu); w0=$(now); : >"$T/dev"
    dev_run "$T/dev" "$DUO" enroll --server "$addr" --ca "$d/ca.pem" --paillier-bits "$bits" \
      --token "$t1" --state "$T/s$bits-$i" --pin1-file "$T/p1" --pin2-file "$T/p2"
    w1=$(now); c1=$(cloud_cpu)
    echo "$(awk "BEGIN {print $w1 - $w0}") $(awk '{s+=$1+$2} END {print s}' "$T/dev") $(awk "BEGIN {print $c1 - $c0}")" >>"$T/rows$bits"
  done
  python3 - "$bits" "$T/rows$bits" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2])]
med = lambda k: statistics.median(r[k] for r in rows) * 1000
print('enrol two keys with certificates, one token @%s bits (n=%d): wall %.0f ms, device CPU %.0f ms, cloud CPU %.0f ms (medians)'
      % (sys.argv[1], len(rows), med(0), med(1), med(2)))
PY
  if [ "$bits" = 2048 ]; then
    s=$T/s2048-1 # its certificate came with the enrolment (in the state)
    head -c 1048576 /dev/urandom >"$T/doc"
    for fmt in der cms; do
      : >"$T/sig$fmt"
      for i in $(seq 1 "$NS"); do
        c0=$(cloud_cpu); w0=$(now); : >"$T/dev"
        dev_run "$T/dev" "$DUO" sign --format "$fmt" --state "$s" --in "$T/doc" --out "$T/out.$fmt" --pin-file "$T/p2"
        w1=$(now); c1=$(cloud_cpu)
        echo "$(awk "BEGIN {print $w1 - $w0}") $(awk '{s+=$1+$2} END {print s}' "$T/dev") $(awk "BEGIN {print $c1 - $c0}")" >>"$T/sig$fmt"
      done
      python3 - "$fmt" "$T/sig$fmt" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2])]
med = lambda k: statistics.median(r[k] for r in rows) * 1000
print('sign --format %s, 1 MiB document, P-256, Paillier 2048 (n=%d): wall %.1f ms, device CPU %.1f ms, cloud CPU %.1f ms (medians, whole CLI process)'
      % (sys.argv[1], len(rows), med(0), med(1), med(2)))
PY
    done
  fi
  stop
done
