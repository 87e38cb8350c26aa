#!/usr/bin/python3
"""Hostile clients against duosign-cloud, through the wire (issue 7 item 3).

usage: test_hostile.py PATH/TO/duosign-cloud PATH/TO/duosign PROTO_DIR STUB_DIR

The attacker is written here from the .proto alone (python3-grpcio). It
never links the device library and never computes a MAC: it only has what a
network observer or a malicious client would have, i.e. bytes of requests it
captured. To get real requests (a real enrolled key, a real signing session)
the legitimate C device (the `duosign` CLI) talks to the daemon through a
recording gRPC proxy in this process; the proxy can also hold back a request
(the CLI then fails cleanly and keeps its state) and play the attacker's
variants against the live session instead.

For every RPC: empty, truncated and oversized messages, random bytes, valid
messages with each field mutated (wrong length, flipped bits, another valid
point); replays of a captured SignFinish; a SignFinish for another key's
session; floods of wrong-MAC requests. Expectations, checked each time:
  - an error status, never a SignFinishResponse (no signature released);
  - the daemon never crashes: same pid, health SERVING at the end, nothing
    on its stderr that looks like a sanitizer or crash report;
  - no PIN attempt counted for an unauthenticated request: after the floods
    the key is active with all PIN attempts left (`duosign status`, MAC'd by
    the real device), `duosign-cloud key show` says pin failures 0, the
    audit log has no pin_failure entry and the chain verifies, and the
    legitimate device still signs (OpenSSL-verified).
"""
import concurrent.futures
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLOUD, DEV, PROTO, STUBS = sys.argv[1:5]
# Generous deadlines for the legitimate device's calls: under ASan on a busy
# machine a Paillier key for an enrolment can take minutes to generate.
SLOW = int(os.environ.get("DUO_HOSTILE_SLOW_S", "600"))
failures = 0
checks = 0
rnd = random.Random(int(os.environ.get("DUO_HOSTILE_SEED", "7")))


def check(cond, what, quiet=False):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)
    elif not quiet:
        print("ok  ", what, flush=True)
    return cond


os.makedirs(STUBS, exist_ok=True)
subprocess.run(["protoc", "-I" + PROTO, "--python_out=" + STUBS, "--grpc_python_out=" + STUBS,
                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                os.path.join(PROTO, "duosign.proto"), os.path.join(PROTO, "health.proto")], check=True)
sys.path.insert(0, STUBS)
import grpc  # noqa: E402
import duosign_pb2 as pb  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

SVC = "/duosign.v1.DuoSign/"
REQ = {
    "EnrollStart": pb.EnrollStartRequest, "EnrollKeyShare": pb.EnrollKeyShareRequest,
    "EnrollPdlChallenge": pb.EnrollPdlChallengeRequest, "EnrollPdlOpen": pb.EnrollPdlOpenRequest,
    "EnrollConfirm": pb.EnrollConfirmRequest, "SignStart": pb.SignStartRequest, "SignFinish": pb.SignFinishRequest,
    "Refresh": pb.RefreshRequest, "Revoke": pb.RevokeRequest, "Status": pb.StatusRequest,
    "IssueCertificate": pb.IssueCertificateRequest, "WaitRequests": pb.WaitRequestsRequest,
    "RefuseRequest": pb.RefuseRequestRequest, "ClaimLink": pb.ClaimLinkRequest,
    "Resync": pb.ResyncRequest,
}
# secp256k1 generator, compressed: a valid point that is nobody's share.
G = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
# A valid (point, scalar) dlog proof shape with the generator as A.
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
           grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
           grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE}

# The attacker here works on captured plain requests: the legitimate CLI
# plays a device from before the inner channel (issue 12; a test build's
# DUOSIGN_TEST_LEGACY_PLAIN), whose plain path the daemon keeps open unless
# serve --require-channel. Sealed traffic is tampered with in
# tests/integration/device/test_inner_oracle.c.
os.environ["DUOSIGN_TEST_LEGACY_PLAIN"] = "1"
tmp = tempfile.mkdtemp(prefix="duo-hostile-")
data = os.path.join(tmp, "data")


