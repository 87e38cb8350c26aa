#!/usr/bin/env bash
# `cmake --install` (DESTDIR, a prefix of its own) installs duosign-cloud
# beside duosign, the libraries, the headers, the daemon's README and a
# systemd unit with sandboxing; every installed program answers --version
# with the project's version; the unit passes `systemd-analyze verify` (or,
# without systemd, parses as sections of Key=Value lines).
# Usage: install_daemon_check.sh BUILD_DIR VERSION
set -euo pipefail
build=${1:?build dir}
version=${2:?project version}
D=$(mktemp -d /tmp/duo-install-daemon-XXXXXX)
trap 'rm -rf "$D"' EXIT
prefix=/opt/duosign-test
DESTDIR="$D" cmake --install "$build" --prefix "$prefix" >/dev/null
P="$D$prefix"
fail() { echo "FAIL $*"; exit 1; }

# ---- files
for f in bin/duosign-cloud bin/duosign include/duosign/device.h include/duosign/errors.h \
         include/duosign/device_grpc.h lib/systemd/system/duosign-cloud.service share/doc/duosign/duosign-cloud.md; do
  [ -e "$P/$f" ] || fail "$f not installed"
done
ls "$P"/lib*/libduosign-device.so* "$P"/lib*/libduosign-device-grpc.so* >/dev/null 2>&1 || fail "shared libraries not installed"
ls "$P"/lib*/libduosign-device.a >/dev/null 2>&1 || fail "static library not installed"
echo "ok   binaries, libraries, headers, unit and README installed"

# ---- --version on every program
for prog in duosign-cloud duosign; do
  out=$("$P/bin/$prog" --version)
  [ "$out" = "$prog $version" ] || fail "$prog --version said '$out', want '$prog $version'"
done
echo "ok   --version: duosign-cloud $version, duosign $version"

# ---- the installed daemon runs: a data directory, serve, SIGTERM drains
"$P/bin/duosign-cloud" init --data "$D/data" >/dev/null
"$P/bin/duosign-cloud" serve --data "$D/data" --listen 127.0.0.1:0 --paillier-bits 2048 --prime-pool 1 \
  --log-format json --log-file "$D/log" >"$D/out" 2>"$D/err" &
pid=$!
for _ in $(seq 600); do grep -q "listening on" "$D/out" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on 127.0.0.1:" "$D/out" || fail "installed daemon did not start: $(cat "$D/err")"
kill -TERM $pid
wait $pid || fail "installed daemon did not drain cleanly (exit $?)"
grep -q '"stopped cleanly' "$D/log" || fail "no 'stopped cleanly' line in its log"
echo "ok   installed duosign-cloud serves and drains on SIGTERM"

# ---- the unit
unit="$P/lib/systemd/system/duosign-cloud.service"
grep -qx "ExecStart=$prefix/bin/duosign-cloud serve .*" "$unit" || fail "ExecStart does not name $prefix/bin/duosign-cloud"
for kv in User=duosign Group=duosign NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
          StateDirectory=duosign 'ExecReload=/bin/kill -HUP $MAINPID' KillSignal=SIGTERM CapabilityBoundingSet= \
          WantedBy=multi-user.target; do
  grep -qxF "$kv" "$unit" || fail "unit lacks '$kv'"
done
# Every line: a comment, a [Section] or Key=Value.
awk '/^[[:space:]]*(#|;|$)/ {next} /^\[(Unit|Service|Install)\]$/ {s[$0]=1; next}
     /^[A-Za-z][A-Za-z0-9]*=/ {next} {print "bad line: " $0; bad=1}
     END {if (!s["[Unit]"] || !s["[Service]"] || !s["[Install]"]) {print "missing section"; bad=1}; exit bad}' "$unit" ||
  fail "unit does not parse"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify looks for ExecStart's binary on this machine: point it at ours.
  mkdir -p "$D/units"
  sed "s|$prefix/bin/|$P/bin/|g" "$unit" >"$D/units/duosign-cloud.service"
  systemd-analyze verify "$D/units/duosign-cloud.service" || fail "systemd-analyze verify"
  echo "ok   unit: sandboxing options, systemd-analyze verify"
else
  echo "ok   unit: sandboxing options, parsed (no systemd-analyze here)"
fi
