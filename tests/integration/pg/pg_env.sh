#!/usr/bin/env bash
# Runs a command beside a real, throw-away PostgreSQL server (Debian's
# postgresql package): initdb in a temporary directory as an unprivileged
# user, the server listening on a unix socket in that directory only (no TCP
# port, so parallel tests never collide), stopped and removed on exit.
#
#   pg_env.sh COMMAND [ARGS...]
#
# COMMAND runs with DUO_TEST_PG_URL set to a libpq URL of an empty database
# (trust authentication, user duosign). Its exit status is the script's. If
# PostgreSQL cannot start, the script fails with the reason (exit 1): nothing
# is skipped silently.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: pg_env.sh COMMAND [ARGS...]" >&2
  exit 2
fi

PGBIN=""
for d in /usr/lib/postgresql/*/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then PGBIN="$d"; fi
done
if [ -z "$PGBIN" ]; then
  echo "pg_env.sh: no PostgreSQL server found under /usr/lib/postgresql/*/bin; run scripts/setup.sh (package postgresql)" >&2
  exit 1
fi

# PostgreSQL refuses to run as root: as root, run it as a dedicated user.
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
  # Tests run in parallel (ctest -j): another pg_env.sh may be creating the
  # user at this moment (useradd then fails on its lock); retry a few times.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    id -u duosign-test >/dev/null 2>&1 && break
    useradd --system --no-create-home --shell /usr/sbin/nologin duosign-test 2>/dev/null || sleep 0.5
  done
  if ! id -u duosign-test >/dev/null 2>&1; then
    echo "pg_env.sh: cannot create the unprivileged user duosign-test (PostgreSQL refuses to run as root)" >&2
    exit 1
  fi
  RUNAS=(runuser -u duosign-test --)
fi

base="${TMPDIR:-/tmp}"
dir="$(mktemp -d "$base/duo-pg-XXXXXX")"
chmod 0755 "$dir"
if [ ${#RUNAS[@]} -gt 0 ]; then chown duosign-test "$dir"; fi
data="$dir/data"

stop() {
  "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

if ! "${RUNAS[@]}" "$PGBIN/initdb" -D "$data" -U duosign -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
  echo "pg_env.sh: initdb failed:" >&2
  cat "$dir/initdb.log" >&2
  exit 1
fi
# Unix socket in $dir only; fsync off: the tests kill daemons, not the machine
# (the server itself is stopped with -m immediate only at the very end).
# DUO_PG_DURABLE=1 keeps PostgreSQL's defaults (fsync on): the benchmark's.
durability="-c fsync=off -c full_page_writes=off"
if [ "${DUO_PG_DURABLE:-0}" = 1 ]; then durability=""; fi
if ! "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses= -k $dir -p 5432 $durability -c max_connections=200" \
  start >/dev/null 2>&1; then
  echo "pg_env.sh: PostgreSQL did not start:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

export DUO_TEST_PG_URL="postgresql:///postgres?host=$dir&port=5432&user=duosign"
set +e
"$@"
rc=$?
set -e
# DUO_PG_CPU_REPORT=1: the server's CPU over the run (its own and that of its
# exited backends, which the postmaster reaps), for the benchmark.
if [ "${DUO_PG_CPU_REPORT:-0}" = 1 ] && [ -r "$data/postmaster.pid" ]; then
  pmpid=$(head -n 1 "$data/postmaster.pid")
  awk -v hz="$(getconf CLK_TCK)" '{ s = $14 + $15 + $16 + $17; printf "# postgresql server cpu_s %.3f\n", s / hz }' \
    "/proc/$pmpid/stat" >&2 || true
  for p in $(pgrep -P "$pmpid" 2>/dev/null); do
    awk -v hz="$(getconf CLK_TCK)" '{ printf "# postgresql live child %s cpu_s %.3f\n", $2, ($14 + $15) / hz }' \
      "/proc/$p/stat" >&2 || true
  done
fi
if [ $rc -ne 0 ] && [ -n "${DUO_TEST_VERBOSE:-}" ]; then tail -n 50 "$dir/server.log" >&2 || true; fi
exit $rc