def cloud(*args):
    return subprocess.run([CLOUD] + list(args), capture_output=True, text=True, timeout=120)


r = cloud("init", "--data", data)
assert r.returncode == 0, r.stderr

daemon = subprocess.Popen([CLOUD, "serve", "--data", data, "--listen", "127.0.0.1:0", "--insecure",
                           "--paillier-bits", "2048", "--prime-pool", "2"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
line = daemon.stdout.readline()
port = int(line.split("127.0.0.1:")[1].split()[0])
pid0 = daemon.pid


def _reap():  # never leave a daemon behind, whatever path the test exits by
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()


import atexit  # noqa: E402
atexit.register(_reap)
err_lines = []
threading.Thread(target=lambda: err_lines.extend(daemon.stderr), daemon=True).start()
threading.Thread(target=lambda: daemon.stdout.read(), daemon=True).start()
up = grpc.insecure_channel("127.0.0.1:%d" % port, options=[("grpc.max_send_message_length", 8 << 20),
                                                              ("grpc.max_receive_message_length", 8 << 20)])
grpc.channel_ready_future(up).result(timeout=30)


def call_full(method, payload, timeout=30):
    """Raw bytes to the daemon. Returns (response bytes or None, code, details, the duo-* trailers)."""
    try:
        resp = up.unary_unary(SVC + method)(payload, timeout=timeout)
        return resp, grpc.StatusCode.OK, "", ()
    except grpc.RpcError as e:
        md = tuple((k, v) for k, v in (e.trailing_metadata() or ()) if k.startswith("duo-"))
        return None, e.code(), e.details(), md


def call(method, payload, timeout=30):
    """Raw bytes to the daemon. Returns (response bytes or None, code, details, duo-error)."""
    resp, code, details, md = call_full(method, payload, timeout)
    return resp, code, details, dict(md).get("duo-error")


def expect_error(method, payload, what, quiet=True):
    resp, code, details, de = call(method, payload)
    ok = resp is None and code in ALLOWED and (de is not None or code == grpc.StatusCode.RESOURCE_EXHAUSTED)
    check(ok, "%s %s -> %s %s (%s)" % (method, what, code.name, de, (details or "")[:90]), quiet=quiet)
    return code, details


# ---------------------------------------------------------------- the proxy
class Proxy(grpc.GenericRpcHandler):
    """Forwards raw bytes to the daemon, records (method, request, response),
    and lets a hook take over a request (hook returns None: forward)."""

    def __init__(self):
        self.log = []
        self.hook = None
        self.lock = threading.Lock()

    def service(self, details):
        method = details.method.rsplit("/", 1)[-1]

        def handle(req, ctx):
            hook = self.hook
            if hook is not None and hook(method, req) is not None:
                ctx.abort(grpc.StatusCode.ABORTED, "held back by the test proxy")
            resp, code, det, md = call_full(method, req, timeout=SLOW)
            with self.lock:
                self.log.append((method, req, resp))
            if resp is None:
                if md:  # duo-error, duo-retry-after, ...: the device acts on them
                    ctx.set_trailing_metadata(md)
                ctx.abort(code, det)
            return resp

        return grpc.unary_unary_rpc_method_handler(handle)

    def last(self, method):
        for m, req, resp in reversed(self.log):
            if m == method:
                return req, resp
        return None, None


proxy = Proxy()
srv = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8),
                  options=[("grpc.max_send_message_length", 8 << 20), ("grpc.max_receive_message_length", 8 << 20)])
srv.add_generic_rpc_handlers((proxy,))
pport = srv.add_insecure_port("127.0.0.1:0")
srv.start()
PROXY = "127.0.0.1:%d" % pport

doc = os.path.join(tmp, "doc.txt")
with open(doc, "w") as f:
    f.write("hostile test document\n")


def pinfile(name, pin):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(pin + "\n")
    return p


def token(citizen):
    r = cloud("token", "issue", "--data", data, "--citizen", citizen)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().split()[-1]


