#!/usr/bin/env python3
"""Relying parties end to end (issue 17): a real duosign-cloud with
--rp-listen, RPs written from proto/relying_party.proto (rp_client.py,
grpcio), the citizen's device by the duosign CLI. Results are verified by
OpenSSL (the signature over the digest with the returned certificate's key)
and by python3-cryptography; the authentication digest is recomputed from
what the RP sent and got (the transcript encoding of docs/RELYING_PARTIES.md).
Time is moved by the daemon's test clock file, never by sleeping.

usage: test_rp_e2e.py DUOSIGN_CLOUD DUOSIGN DUOSIGN_RP
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rp_client as rc  # noqa: E402

CLOUD, DUOSIGN, DUORP = sys.argv[1], sys.argv[2], sys.argv[3]
T = tempfile.mkdtemp(prefix="duo-rp-e2e-")
D = os.path.join(T, "d")
CLOCK = os.path.join(T, "clock")
fails = 0


def ok(msg):
    print("ok   " + msg)


def bad(msg):
    global fails
    fails += 1
    print("FAIL " + msg)


def check(cond, msg):
    (ok if cond else bad)(msg)


def run(*args, want=0, inp=None):
    p = subprocess.run(list(args), capture_output=True, text=True, input=inp)
    if p.returncode != want:
        bad("%s: exit %d, want %d\n%s%s" % (" ".join(args[:3]), p.returncode, want, p.stdout, p.stderr))
    return p


def expect_err(fn, code, duo, what):
    try:
        fn()
        bad(what + ": succeeded")
    except grpc.RpcError as e:
        got = rc.duo_error(e)
        check(e.code() == code and (duo is None or got == duo),
              "%s: %s %s (%s)" % (what, e.code().name, got, e.details()))


def item(t, label, v):
    return bytes([t]) + struct.pack(">I", len(label)) + label + struct.pack(">Q", len(v)) + v


def auth_digest(rp_name, challenge, server_random, code, text):
    m = item(1, b"duosign/v1/rp-auth", b"")
    for lab, v in ((b"rp_name", rp_name.encode()), (b"challenge", challenge), (b"server_random", server_random),
                   (b"code", code.encode()), (b"display_text", text.encode())):
        m += item(2, lab, v)
    return hashlib.sha256(m).digest()


def vcode(digest):
    h = hashlib.sha256(digest).digest()
    return "%04d" % (((h[-2] << 8) | h[-1]) % 10000)


def verify_result(g, digest32, what):
    """The signature verifies over the signed digest with the certificate's
    key: by OpenSSL (pkeyutl) and by python3-cryptography."""
    cert = x509.load_der_x509_certificate(g.certificate)
    pub = cert.public_key()
    r, s = int.from_bytes(g.signature[:32], "big"), int.from_bytes(g.signature[32:], "big")
    der = utils.encode_dss_signature(r, s)
    try:
        pub.verify(der, digest32, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        ok(what + ": signature verifies (cryptography)")
    except Exception as e:  # noqa: BLE001
        bad(what + ": signature does not verify: %r" % e)
    d = tempfile.mkdtemp(dir=T)
    open(d + "/c.der", "wb").write(g.certificate)
    open(d + "/sig", "wb").write(der)
    open(d + "/dg", "wb").write(digest32)
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", d + "/c.der", "-pubkey", "-noout", "-out",
                    d + "/pub.pem"], check=True)
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", d + "/pub.pem", "-in", d + "/dg",
                        "-sigfile", d + "/sig"], capture_output=True, text=True)
    check(p.returncode == 0 and "Success" in p.stdout, what + ": openssl pkeyutl -verify")
    return cert


def main():
    os.makedirs(T, exist_ok=True)
    open(CLOCK, "w").write("0\n")
    run(CLOUD, "init", "--data", D)
    run(CLOUD, "rp", "add", "--data", D, "--name", "Test Bank", "--out-dir", T + "/bank")
    run(CLOUD, "rp", "add", "--data", D, "--name", "Other Shop", "--out-dir", T + "/shop")
    run(CLOUD, "rp", "add", "--data", D, "--name", "Gone", "--out-dir", T + "/gone")
    env = dict(os.environ, DUOSIGN_TEST_CLOCK_FILE=CLOCK)
    log = open(T + "/serve.log", "w")
    srv = subprocess.Popen([CLOUD, "serve", "--data", D, "--listen", "127.0.0.1:0", "--rp-listen", "127.0.0.1:0",
                            "--paillier-bits", "2048", "--prime-pool", "3", "--rp-max-per-citizen", "3"],
                           stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        line = srv.stdout.readline()
        addr = line.split()[2]
        rp_addr = line.rsplit("relying parties on ", 1)[1].strip()
        ok("daemon: " + line.strip())
        run(CLOUD, "rp", "remove", "--data", D, "--name", "Gone")
        scenario(addr, rp_addr)
    finally:
        srv.terminate()
        srv.wait(timeout=60)


def enrol(addr, citizen, state, pins=("1234", "12345")):
    tok = lambda: run(CLOUD, "token", "issue", "--data", D, "--citizen", citizen,  # noqa: E731
                      "--name", "Citizen " + citizen).stdout.strip().splitlines()[-1]
    open(T + "/pin1", "w").write(pins[0] + "\n")
    open(T + "/pin2", "w").write(pins[1] + "\n")
    # One token for both keys; each key's certificate is issued inside its
    # enrolment (branch certs3), so no csr / cert issue step is needed.
    p = run(DUOSIGN, "enroll", "--server", addr, "--ca", D + "/ca.pem", "--paillier-bits", "2048",
            "--token", tok(), "--state", state, "--pin1-file", T + "/pin1", "--pin2-file", T + "/pin2")
    keys = [l.split()[2] for l in p.stdout.splitlines() if l.startswith("enrolled key")]
    for role in ("auth", "sign"):
        c = run(DUOSIGN, "cert", "--key", role, "--state", state)
        check("BEGIN CERTIFICATE" in c.stdout, "the %s key's certificate came with its enrolment" % role)
    return keys


def requests_of(state):
    p = run(DUOSIGN, "requests", "--state", state)
    return [l.split()[1] for l in p.stdout.splitlines() if l.startswith("request ")]


def scenario(addr, rp_addr):
    S = T + "/c.state"
    keys = enrol(addr, "1234567890", S)
    check(len(keys) == 2, "citizen enrolled with two certified keys")
    bank = rc.RP(rp_addr, D + "/ca.pem", T + "/bank/client.pem", T + "/bank/client.key")
    shop = rc.RP(rp_addr, D + "/ca.pem", T + "/shop/client.pem", T + "/shop/client.key")
    gone = rc.RP(rp_addr, D + "/ca.pem", T + "/gone/client.pem", T + "/gone/client.key")
    pin1, pin2 = T + "/pin1", T + "/pin2"

    # ---- document signature, approved from the CLI
    doc = b"loan agreement no. 17\n"
    dg = hashlib.sha256(doc).digest()
    st = bank.call("StartSignature", request_id="sig-1", citizen_id="1234567890", digest=dg, hash_algorithm=1,
                   display_text="Sign the loan agreement")
    check(st.verification_code == vcode(dg), "verification code is the Smart-ID v2 code of the digest")
    again = bank.call("StartSignature", request_id="sig-1", citizen_id="1234567890", digest=dg, hash_algorithm=1,
                      display_text="Sign the loan agreement")
    check(again.session_id == st.session_id, "same request id and fields: the same session")
    expect_err(lambda: bank.call("StartSignature", request_id="sig-1", citizen_id="1234567890", digest=dg,
                                 hash_algorithm=1, display_text="Sign something else"),
               grpc.StatusCode.ALREADY_EXISTS, -127, "same request id, other fields")
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=200)
    check(g.state == rc.pb.GetSessionResponse.RUNNING, "RUNNING before the citizen answers")
    ids = requests_of(S)
    check(st.session_id in ids, "duosign requests lists it")
    p = run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin2)
    check("Test Bank" in p.stdout and "Sign the loan agreement" in p.stdout and st.verification_code in p.stdout,
          "approve shows RP name, text and code")
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=5000)
    check(g.state == rc.pb.GetSessionResponse.COMPLETE and g.result == rc.pb.GetSessionResponse.OK, "result OK")
    check(g.signed_digest == dg and g.citizen_id == "1234567890", "signed digest and citizen id returned")
    cert = verify_result(g, dg, "document signature")
    check("1234567890" in cert.subject.rfc4514_string(), "the certificate names the citizen")
    run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin2, want=24)
    expect_err(lambda: shop.call("GetSession", session_id=st.session_id, timeout_ms=0),
               grpc.StatusCode.NOT_FOUND, -128, "another RP polls the session")

    # ---- SHA-512 digest: the key signs its leftmost 256 bits
    dg5 = hashlib.sha512(doc).digest()
    st = bank.call("StartSignature", request_id="sig-512", citizen_id="1234567890", digest=dg5, hash_algorithm=3,
                   display_text="Sign with SHA-512")
    check(st.verification_code == vcode(dg5), "SHA-512: code over the whole digest")
    run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin2)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=5000)
    check(g.result == rc.pb.GetSessionResponse.OK and g.signed_digest == dg5[:32], "SHA-512 result OK")
    pub = x509.load_der_x509_certificate(g.certificate).public_key()
    r, s = int.from_bytes(g.signature[:32], "big"), int.from_bytes(g.signature[32:], "big")
    try:
        pub.verify(utils.encode_dss_signature(r, s), doc, ec.ECDSA(hashes.SHA512()))
        ok("SHA-512 signature verifies as ecdsa-with-SHA512 over the document")
    except Exception as e:  # noqa: BLE001
        bad("SHA-512 signature: %r" % e)

    # ---- login by citizen id (the authentication key)
    ch = os.urandom(48)
    st = bank.call("StartAuthentication", request_id="auth-1", citizen_id="1234567890", challenge=ch,
                   display_text="Log in to Test Bank")
    check(st.verification_code == vcode(ch) and st.link == "", "login: code from the challenge, no link")
    p = run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin1)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=5000)
    check(g.result == rc.pb.GetSessionResponse.OK, "login result OK")
    want = auth_digest("Test Bank", ch, g.server_random, st.verification_code, "Log in to Test Bank")
    check(g.signed_digest == want, "the signed digest is the canonical structure the RP recomputes")
    verify_result(g, want, "login")

    # ---- anonymous login by link
    ch = os.urandom(32)
    st = bank.call("StartAuthentication", request_id="anon-1", challenge=ch, display_text="Log in (QR)")
    check(st.link.startswith("duosign://claim/"), "anonymous login: a link")
    run(DUOSIGN, "claim", st.link, "--state", S, "--pin-file", pin1)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=5000)
    check(g.result == rc.pb.GetSessionResponse.OK and g.citizen_id == "1234567890", "anonymous login: OK, citizen")
    verify_result(g, auth_digest("Test Bank", ch, g.server_random, st.verification_code, "Log in (QR)"), "anon")
    run(DUOSIGN, "claim", st.link, "--state", S, "--pin-file", pin1, want=24)
    run(DUOSIGN, "claim", "https://evil/x", "--state", S, "--pin-file", pin1, want=2)

    # ---- refusal, cancel, timeout
    st = bank.call("StartSignature", request_id="sig-refuse", citizen_id="1234567890", digest=os.urandom(32),
                   hash_algorithm=1, display_text="Refuse me")
    run(DUOSIGN, "refuse", "--state", S, "--request", st.session_id)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=2000)
    check(g.result == rc.pb.GetSessionResponse.USER_REFUSED and not g.signature, "refused: USER_REFUSED, nothing")
    run(DUOSIGN, "refuse", "--state", S, "--request", st.session_id, want=24)
    st = bank.call("StartSignature", request_id="sig-cancel", citizen_id="1234567890", digest=os.urandom(32),
                   hash_algorithm=1, display_text="Cancel me")
    bank.call("CancelSession", session_id=st.session_id)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=0)
    check(g.result == rc.pb.GetSessionResponse.CANCELLED, "cancelled: CANCELLED")
    run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin2, want=24)
    st = bank.call("StartSignature", request_id="sig-late", citizen_id="1234567890", digest=os.urandom(32),
                   hash_algorithm=1, display_text="Too late")
    open(CLOCK, "w").write("121\n")
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=0)
    check(g.result == rc.pb.GetSessionResponse.TIMEOUT, "after 120 s: TIMEOUT")
    run(DUOSIGN, "approve", "--state", S, "--request", st.session_id, "--pin-file", pin2, want=24)
    open(CLOCK, "w").write("121\n")
    open(CLOCK, "w").write("450\n")
    expect_err(lambda: bank.call("GetSession", session_id=st.session_id, timeout_ms=0),
               grpc.StatusCode.NOT_FOUND, -128, "result erased after 5 minutes")
    open(CLOCK, "w").write("450\n")

    # ---- duosign-rp: sign a document and log in by link, the citizen approving from the CLI
    rpargs = ["--server", rp_addr, "--ca", T + "/bank/server-ca.pem", "--cert", T + "/bank/client.pem", "--key",
              T + "/bank/client.key", "--wait", "60"]
    open(T + "/contract.txt", "wb").write(b"contract for duosign-rp\n")
    rp = subprocess.Popen([DUORP, "sign", "--citizen", "1234567890", "--in", T + "/contract.txt", "--text",
                           "Sign the contract", "--out", T + "/contract.sig", "--cert-out", T + "/signer.pem"]
                          + rpargs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = rp.stdout.readline().split()[-1]
    sid = rp.stdout.readline().split()[-1]
    p = run(DUOSIGN, "approve", "--state", S, "--request", sid, "--pin-file", pin2)
    check(code in p.stdout, "duosign-rp's code is the one the device shows")
    out, err = rp.communicate(timeout=60)
    check(rp.returncode == 0 and "signature verified" in out, "duosign-rp sign: OK and verified\n" + out + err)
    subprocess.run(["openssl", "x509", "-in", T + "/signer.pem", "-pubkey", "-noout", "-out", T + "/signer.pub"],
                   check=True)
    v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", T + "/signer.pub", "-signature", T + "/contract.sig",
                        T + "/contract.txt"], capture_output=True, text=True)
    check(v.returncode == 0 and "Verified OK" in v.stdout, "openssl dgst -verify of duosign-rp's signature")
    rp = subprocess.Popen([DUORP, "auth", "--text", "Log in with duosign-rp"] + rpargs, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    link = rp.stdout.readline().split()[-1]
    run(DUOSIGN, "claim", link, "--state", S, "--pin-file", pin1)
    out, err = rp.communicate(timeout=60)
    check(rp.returncode == 0 and "citizen 1234567890" in out and "signature verified" in out,
          "duosign-rp auth by link: OK, citizen, verified\n" + out + err)
    rp = subprocess.Popen([DUORP, "sign", "--citizen", "1234567890", "--in", T + "/contract.txt"] + rpargs,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rp.stdout.readline()
    sid = rp.stdout.readline().split()[-1]
    run(DUOSIGN, "refuse", "--state", S, "--request", sid)
    out, err = rp.communicate(timeout=60)
    check(rp.returncode == 24 and "USER_REFUSED" in out, "duosign-rp: a refusal exits 24")
    run(DUORP, "sign", "--citizen", "1", *rpargs, want=2)
    run(DUORP, "sign", "--citizen", "1", "--in", T + "/nope", *rpargs, want=3)
    run(DUORP, "login", *rpargs, want=2)

    # ---- bad input
    expect_err(lambda: bank.call("StartSignature", request_id="b1", citizen_id="1234567890", digest=b"x" * 31,
                                 hash_algorithm=1, display_text="t"), grpc.StatusCode.INVALID_ARGUMENT, -125,
               "digest of the wrong length")
    expect_err(lambda: bank.call("StartSignature", request_id="b2", citizen_id="1234567890", digest=b"x" * 32,
                                 hash_algorithm=2, display_text="t"), grpc.StatusCode.INVALID_ARGUMENT, -125,
               "digest length of another algorithm")
    expect_err(lambda: bank.call("StartSignature", request_id="b3", citizen_id="1234567890", digest=b"x" * 32,
                                 hash_algorithm=1, display_text="x" * 201), grpc.StatusCode.INVALID_ARGUMENT, -123,
               "display text too long")
    expect_err(lambda: bank.call("StartSignature", request_id="b4", citizen_id="1234567890", digest=b"x" * 32,
                                 hash_algorithm=1, display_text="a\x1b[2Jb"), grpc.StatusCode.INVALID_ARGUMENT, -123,
               "display text with an escape sequence")
    # Not UTF-8: written by hand (protobuf refuses to encode it): request_id, citizen_id, digest, hash, text.
    raw = (b"\x0a\x02b5" + b"\x12\x0a1234567890" + b"\x1a\x20" + b"x" * 32 + b"\x20\x01" + b"\x2a\x02\xff\xfe")
    expect_err(lambda: bank.call_raw("StartSignature", raw), grpc.StatusCode.INVALID_ARGUMENT, None,
               "display text not UTF-8")
    expect_err(lambda: bank.call("StartAuthentication", request_id="b6", challenge=b"x" * 31, display_text="t"),
               grpc.StatusCode.INVALID_ARGUMENT, -124, "challenge of 31 bytes")
    expect_err(lambda: bank.call("StartAuthentication", request_id="b7", challenge=b"x" * 65, display_text="t"),
               grpc.StatusCode.INVALID_ARGUMENT, -124, "challenge of 65 bytes")
    expect_err(lambda: bank.call("StartSignature", request_id="", citizen_id="1", digest=b"x" * 32,
                                 hash_algorithm=1, display_text="t"), grpc.StatusCode.INVALID_ARGUMENT, -126,
               "empty request id")
    expect_err(lambda: bank.call("GetSession", session_id="zz", timeout_ms=0), grpc.StatusCode.NOT_FOUND, -128,
               "malformed session id")
    # RedeemPresentation (branch codes; its own test: test_rp_redeem.py): a
    # request without a document type is malformed.
    expect_err(lambda: bank.call("RedeemPresentation", code="x"), grpc.StatusCode.INVALID_ARGUMENT, -13,
               "RedeemPresentation without doc_type")
    expect_err(lambda: gone.call("StartSignature", request_id="g1", citizen_id="1234567890", digest=b"x" * 32,
                                 hash_algorithm=1, display_text="t"), grpc.StatusCode.UNAUTHENTICATED, -120,
               "a removed RP")
    nocert = rc.RP(rp_addr, D + "/ca.pem")
    expect_err(lambda: nocert.call("GetSession", session_id="0" * 32, timeout_ms=0, timeout=10),
               grpc.StatusCode.UNAVAILABLE, None, "no client certificate: the TLS handshake fails")
    st = bank.call("StartSignature", request_id="unknown-citizen", citizen_id="999", digest=b"y" * 32,
                   hash_algorithm=1, display_text="t")
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=0)
    check(g.result == rc.pb.GetSessionResponse.ACCOUNT_UNUSABLE, "a citizen without keys: ACCOUNT_UNUSABLE")

    # ---- flood: the per-citizen limit, and the device still works
    for i in range(3):
        bank.call("StartSignature", request_id="flood-%d" % i, citizen_id="1234567890", digest=os.urandom(32),
                  hash_algorithm=1, display_text="flood")
    expect_err(lambda: shop.call("StartSignature", request_id="flood-x", citizen_id="1234567890",
                                 digest=os.urandom(32), hash_algorithm=1, display_text="flood"),
               grpc.StatusCode.RESOURCE_EXHAUSTED, -129, "a fourth open request to one citizen")
    run(DUOSIGN, "status", "--state", S)
    open(T + "/doc", "wb").write(doc)
    run(DUOSIGN, "sign", "--state", S, "--in", T + "/doc", "--out", T + "/doc.sig", "--pin-file", pin2)
    ok("the citizen's device still signs during the flood")
    for i in range(3):
        ids = requests_of(S)
        if ids:
            run(DUOSIGN, "refuse", "--state", S, "--request", ids[0])

    # ---- another citizen's device
    S2 = T + "/c2.state"
    enrol(addr, "5555555555", S2, pins=("4321", "54321"))
    st = bank.call("StartSignature", request_id="for-1", citizen_id="1234567890", digest=os.urandom(32),
                   hash_algorithm=1, display_text="Not yours")
    check(st.session_id not in requests_of(S2), "another citizen's device does not see the request")
    p = run(DUOSIGN, "refuse", "--state", S2, "--request", st.session_id, want=1)
    check("RP_WRONG_CITIZEN" in p.stderr, "another citizen's refusal: DUO_E_RP_WRONG_CITIZEN")
    run(DUOSIGN, "approve", "--state", S2, "--request", st.session_id, "--pin-file", T + "/pin2", want=24)
    g = bank.call("GetSession", session_id=st.session_id, timeout_ms=0)
    check(g.state == rc.pb.GetSessionResponse.RUNNING, "the request is untouched")
    # The audit log has the requests, answers and results.
    p = run(CLOUD, "audit", "list", "--data", D)
    for kind in ("rp.add", "rp.remove", "rp.request", "rp.answer", "rp.result"):
        check(kind in p.stdout, "audit has %s entries" % kind)
    check('text "Sign the loan agreement"' in p.stdout, "audit records what was shown")


if __name__ == "__main__":
    t0 = time.time()
    try:
        main()
    finally:
        print("%d failure(s), %.0f s" % (fails, time.time() - t0))
        if fails == 0:
            shutil.rmtree(T, ignore_errors=True)
        else:
            print("kept " + T)
    sys.exit(1 if fails else 0)
