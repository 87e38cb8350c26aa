# Shell helpers for the CLI end-to-end tests (tests/integration/device/,
# tests/integration/reliability/). Source it after setting T (a temporary
# directory) and CLOUD (path to duosign-cloud):
#   ok/bad MESSAGE            record a check ($fails counts failures)
#   run WANT DESCR -- CMD...  run CMD (stdout in $T/out, stderr in $T/err), check its exit code
#   same A B DESCR            files A and B are identical
#   start_daemon DATA [ARGS]  duosign-cloud serve on 127.0.0.1:0 (or $PORT); sets SERVER_PID, ADDR
#   stop_daemon               SIGTERM it and wait
#   token CITIZEN             a one-time enrolment token (admin CLI on $DATA)
#   resync_sign_ok NAME STATE [resync]  $DUOSIGN signs $T/doc with ${PINF:-$T/pin}, OpenSSL verifies;
#                             "resync": the CLI must say it resynchronised (after a restore)
# The caller's EXIT trap should call stop_daemon.
fails=0
SERVER_PID=
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails+1)); }
run() { # run WANT_EXIT DESCRIPTION -- command...   (stdout/stderr in $T/out, $T/err)
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local got=$?
  if [ "$got" -ne "$want" ]; then bad "$what: exit $got, want $want"; sed 's/^/    /' "$T/err" "$T/out"
  else ok "$what (exit $got)"; fi
}
same() { cmp -s "$1" "$2" && ok "$3" || bad "$3"; }
start_daemon() { # start_daemon DATA_DIR [serve args...]
  local data=$1; shift
  DATA=$data
  "$CLOUD" serve --data "$data" --listen "127.0.0.1:${PORT:-0}" "$@" >"$T/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do grep -q 'listening on' "$T/serve.log" && break; sleep 0.1; done
  ADDR=$(grep -o 'listening on [0-9.]*:[0-9]*' "$T/serve.log" | head -1 | awk '{print $3}')
  [ -n "$ADDR" ] || { echo "daemon did not start"; cat "$T/serve.log"; return 1; }
  echo "daemon at $ADDR (pid $SERVER_PID)"
}
stop_daemon() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  SERVER_PID=
}
token() { "$CLOUD" token issue --data "$DATA" --citizen "$1" 2>/dev/null | tail -1; }
resync_sign_ok() { # resync_sign_ok NAME STATE [resync]
  run 0 "$1 signs" -- "$DUOSIGN" sign --state "$2" --in "$T/doc" --out "$T/sig.$1" --pin-file "${PINF:-$T/pin}"
  if [ "${3:-}" = resync ]; then
    grep -q 'resynchronised' "$T/err" && ok "$1: the CLI says it resynchronised" || bad "$1: no resync line: $(cat "$T/err")"
  fi
  "$DUOSIGN" pubkey --state "$2" --out "$T/pub.$1.pem" >/dev/null 2>&1
  openssl dgst -sha256 -verify "$T/pub.$1.pem" -signature "$T/sig.$1" "$T/doc" >/dev/null 2>&1 &&
    ok "$1: OpenSSL verifies the signature" || bad "$1: signature does not verify"
}