def dev(*args, timeout=300):
    return subprocess.run([DEV] + list(args), capture_output=True, text=True, timeout=timeout)


def enroll(name, pin):
    st = os.path.join(tmp, name + ".state")
    r = dev("enroll", "--server", PROXY, "--insecure", "--token", token("UA-" + name), "--state", st,
            "--paillier-bits", "2048", "--pin-file", pinfile(name + ".pin", pin),
            "--timeout-ms", str(SLOW * 1000), timeout=SLOW + 60)
    if r.returncode != 0:
        print("FAIL: set-up: cannot enrol key %s (%s); nothing else is meaningful" % (name, r.stderr.strip()[:300]))
        sys.exit(1)
    check(r.returncode == 0, "legitimate device enrols key %s through the recording proxy (%s)"
          % (name, r.stderr.strip()[:100]))
    kid = pb.EnrollStartResponse.FromString(proxy.last("EnrollStart")[1]).key_id
    return st, os.path.join(tmp, name + ".pin"), kid


def sign(st, pin, out):
    return dev("sign", "--state", st, "--in", doc, "--out", out, "--pin-file", pin, "--server", PROXY, "--insecure",
               "--timeout-ms", str(SLOW * 1000), timeout=SLOW + 60)


def openssl_ok(st, sig):
    pub = sig + ".pem"
    if dev("pubkey", "--state", st, "--out", pub).returncode != 0:
        return False
    v = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, doc], capture_output=True)
    return v.returncode == 0


def held_sign(st, pin, hook):
    """Runs a legitimate signature whose SignFinish the proxy holds back and
    hands to hook(req_bytes) while the daemon's session is live."""
    got = {}

    def h(method, req):
        if method != "SignFinish":
            return None
        got["req"] = req
        hook(req)
        return True

    proxy.hook = h
    try:
        r = sign(st, pin, os.path.join(tmp, "held.sig"))
    finally:
        proxy.hook = None
    check(r.returncode != 0 and "req" in got, "the held-back signature failed on the device (exit %d)"
          % r.returncode, quiet=True)
    return got.get("req")


def mutate_field(cls, raw, field, kind):
    m = cls.FromString(raw)
    v = getattr(m, field)
    if isinstance(v, bytes):
        if kind == "empty":
            v = b""
        elif kind == "short":
            v = v[:-1]
        elif kind == "long":
            v = v + b"\x00"
        elif kind == "huge":
            v = v + os.urandom(256 << 10)
        elif kind == "flip":
            if not v:
                v = b"\x01"
            else:
                i = rnd.randrange(len(v))
                v = v[:i] + bytes([v[i] ^ (1 << rnd.randrange(8))]) + v[i + 1:]
        elif kind == "zero":
            v = bytes(len(v))
        elif kind == "ones":
            v = b"\xff" * len(v)
        elif kind == "G":
            v = G
        else:
            raise ValueError(kind)
    elif isinstance(v, str):
        v = {"empty": "", "short": v[:-1], "long": v + "a", "huge": "a" * (256 << 10), "flip": v[::-1] + "x",
             "zero": "0" * len(v), "ones": "\x7f" * len(v), "G": "G"}[kind]
    elif m.DESCRIPTOR.fields_by_name[field].enum_type is not None:  # enums are int32 (EnrollStart's curve)
        v = {"empty": 0, "short": 3, "long": 99, "huge": 0x7FFFFFFF, "flip": v ^ 1, "zero": 0, "ones": -1,
             "G": 2}[kind]
    else:  # integers
        v = {"empty": 0, "short": 1024, "long": 4096, "huge": 0xFFFFFFFF, "flip": v ^ 1, "zero": 0,
             "ones": 0xFFFFFFFF, "G": 3072}[kind]
    setattr(m, field, v)
    return m.SerializeToString()


LEN_KINDS = ("empty", "short", "long", "huge")
VAL_KINDS = ("flip", "zero", "ones", "G")

