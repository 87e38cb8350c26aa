#!/bin/sh
# duosign-bench stops the duosign-cloud it spawned on every way out (issue 13:
# a failed bench_quick left its daemon running as an orphan):
#   exit    the bench fails (die -> exit 1) with the daemon up: atexit
#   TERM    the bench gets SIGTERM: its signal handler
#   KILL    the bench gets SIGKILL: the daemon's PR_SET_PDEATHSIG
# For each, the daemon's pid (printed by the bench) must disappear. No timing
# is asserted: the wait for the daemon to go is only a safety net (it has a
# 2 s grace period; a daemon still there after 120 s is a leak).
# Usage: daemon_cleanup.sh BENCH DAEMON
set -u
bench=$1
daemon=$2
fail=0
tmp=$(mktemp -d /tmp/duosign-bench-cleanup.XXXXXX)

alive() { # pid: a live duosign-cloud (not a reused pid)
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q duosign-cloud &&
        ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

field() { # log key: value after "# key "
    sed -n "s/^# $2 \([^ ]*\).*/\1/p" "$1" | head -n 1
}

for how in exit TERM KILL; do
    log=$tmp/$how.log
    if [ "$how" = exit ]; then
        "$bench" --quick --bits 2048 --daemon "$daemon" --after-daemon exit 2>"$log" >/dev/null
        rc=$?
        if [ $rc -ne 1 ]; then
            echo "FAIL $how: bench exit status $rc, expected 1"
            fail=1
        fi
    else
        "$bench" --quick --bits 2048 --daemon "$daemon" --after-daemon hang 2>"$log" >/dev/null &
        bpid=$!
        n=0
        while ! grep -q 'after-daemon hang' "$log" 2>/dev/null; do
            if ! kill -0 $bpid 2>/dev/null; then break; fi
            n=$((n + 1))
            [ $n -gt 1200 ] && break
            sleep 0.5
        done
        # control: the daemon is up while the bench waits
        pid=$(field "$log" "duosign-cloud pid")
        if [ -z "$pid" ] || ! alive "$pid"; then
            echo "FAIL $how: no live daemon while the bench waits"
            cat "$log"
            fail=1
        fi
        kill -s "$how" $bpid
        wait $bpid 2>/dev/null
    fi
    pid=$(field "$log" "duosign-cloud pid")
    dir=$(field "$log" "data dir")
    case $pid in '' | *[!0-9]*) pid= ;; esac
    if [ -z "$pid" ]; then
        echo "FAIL $how: the bench did not report a daemon pid"
        cat "$log"
        fail=1
        continue
    fi
    n=0
    while alive "$pid" && [ $n -lt 240 ]; do
        n=$((n + 1))
        sleep 0.5
    done
    if alive "$pid"; then
        echo "FAIL $how: duosign-cloud $pid still running after the bench ended"
        kill -9 "$pid" 2>/dev/null
        fail=1
    else
        echo "ok   $how: duosign-cloud $pid stopped"
    fi
    # the bench removes its data directory itself on exit(); not after a signal
    if [ "$how" = exit ] && [ -n "$dir" ] && [ -d "$dir" ]; then
        echo "FAIL $how: data directory $dir left behind"
        fail=1
    fi
    [ -n "$dir" ] && rm -rf "$dir"
done
rm -rf "$tmp"
exit $fail
