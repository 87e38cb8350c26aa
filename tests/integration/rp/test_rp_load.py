#!/usr/bin/env python3
"""Relying parties under load (issue 17): 100 concurrent RP sessions over 16
citizens' devices (one signing key each), the devices approving from the
duosign CLI in parallel, every RP polling its own session at once. Checks:
no session lost (every one COMPLETE with OK), none mismatched (each result
is its own request's digest, the right citizen, and the signature verifies
with the returned certificate's key).

usage: test_rp_load.py DUOSIGN_CLOUD DUOSIGN
"""
import concurrent.futures as cf
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rp_client as rc  # noqa: E402

CLOUD, DUOSIGN = sys.argv[1], sys.argv[2]
DEVICES, SESSIONS = 16, 100
T = tempfile.mkdtemp(prefix="duo-rp-load-")
D = T + "/d"


def sh(*a):
    p = subprocess.run(list(a), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(a[:3]), p.returncode, p.stdout, p.stderr))
    return p.stdout


def enrol(addr, i):
    """Two keys (auth and sign) in one enrol, each certified inside it: the
    sign key answers the requests."""
    cit = "load-%02d" % i
    st = "%s/%s.state" % (T, cit)
    tok = sh(CLOUD, "token", "issue", "--data", D, "--citizen", cit, "--name", "Load " + cit).split()[-1]
    sh(DUOSIGN, "enroll", "--server", addr, "--ca", D + "/ca.pem", "--paillier-bits", "2048", "--token", tok,
       "--state", st, "--pin1-file", T + "/pin1", "--pin2-file", T + "/pin")
    return cit, st


def main():
    t0 = time.time()
    open(T + "/pin", "w").write("24680\n")
    open(T + "/pin1", "w").write("1357\n")
    sh(CLOUD, "init", "--data", D)
    sh(CLOUD, "rp", "add", "--data", D, "--name", "Load Bank", "--out-dir", T + "/rp")
    srv = subprocess.Popen([CLOUD, "serve", "--data", D, "--listen", "127.0.0.1:0", "--rp-listen", "127.0.0.1:0",
                            "--paillier-bits", "2048", "--prime-pool", "16", "--rp-max-per-citizen", "10"],
                           stdout=subprocess.PIPE, stderr=open(T + "/serve.log", "w"), text=True)
    fails = 0
    try:
        line = srv.stdout.readline()
        addr, rp_addr = line.split()[2], line.rsplit("relying parties on ", 1)[1].strip()
        with cf.ThreadPoolExecutor(4) as ex:
            devices = list(ex.map(lambda i: enrol(addr, i), range(DEVICES)))
        print("ok   %d citizens enrolled and certified (%.0f s)" % (DEVICES, time.time() - t0))
        rp = rc.RP(rp_addr, T + "/rp/server-ca.pem", T + "/rp/client.pem", T + "/rp/client.key")
        reqs = []
        for n in range(SESSIONS):
            cit, st = devices[n % DEVICES]
            dg = os.urandom(32)
            s = rp.call("StartSignature", request_id="load-%d" % n, citizen_id=cit, digest=dg, hash_algorithm=1,
                        display_text="load %d" % n)
            reqs.append((s.session_id, cit, st, dg))
        print("ok   %d sessions started" % SESSIONS)

        def poll(r):
            sid = r[0]
            end = time.time() + 300
            while time.time() < end:
                g = rp.call("GetSession", session_id=sid, timeout_ms=5000)
                if g.state == rc.pb.GetSessionResponse.COMPLETE:
                    return g
            return None

        def device(dv):
            cit, st = dv
            for sid, c, s2, _ in reqs:
                if c == cit:
                    sh(DUOSIGN, "approve", "--state", st, "--request", sid, "--pin-file", T + "/pin")

        with cf.ThreadPoolExecutor(SESSIONS + DEVICES) as ex:
            polls = [ex.submit(poll, r) for r in reqs]
            devs = [ex.submit(device, dv) for dv in devices]
            for f in devs:
                f.result()
            results = [f.result() for f in polls]
        lost = mism = 0
        for (sid, cit, st, dg), g in zip(reqs, results):
            if g is None or g.result != rc.pb.GetSessionResponse.OK:
                lost += 1
                continue
            ok = g.signed_digest == dg and g.citizen_id == cit
            try:
                pub = x509.load_der_x509_certificate(g.certificate).public_key()
                r, s = int.from_bytes(g.signature[:32], "big"), int.from_bytes(g.signature[32:], "big")
                pub.verify(utils.encode_dss_signature(r, s), dg, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
                cert_cit = x509.load_der_x509_certificate(g.certificate).subject.rfc4514_string()
                ok = ok and cit in cert_cit
            except Exception:  # noqa: BLE001
                ok = False
            mism += not ok
        print("%s %d sessions over %d devices: %d lost, %d mismatched (%.0f s in all)"
              % ("ok  " if lost == mism == 0 else "FAIL", SESSIONS, DEVICES, lost, mism, time.time() - t0))
        fails = lost + mism
    finally:
        srv.terminate()
        srv.wait(timeout=60)
    if fails == 0:
        shutil.rmtree(T, ignore_errors=True)
    else:
        print("kept " + T)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