# ================================================================ set-up: real keys through the proxy
stA, pinA, kidA = enroll("A", "2468")
enroll_log = list(proxy.log)
stB, pinB, kidB = enroll("B", "1357")
check(kidA != kidB and len(kidA) == 16, "two distinct 16-byte key ids")

r = sign(stA, pinA, os.path.join(tmp, "a1.sig"))
check(r.returncode == 0 and openssl_ok(stA, os.path.join(tmp, "a1.sig")),
      "legitimate signature through the proxy verifies with OpenSSL")
ss_req, ss_resp = proxy.last("SignStart")
sf_req, sf_resp = proxy.last("SignFinish")
if not check(sf_resp is not None and len(pb.SignFinishResponse.FromString(sf_resp).signature) == 64,
             "captured a successful round 2 (SignFinish) and its signature"):
    print("FAIL: set-up: no legitimate signature to replay (%s)" % r.stderr.strip()[:300])
    sys.exit(1)

# ================================================================ replays of a captured round 2
for i in range(3):
    resp, code, det, de = call("SignFinish", sf_req)
    check(resp is None and code in ALLOWED, "replay #%d of the captured SignFinish -> %s (%s)" % (i + 1, code.name, det))
r = sign(stA, pinA, os.path.join(tmp, "a2.sig"))
check(r.returncode == 0 and openssl_ok(stA, os.path.join(tmp, "a2.sig")),
      "after the replays the device signs again (secret promoted)")
for i in range(3):
    resp, code, det, de = call("SignFinish", sf_req)
    check(resp is None and code in ALLOWED,
          "replay of the old SignFinish after the secret rotated -> %s (%s)" % (code.name, det))
resp, code, det, de = call("SignFinish", proxy.last("SignFinish")[0])
check(resp is None and code in ALLOWED, "replay of the newest SignFinish -> %s (%s)" % (code.name, det))

# ================================================================ every RPC: structural garbage
# Captured valid requests of every kind (their sessions are over or tokens used).
samples = {}
for m, req, resp in enroll_log + proxy.log:
    samples.setdefault(m, req)
