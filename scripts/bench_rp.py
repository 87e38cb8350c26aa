#!/usr/bin/env python3
"""Relying-party figures (issue 17; docs/BENCHMARKS.md "Relying parties"):

  rp.latency_ms   an RP's StartSignature to its GetSession result OK, the
                  citizen approving at once from the CLI (one `duosign
                  approve` process: WaitRequests, the PIN KDF, SignStart,
                  SignFinish, the state saved), median of N
  plain.sign_ms   the same citizen's `duosign sign` of a document (the
                  floor: what an approval costs without an RP), median of N
  daemon CPU ms per RP signature and per plain signature: utime+stime of
  the duosign-cloud process (/proc/PID/stat) over N of each, divided by N,
  each run started once the daemon is idle (its Paillier pool refilled).

usage: bench_rp.py BUILD_BIN_DIR [N]
"""
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration", "rp"))
import rp_client as rc  # noqa: E402

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10
CLOUD, DUO = BIN + "/duosign-cloud", BIN + "/duosign"
T = tempfile.mkdtemp(prefix="duo-bench-rp-")
D = T + "/d"
TICK = os.sysconf("SC_CLK_TCK")


def sh(*a):
    return subprocess.run(list(a), check=True, capture_output=True, text=True).stdout


def cpu_ms(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000.0 / TICK


def wait_idle(pid, limit_s=300):
    """Until the daemon is idle (its Paillier pool refilled after the
    enrolment): less than 20 ms of CPU in a second."""
    end = time.time() + limit_s
    while time.time() < end:
        a = cpu_ms(pid)
        time.sleep(1)
        if cpu_ms(pid) - a < 20:
            return
    print("# warning: the daemon did not become idle", file=sys.stderr)


sh(CLOUD, "init", "--data", D)
sh(CLOUD, "rp", "add", "--data", D, "--name", "Bench Bank", "--out-dir", T + "/rp")
srv = subprocess.Popen([CLOUD, "serve", "--data", D, "--listen", "127.0.0.1:0", "--rp-listen", "127.0.0.1:0",
                        "--paillier-bits", "2048", "--rp-max-per-citizen", "1000"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
try:
    line = srv.stdout.readline()
    addr, rp_addr = line.split()[2], line.rsplit("relying parties on ", 1)[1].strip()
    tok = lambda: sh(CLOUD, "token", "issue", "--data", D, "--citizen", "42", "--name", "Bench").split()[-1]  # noqa
    open(T + "/p1", "w").write("1234\n")
    open(T + "/p2", "w").write("12345\n")
    S = T + "/s"
    out = sh(DUO, "enroll", "--server", addr, "--ca", D + "/ca.pem", "--paillier-bits", "2048", "--auth-token",
             tok(), "--token", tok(), "--state", S, "--pin1-file", T + "/p1", "--pin2-file", T + "/p2")
    kid = [l.split()[2] for l in out.splitlines() if l.startswith("enrolled key")][1]
    sh(DUO, "csr", "--state", S, "--out", T + "/c.csr", "--pin-file", T + "/p2")
    sh(CLOUD, "cert", "issue", "--data", D, "--key-id", kid, "--role", "sign", "--csr", T + "/c.csr", "--out",
       T + "/c.pem")
    rp = rc.RP(rp_addr, T + "/rp/server-ca.pem", T + "/rp/client.pem", T + "/rp/client.key")
    open(T + "/doc", "wb").write(b"bench document\n")
    lat, plain = [], []
    wait_idle(srv.pid)
    c0 = cpu_ms(srv.pid)
    for i in range(N):
        t0 = time.perf_counter()
        st = rp.call("StartSignature", request_id="b%d" % i, citizen_id="42", digest=os.urandom(32),
                     hash_algorithm=1, display_text="bench")
        sh(DUO, "approve", "--state", S, "--request", st.session_id, "--pin-file", T + "/p2")
        g = rp.call("GetSession", session_id=st.session_id, timeout_ms=10000)
        assert g.result == 1, g
        lat.append((time.perf_counter() - t0) * 1000)
    c1 = cpu_ms(srv.pid)
    wait_idle(srv.pid)
    c1b = cpu_ms(srv.pid)
    for i in range(N):
        t0 = time.perf_counter()
        sh(DUO, "sign", "--state", S, "--in", T + "/doc", "--out", T + "/doc.sig", "--pin-file", T + "/p2")
        plain.append((time.perf_counter() - t0) * 1000)
    c2 = cpu_ms(srv.pid)
    print("# relying parties, P-256, Paillier 2048, N=%d, %s" % (N, os.popen("uptime").read().strip()))
    print("%-44s %10.1f ms (min %.1f, max %.1f)" % ("rp.latency (start -> OK, CLI approve)",
                                                    statistics.median(lat), min(lat), max(lat)))
    print("%-44s %10.1f ms (min %.1f, max %.1f)" % ("plain.sign (duosign sign, CLI)", statistics.median(plain),
                                                    min(plain), max(plain)))
    print("%-44s %10.1f ms" % ("daemon CPU per RP signature", (c1 - c0) / N))
    print("%-44s %10.1f ms" % ("daemon CPU per plain signature", (c2 - c1b) / N))
    print('{"bench": "duosign-rp", "n": %d, "rp_latency_ms": %.1f, "plain_sign_ms": %.1f, '
          '"daemon_cpu_ms_rp": %.2f, "daemon_cpu_ms_plain": %.2f}'
          % (N, statistics.median(lat), statistics.median(plain), (c1 - c0) / N, (c2 - c1b) / N))
finally:
    srv.terminate()
    srv.wait(timeout=60)
    subprocess.run(["rm", "-rf", T])
