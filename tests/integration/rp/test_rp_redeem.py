"""RelyingParty.RedeemPresentation end to end (issue 19): a real daemon with
--rp-listen, a relying party registered with `duosign-cloud rp add`, a
citizen enrolled with the duosign CLI and given a passport in the registry,
`duosign present --once --png` decoded by zbarimg, then redeemed over gRPC
with the RP's client certificate: once, and refused the second time; two
threads redeeming one code at once (exactly one wins); another document type;
a malformed code; the barcode form; guessing runs into the per-RP limit;
a caller without a registered certificate is refused.

Also `duosign-rp redeem CODE` (the tester's command): once, then exit 26,
and its usage mistakes.

Usage: test_rp_redeem.py DUOSIGN_CLOUD DUOSIGN DUOSIGN_RP
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from rp_client import RP, duo_error  # noqa: E402

CLOUD, DUOSIGN, DUOSIGN_RP = sys.argv[1], sys.argv[2], sys.argv[3]
T = tempfile.mkdtemp(prefix="duo-rp-redeem-")
fails = 0

E_CODE_UNKNOWN, E_CODE_USED, E_CODE_DOC_MISMATCH, E_RATE_LIMITED = -142, -144, -145, -146


def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails += 1


def run(*args, ok=0):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if p.returncode != ok:
        print("    %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def refused(rp, want, what, **fields):
    try:
        rp.call("RedeemPresentation", **fields)
        check(False, what + ": accepted")
    except grpc.RpcError as e:
        check(duo_error(e) == want, "%s: duo-error %s (want %d): %s" % (what, duo_error(e), want, e.details()))


def present(state, png=None):
    args = [DUOSIGN, "present", "--state", state, "--doc", "passport", "--once"] + (["--png", png] if png else [])
    out = run(*args).stdout
    code = [ln.split()[1] for ln in out.splitlines() if ln.startswith("code: ")][0]
    bar = [ln.split()[-1] for ln in out.splitlines() if ln.startswith("barcode")][0]
    return code, bar


data = os.path.join(T, "d")
daemon = None
try:
    run(CLOUD, "init", "--data", data)
    run(CLOUD, "rp", "add", "--data", data, "--name", "Border Guard", "--out-dir", os.path.join(T, "rp"))
    rp_port = free_port()
    log = open(os.path.join(T, "serve.log"), "w")
    daemon = subprocess.Popen([CLOUD, "serve", "--data", data, "--listen", "127.0.0.1:0", "--paillier-bits", "2048",
                               "--rp-listen", "127.0.0.1:%d" % rp_port], stdout=log, stderr=subprocess.STDOUT)
    addr = None
    for _ in range(300):
        with open(os.path.join(T, "serve.log")) as f:
            for ln in f:
                if "listening on" in ln:
                    addr = ln.split("listening on")[1].split()[0]
        if addr:
            break
        time.sleep(0.1)
    check(addr is not None, "daemon started")
    tok = run(CLOUD, "token", "issue", "--data", data, "--citizen", "C-77").stdout.strip().splitlines()[-1]
    state = os.path.join(T, "c.state")
    with open(os.path.join(T, "pin"), "w") as f:
        f.write("12345\n")
    run(DUOSIGN, "enroll", "--server", addr, "--ca", os.path.join(data, "ca.pem"), "--token", tok, "--state", state,
        "--pin-file", os.path.join(T, "pin"), "--paillier-bits", "2048")
    run(CLOUD, "citizen", "set", "--data", data, "--citizen", "C-77", "--doc", "passport",
        "--attr", "name=Taras Shevchenko", "--attr", "birth_date=1814-03-09")

    rpd = os.path.join(T, "rp")
    rp = None
    for _ in range(100):  # the RP port opens with the daemon
        try:
            rp = RP("127.0.0.1:%d" % rp_port, os.path.join(rpd, "server-ca.pem"), os.path.join(rpd, "client.pem"),
                    os.path.join(rpd, "client.key"))
            grpc.channel_ready_future(rp.channel).result(timeout=0.5)
            break
        except grpc.FutureTimeoutError:
            rp = None
    check(rp is not None, "RP connected with its client certificate")

    # ---- the PNG decoded by zbarimg, redeemed once
    png = os.path.join(T, "q.png")
    code, bar = present(state, png)
    dec = run("zbarimg", "--quiet", "--raw", png).stdout.strip()
    check(dec == code, "zbarimg reads the code from the PNG")
    refused(rp, E_CODE_DOC_MISMATCH, "another document type", code=dec, doc_type="id_card")
    r = rp.call("RedeemPresentation", code=dec, doc_type="passport")
    attrs = {a.name: a.value for a in r.attributes}
    check(r.citizen_id == "C-77" and r.doc_type == "passport" and attrs.get("name") == "Taras Shevchenko",
          "redeemed: the document's attributes")
    check(abs(r.issued_at - time.time()) < 600, "and the time the code was made")
    refused(rp, E_CODE_USED, "the second redemption", code=dec, doc_type="passport")
    refused(rp, E_CODE_USED, "its barcode form", code=bar, doc_type="passport")

    # ---- the barcode form redeems
    code2, bar2 = present(state)
    r = rp.call("RedeemPresentation", code=bar2, doc_type="passport")
    check(r.citizen_id == "C-77", "redeemed by the EAN-13 digits")

    # ---- two threads, one code: exactly one wins
    for rnd in range(5):
        code3, _ = present(state)
        res = []
        go = threading.Barrier(2)

        def redeem():
            go.wait()
            try:
                rp.call("RedeemPresentation", code=code3, doc_type="passport")
                res.append(0)
            except grpc.RpcError as e:
                res.append(duo_error(e))
        ts = [threading.Thread(target=redeem) for _ in range(2)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        check(sorted(res) == [E_CODE_USED, 0], "round %d: one of two concurrent redeemers wins (%s)" % (rnd, res))

    # ---- duosign-rp redeem
    rpc = ["--server", "127.0.0.1:%d" % rp_port, "--ca", os.path.join(rpd, "server-ca.pem"),
           "--cert", os.path.join(rpd, "client.pem"), "--key", os.path.join(rpd, "client.key")]
    code5, bar5 = present(state)
    p = run(DUOSIGN_RP, "redeem", code5, "--doc", "passport", *rpc)
    check(p.returncode == 0 and "name = Taras Shevchenko" in p.stdout and "code made at:" in p.stdout,
          "duosign-rp redeem: the document")
    p = run(DUOSIGN_RP, "redeem", bar5, *rpc, ok=26)
    check(p.returncode == 26 and "already redeemed" in p.stderr, "duosign-rp redeem again: exit 26, already redeemed")
    p = run(DUOSIGN_RP, "redeem", *rpc, ok=2)
    check(p.returncode == 2 and "CODE" in p.stderr, "duosign-rp redeem without CODE: exit 2")
    p = run(DUOSIGN_RP, "redeem", code5, "--citizen", "x", *rpc, ok=2)
    check(p.returncode == 2, "duosign-rp redeem --citizen: exit 2")
    p = run(DUOSIGN_RP, "sign", "--doc", "passport", *rpc, ok=2)
    check(p.returncode == 2 and "--doc is for redeem" in p.stderr, "duosign-rp sign --doc: exit 2")

    # ---- malformed; a caller without a registered certificate
    refused(rp, E_CODE_UNKNOWN, "a malformed code", code="not-a-code", doc_type="passport")
    anon = RP("127.0.0.1:%d" % rp_port, os.path.join(rpd, "server-ca.pem"))
    try:
        anon.call("RedeemPresentation", code=code2, doc_type="passport", timeout=5)
        check(False, "no client certificate: accepted")
    except grpc.RpcError as e:
        check(e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED),
              "no client certificate: refused (%s)" % e.code())
    anon.close()

    # ---- guessing: misses run out (burst 20), then even a good code waits
    code4, _ = present(state)
    misses = 0
    for i in range(30):
        try:
            rp.call("RedeemPresentation", code="%012d" % i + "0", doc_type="passport")
        except grpc.RpcError as e:
            if duo_error(e) == E_RATE_LIMITED:
                break
            misses += 1
    check(misses <= 20, "guessing is cut off after %d misses" % misses)
    refused(rp, E_RATE_LIMITED, "then a good code is refused too", code=code4, doc_type="passport")
    audit = run(CLOUD, "audit", "list", "--data", data).stdout
    check("redeemed by relying party Border Guard" in audit, "redemptions audited with the RP's name")
    check("relying party Border Guard was refused" in audit, "refusals audited with the RP's name")
    rp.close()
finally:
    if daemon:
        daemon.terminate()
        daemon.wait()
    shutil.rmtree(T, ignore_errors=True)

print("%d failure(s)" % fails)
sys.exit(1 if fails else 0)