samples.setdefault("Refresh", pb.RefreshRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("Status", pb.StatusRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("Revoke", pb.RevokeRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("IssueCertificate", pb.IssueCertificateRequest(key_id=kidA, device_nonce=os.urandom(32),
                                                                  csr=os.urandom(200), mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("WaitRequests", pb.WaitRequestsRequest(key_id=kidA, device_nonce=os.urandom(32), timeout_ms=100,
                                                          mac=os.urandom(32)).SerializeToString())
samples.setdefault("RefuseRequest", pb.RefuseRequestRequest(key_id=kidA, device_nonce=os.urandom(32),
                                                            request_id=os.urandom(16), mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("ClaimLink", pb.ClaimLinkRequest(key_id=kidA, device_nonce=os.urandom(32),
                                                    link="duosign://claim/" + "A" * 22, mac=os.urandom(32))
                   .SerializeToString())
samples.setdefault("Resync", pb.ResyncRequest(key_id=kidA, device_nonce=os.urandom(32), epoch=1,
                                              device_secret=os.urandom(32), pin_proof=os.urandom(65),
                                              mac=os.urandom(32)).SerializeToString())
check(set(samples) == set(REQ), "a captured or well-formed sample of every RPC (%s)" % ",".join(sorted(samples)))
# The MAC'd key-addressed requests get a random MAC: an exact replay of one
# captured after the secret rotated is authenticated under a RETIRED secret,
# which the daemon treats as a clone (DESIGN 3.5) and freezes the key; that
# case is probed separately below on a key of its own (key C).
for m in ("SignStart", "Refresh", "Revoke", "Status", "IssueCertificate", "WaitRequests", "RefuseRequest", "ClaimLink",
          "Resync"):
    x = REQ[m].FromString(samples[m])
    x.mac = os.urandom(32)
    samples[m] = x.SerializeToString()

for method, cls in REQ.items():
    raw = samples[method]
    n = 0
    if method not in ("Status",):  # an empty Status is a valid shape; still must fail (no key id)
        pass
    expect_error(method, b"", "empty")
    n += 1
    cuts = sorted(set([1, 2, 3, len(raw) // 2, len(raw) - 1] + [rnd.randrange(1, len(raw)) for _ in range(15)]))
    for c in cuts:
        if 0 < c < len(raw):
            expect_error(method, raw[:c], "truncated to %d/%d" % (c, len(raw)))
            n += 1
    for _ in range(40):
        expect_error(method, os.urandom(rnd.randrange(1, 700)), "random bytes")
        n += 1
    for _ in range(20):  # random byte flips anywhere in the encoding
        b = bytearray(raw)
        for _ in range(rnd.randrange(1, 4)):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        expect_error(method, bytes(b), "random bit flips in the encoding")
        n += 1
    expect_error(method, raw + b"\x0a\x20" + os.urandom(32), "a duplicated field 1 appended")
    expect_error(method, raw + b"\xfa\x07\x04abcd", "an unknown field 127 appended")
    code, _ = expect_error(method, b"\x0a\xff\xff\x7f" + b"x" * ((2 << 20) - 8), "2 MiB (over the 1 MiB cap)")
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED, "%s 2 MiB -> RESOURCE_EXHAUSTED" % method, quiet=True)
    n += 5
    for field in cls.DESCRIPTOR.fields_by_name:
        for kind in LEN_KINDS + VAL_KINDS:
            expect_error(method, mutate_field(cls, raw, field.name if hasattr(field, "name") else field, kind),
                         "field %s %s" % (field, kind))
            n += 1
    print("ok   %s: %d hostile variants of a captured request, each answered with an error" % (method, n), flush=True)

# ================================================================ mutated round 2 against a LIVE session
# Wrong-length fields are refused by the parser and leave the session alone;
# a well-formed tampered request consumes it (single use) and must not sign.
sf_fields = [f for f in pb.SignFinishRequest.DESCRIPTOR.fields_by_name]
for field in sf_fields:
    for vkind in (("flip", "G") if field in ("r2",) else ("flip", "zero")):
        def hook(req, field=field, vkind=vkind):
            for kind in LEN_KINDS:
                expect_error("SignFinish", mutate_field(pb.SignFinishRequest, req, field, kind),
                             "live session, %s %s" % (field, kind))
            if field != "sid":
                expect_error("SignFinish", req[:len(req) // 2], "live session, truncated")
            expect_error("SignFinish", mutate_field(pb.SignFinishRequest, req, field, vkind),
                         "live session, %s %s" % (field, vkind), quiet=False)
            # the original, after a tampered one: the session was used up
            # (or, for a tampered sid, the tampered request named no session)
            resp, code, det, de = call("SignFinish", req)
            if field == "sid":
                check(resp is not None, "live session: a tampered sid named no session, the real round 2 still "
                      "completes", quiet=True)
            else:
                check(resp is None and code in ALLOWED, "live session: the untampered round 2 after a tampered "
                      "one -> %s (%s)" % (code.name, det), quiet=True)
        held_sign(stA, pinA, hook)
        if field == "sid":
            # the daemon signed and rotated; the CLI never saw the response,
            # so its stored secret is now the 'current' one: still fine.
            pass

# a round 2 carrying another key's live session id (and the other way round)
held = {}
held_sign(stA, pinA, lambda req: held.__setitem__("A", req))


def cross(reqB):
    reqA = held["A"]
    a = pb.SignFinishRequest.FromString(reqA)
    b = pb.SignFinishRequest.FromString(reqB)
    b_on_a = pb.SignFinishRequest.FromString(reqB)
    b_on_a.sid = a.sid
    a_on_b = pb.SignFinishRequest.FromString(reqA)
    a_on_b.sid = b.sid
    expect_error("SignFinish", b_on_a.SerializeToString(), "key B's round 2 on key A's live session", quiet=False)
    expect_error("SignFinish", a_on_b.SerializeToString(), "key A's round 2 on key B's live session", quiet=False)
    expect_error("SignFinish", reqA, "key A's own round 2 after the cross attempt")
    expect_error("SignFinish", reqB, "key B's own round 2 after the cross attempt")


held_sign(stB, pinB, cross)
# SignStart for key A with key B's (valid for B) MAC
ssB = pb.SignStartRequest.FromString(proxy.last("SignStart")[0])
ssB.key_id = kidA
expect_error("SignStart", ssB.SerializeToString(), "key B's SignStart re-addressed to key A", quiet=False)

# ================================================================ wrong-MAC floods (concurrent)
def flood_one(i):
    kind = i % 6
    if kind == 0:
        m = pb.SignStartRequest(key_id=kidA, device_nonce=os.urandom(32), digest=os.urandom(32),
                                r2_commitment=os.urandom(32), mac=os.urandom(32))
        return "SignStart", m.SerializeToString()
    if kind == 1:
        m = pb.StatusRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
        return "Status", m.SerializeToString()
    if kind == 2:
        m = pb.RefreshRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
        return "Refresh", m.SerializeToString()
    if kind == 3:
        m = pb.RevokeRequest(key_id=kidA, device_nonce=os.urandom(32), mac=os.urandom(32))
        return "Revoke", m.SerializeToString()
    if kind == 4:
        m = pb.RevokeRequest(key_id=kidA, revocation_code="aaaa-bbbb-cccc-dddd-eeee-ffff-gggg-%04d" % i)
        return "Revoke", m.SerializeToString()
    m = pb.SignFinishRequest.FromString(sf_req)  # a real-shaped round 2 on a random session
    m.sid = os.urandom(32)
    m.mac = os.urandom(32)
    return "SignFinish", m.SerializeToString()


FLOOD = int(os.environ.get("DUO_HOSTILE_FLOOD", "600"))
t0 = time.time()
codes = {}
bad = []
with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
    for method, res in ex.map(lambda i: (flood_one(i)[0], call(*flood_one(i))), range(FLOOD)):
        resp, code, det, de = res
        codes[code.name] = codes.get(code.name, 0) + 1
        if resp is not None or code not in ALLOWED:
            bad.append((method, code.name, det))
check(not bad, "flood: %d wrong-MAC / wrong-code requests on key A in %.1f s, all refused %s %s"
      % (FLOOD, time.time() - t0, codes, bad[:3]))
# SignStart on key A with a wrong MAC while a legitimate session is open
def flood_live(req):
    for k in range(100):
        expect_error("SignStart", flood_one(6 * k)[1], "wrong-MAC SignStart during a live session")
        expect_error("SignFinish", flood_one(6 * k + 5)[1], "wrong-MAC SignFinish on a random session")
    resp, code, det, de = call("SignFinish", req)
    check(resp is not None and len(pb.SignFinishResponse.FromString(resp).signature) == 64,
          "the legitimate round 2 held during 200 wrong-MAC requests still completes (%s %s)" % (code.name, det))


held_sign(stA, pinA, flood_live)

# ================================================================ replay of a captured ROUND 1 after rotation
# Key C signs twice (the second signature promotes the rotated secret and
# retires the first one), then the attacker replays the first SignStart
# byte for byte. Required (docs/SECURITY.md 3.2): the daemon recognises an
# exact old request (already accepted under that secret) and refuses it as
# UNAUTHENTICATED without freezing the key; key C stays active and signs on.
# A replay must never freeze the key (it did before the fix: "clone").
stC, pinC, kidC = enroll("C", "9999")
r1 = sign(stC, pinC, os.path.join(tmp, "c1.sig"))
c_ss1 = proxy.last("SignStart")[0]
r2 = sign(stC, pinC, os.path.join(tmp, "c2.sig"))
check(r1.returncode == 0 and r2.returncode == 0, "key C signs twice (secret rotated and promoted)")
for attempt in range(3):
    resp, code, det, de = call("SignStart", c_ss1)
    check(resp is None and code == grpc.StatusCode.UNAUTHENTICATED and "clone" not in (det or "").lower(),
          "replay #%d of key C's first SignStart (MAC under a retired secret) -> UNAUTHENTICATED, not a clone "
          "(got %s: %s)" % (attempt + 1, code.name, det))
rc3 = dev("status", "--state", stC, "--server", PROXY, "--insecure")
frozen = rc3.returncode == 6 or "clone" in (rc3.stdout + rc3.stderr).lower() or \
    re.search(r"\bsuspended\b", rc3.stdout, re.I) is not None
check(rc3.returncode == 0 and not frozen and re.search(r"\bactive\b", rc3.stdout, re.I) is not None,
      "key C is still active after the replays, not frozen (duosign status exit %d: %s)"
      % (rc3.returncode, " ".join((rc3.stdout + rc3.stderr).split())[:160]))
r3 = sign(stC, pinC, os.path.join(tmp, "c3.sig"))
check(r3.returncode == 0 and openssl_ok(stC, os.path.join(tmp, "c3.sig")),
      "key C still signs after the replays (exit %d)" % r3.returncode)

# ================================================================ after all that
r = dev("status", "--state", stA, "--server", PROXY, "--insecure", "--timeout-ms", str(SLOW * 1000))
check(r.returncode == 0 and re.search(r"\bactive\b", r.stdout, re.I) is not None,
      "key A is still active after the floods (duosign status: %s)" % " ".join(r.stdout.split())[:160])
st_resp = proxy.last("Status")[1]
if st_resp is not None:
    s = pb.StatusResponse.FromString(st_resp)
    check(s.state == pb.StatusResponse.ACTIVE and s.pin_attempts_left == 3 and s.locked_until == 0,
          "Status RPC (real MAC): ACTIVE, 3 PIN attempts left, not locked (got %d, %d, %d)"
          % (s.state, s.pin_attempts_left, s.locked_until))
for st, pin, nm in ((stA, pinA, "A"), (stB, pinB, "B")):
    out = os.path.join(tmp, nm + "-final.sig")
    r = sign(st, pin, out)
    check(r.returncode == 0 and openssl_ok(st, out),
          "key %s: the legitimate device still signs (OpenSSL-verified) after the attack (%s)"
          % (nm, r.stderr.strip()[:100]))

h = health_pb2_grpc.HealthStub(up).Check(health_pb2.HealthCheckRequest(), timeout=10).status
check(daemon.poll() is None and daemon.pid == pid0 and h == 1, "daemon alive, same pid %d, health SERVING" % pid0)

up.close()
srv.stop(0)
daemon.send_signal(signal.SIGTERM)
try:
    rc = daemon.wait(timeout=60)
except subprocess.TimeoutExpired:
    daemon.kill()
    rc = daemon.wait()
time.sleep(0.3)
stderr = "".join(err_lines)
check(rc == 0, "daemon drained and exited 0 on SIGTERM (rc %d)" % rc)
check(not re.search(r"Sanitizer|runtime error|LeakSanitizer|SIGSEGV|Aborted|assert", stderr),
      "daemon stderr has no sanitizer/crash report")
for kid, nm in ((kidA, "A"), (kidB, "B")):
    r = cloud("key", "show", "--data", data, kid.hex())
    check(r.returncode == 0 and re.search(r"pin failures:\s+0\b", r.stdout)
          and re.search(r"state:\s+active\b", r.stdout) is not None,
          "key %s: duosign-cloud key show: state active, pin failures 0" % nm)
r = cloud("audit", "verify", "--data", data)
check(r.returncode == 0 and "OK" in r.stdout, "audit chain verifies")
r = cloud("audit", "list", "--data", data)
if r.returncode == 0:
    bad_ev = [ln for ln in r.stdout.splitlines()
              if ("pin.failure" in ln or "clone.suspected" in ln or "attack" in ln or "lock" in ln)
              and (kidA.hex() in ln or kidB.hex() in ln)]
    check(not bad_ev, "audit log: no PIN failure, lock, clone or attack event for keys A and B %s" % bad_ev[:2])

print("%d checks, %d failures" % (checks, failures))
if failures:
    print("daemon stderr tail:\n" + stderr[-3000:])
    print("kept", tmp)
    sys.exit(1)
shutil.rmtree(tmp, ignore_errors=True)
