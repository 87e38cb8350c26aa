#!/usr/bin/env bash
# The operator's commands around a PostgreSQL store (run through pg_env.sh):
# init --store and serve --store refuse a URL that is not PostgreSQL's (exit
# 2), an unreachable server (exit 1, saying so), a second init on a database
# that already holds a store (exit 1); store.url is 0600 and every admin
# command finds the store through it; a damaged store.url is named; four
# processes opening a fresh database at once migrate it exactly once (versions 1-10);
# a node's data directory pointed at another database is refused by its mark (exit 18).
#   test_pg_cli.sh PATH/TO/duosign-cloud
set -uo pipefail
bin=$1
: "${DUO_TEST_PG_URL:?run through tests/integration/pg/pg_env.sh}"
tmp=$(mktemp -d /tmp/duo-pg-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check NAME EXPECTED_EXIT PATTERN -- command...
  local name=$1 want=$2 pat=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$pat" <<<"$out"; then
    echo "FAIL $name: exit $rc (want $want), output: $out"
    fails=$((fails + 1))
  else
    echo "ok $name"
  fi
}

check "init --store not a URL" 2 "--store must be a PostgreSQL URL" -- \
  "$bin" init --data "$tmp/a" --store "sqlite:///x.db"
check "init --store unreachable" 1 "cannot open the PostgreSQL store" -- \
  "$bin" init --data "$tmp/b" --store "postgresql:///nodb?host=$tmp/nosocket"
check "init --store" 0 "PostgreSQL (URL in $tmp/n1/store.url)" -- \
  "$bin" init --data "$tmp/n1" --store "$DUO_TEST_PG_URL"
mode=$(stat -c %a "$tmp/n1/store.url")
[ "$mode" = 600 ] && echo "ok store.url 0600" || { echo "FAIL store.url mode $mode"; fails=$((fails + 1)); }
check "token issue through store.url" 0 "single use" -- "$bin" token issue --data "$tmp/n1" --citizen C1
check "audit verify through store.url" 0 "" -- "$bin" audit verify --data "$tmp/n1"
check "second init on the same database" 1 "already holds a duosign store" -- \
  "$bin" init --data "$tmp/n2" --store "$DUO_TEST_PG_URL"
check "serve --store not a URL" 2 "--store must be a PostgreSQL URL" -- \
  "$bin" serve --data "$tmp/n1" --listen 127.0.0.1:0 --store "mysql://x"
cp -a "$tmp/n1" "$tmp/bad"
echo "not a url" >"$tmp/bad/store.url"
check "damaged store.url" 1 "does not hold a PostgreSQL URL" -- "$bin" key list --data "$tmp/bad"

# Four processes open a fresh database at once: one migration each, versions 1-10.
psql -qX "$DUO_TEST_PG_URL" -c "CREATE DATABASE race" >/dev/null
race_url=${DUO_TEST_PG_URL/\/postgres\?//race?}
pids=()
for i in 1 2 3 4; do
  cp -a "$tmp/n1" "$tmp/r$i"
  rm -f "$tmp/r$i/keys.db.mark" # a new node of the new database: no mark yet
  echo "$race_url" >"$tmp/r$i/store.url"
  "$bin" key list --data "$tmp/r$i" >"$tmp/r$i.out" 2>&1 &
  pids+=($!)
done
race_ok=1
for p in "${pids[@]}"; do wait "$p" || race_ok=0; done
versions=$(psql -qXtA "$race_url" -c "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version")
if [ "$race_ok" = 1 ] && [ "$versions" = "1,2,3,4,5,6,7,8,9,10,11,12" ]; then
  echo "ok four processes migrate a fresh database once ($versions)"
else
  echo "FAIL migration race: processes ok=$race_ok versions=$versions"
  cat "$tmp"/r*.out
  fails=$((fails + 1))
fi
# A node directory (with its high-water mark) pointed at another database:
# the store is older than the node's mark, refused with the fix named.
cp -a "$tmp/n1" "$tmp/moved"
echo "$race_url" >"$tmp/moved/store.url"
check "a node's mark against another database" 18 "OLDER than this node's high-water mark" -- \
  "$bin" key list --data "$tmp/moved"
[ "$fails" -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
