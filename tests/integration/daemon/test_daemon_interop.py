#!/usr/bin/python3
"""Black-box and interop checks of duosign-cloud with Debian's python3-grpcio,
from the .proto files alone.

usage: test_daemon_interop.py PATH/TO/duosign-cloud PROTO_DIR STUB_DIR

- init: creates the files with the right modes; refuses to overwrite; --force
- --help on every command exits 0; bad arguments exit 2 with a message
- serve --insecure and serve with TLS on 127.0.0.1:0: health SERVING, an
  unknown method -> UNIMPLEMENTED, garbage and malformed requests on every
  method -> INVALID_ARGUMENT (or another error) with a duo-error trailer, an
  oversized message -> RESOURCE_EXHAUSTED, and the daemon keeps serving
- a plaintext client against the TLS port fails; TLS with the CA works
- SIGTERM -> drains and exits 0
"""
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

BIN, PROTO, STUBS = sys.argv[1], sys.argv[2], sys.argv[3]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)
    else:
        print("ok  ", what)


def run(*args, **kw):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=120, **kw)


os.makedirs(STUBS, exist_ok=True)
subprocess.run(["protoc", "-I" + PROTO, "--python_out=" + STUBS, "--grpc_python_out=" + STUBS,
                "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                os.path.join(PROTO, "duosign.proto"), os.path.join(PROTO, "health.proto")], check=True)
sys.path.insert(0, STUBS)
import grpc  # noqa: E402
import duosign_pb2 as pb  # noqa: E402
import duosign_pb2_grpc as pbg  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

tmp = tempfile.mkdtemp(prefix="duo-interop-")
data = os.path.join(tmp, "data")

# ---- init
r = run("init", "--data", data)
check(r.returncode == 0, "init creates a data directory")
check(stat.S_IMODE(os.stat(data).st_mode) == 0o700, "data dir is 0700")
for f, mode in (("kek", 0o600), ("server.key", 0o600), ("keys.db", 0o600)):
    check(stat.S_IMODE(os.stat(os.path.join(data, f)).st_mode) == mode, "%s is %o" % (f, mode))
check(os.path.getsize(os.path.join(data, "kek")) == 32, "kek is 32 bytes")
v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(data, "ca.pem"), os.path.join(data, "server.pem")],
                   capture_output=True, text=True)
check(v.returncode == 0, "server.pem verifies against ca.pem")
kek_before = open(os.path.join(data, "kek"), "rb").read()
r = run("init", "--data", data)
check(r.returncode != 0 and "refusing" in r.stderr, "init refuses a non-empty directory")
check(open(os.path.join(data, "kek"), "rb").read() == kek_before, "refused init left the KEK alone")
other = os.path.join(tmp, "other")
run("init", "--data", other)
r = run("init", "--data", other, "--force")
check(r.returncode == 0, "init --force overwrites")

# ---- help and usage errors
for args in (["--help"], ["init", "--help"], ["serve", "--help"], ["token", "--help"], ["token", "issue", "--help"],
             ["key", "--help"], ["audit", "--help"]):
    r = run(*args)
    check(r.returncode == 0 and "usage" in r.stdout, "%s exits 0 with usage" % " ".join(args))
for args, what in ((["frobnicate"], "unknown command"), (["serve", "--data", data], "serve without --listen"),
                   (["serve", "--data", data, "--listen", "x", "--paillier-bits", "1024"], "bad paillier bits"),
                   (["serve", "--data", data, "--listen", "127.0.0.1:0", "--lock-policy", "3:x"], "bad lock policy"),
                   (["token", "issue", "--data", data], "token without --citizen")):
    r = run(*args)
    check(r.returncode == 2 and r.stderr.strip() != "", "%s: exit 2 with a message" % what)
r = run("serve", "--data", os.path.join(tmp, "nope"), "--listen", "127.0.0.1:0", "--insecure")
check(r.returncode == 1 and "init" in r.stderr, "serve on a missing data dir says to run init")
r = run("token", "issue", "--data", data, "--citizen", "UA-1")
check(r.returncode == 0 and len(r.stdout.strip()) >= 26, "token issue prints a token")
r = run("audit", "verify", "--data", data)
check(r.returncode == 0 and "OK" in r.stdout, "audit verify OK")


def start(extra):
    p = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:0", "--paillier-bits", "2048",
                          "--prime-pool", "1"] + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return p, port


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return -9, err
    return p.returncode, err


def duo_error(e):
    for k, v in (e.trailing_metadata() or ()):
        if k == "duo-error":
            return int(v)
    return None


REQS = {
    "EnrollStart": pb.EnrollStartRequest, "EnrollKeyShare": pb.EnrollKeyShareRequest,
    "EnrollPdlChallenge": pb.EnrollPdlChallengeRequest, "EnrollPdlOpen": pb.EnrollPdlOpenRequest,
    "EnrollConfirm": pb.EnrollConfirmRequest, "SignStart": pb.SignStartRequest, "SignFinish": pb.SignFinishRequest,
    "Refresh": pb.RefreshRequest, "Revoke": pb.RevokeRequest, "Status": pb.StatusRequest,
    "IssueCertificate": pb.IssueCertificateRequest,
}


def exercise(ch, label):
    h = health_pb2_grpc.HealthStub(ch)
    check(h.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1, label + ": health SERVING")
    check(h.Check(health_pb2.HealthCheckRequest(service="duosign.v1.DuoSign"), timeout=10).status == 1,
          label + ": health of duosign.v1.DuoSign SERVING")
    try:
        ch.unary_unary("/duosign.v1.DuoSign/NoSuchMethod")(b"", timeout=10)
        check(False, label + ": unknown method")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, label + ": unknown method -> UNIMPLEMENTED")
    try:
        ch.unary_unary("/other.Service/Foo")(b"abc", timeout=10)
        check(False, label + ": unknown service")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, label + ": unknown service -> UNIMPLEMENTED")
    for name, cls in REQS.items():
        raw = ch.unary_unary("/duosign.v1.DuoSign/" + name)
        for what, payload in (("garbage", b"\xff\xfe\xfd\x00\x01"), ("empty", b""),
                              ("wrong lengths", cls().SerializeToString() + b"\x0a\x03abc")):
            try:
                raw(payload, timeout=10)
                check(False, "%s: %s %s accepted" % (label, name, what))
            except grpc.RpcError as e:
                ok = e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED,
                                  grpc.StatusCode.NOT_FOUND) and duo_error(e) is not None and e.details()
                if what == "garbage":
                    ok = ok and e.code() == grpc.StatusCode.INVALID_ARGUMENT
                check(ok, "%s: %s %s -> %s (%s)" % (label, name, what, e.code().name, e.details()))
    try:
        ch.unary_unary("/duosign.v1.DuoSign/SignStart")(b"\x0a" + b"\xff" * 10 + b"x" * (2 << 20), timeout=10)
        check(False, label + ": oversized accepted")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, label + ": 2 MiB request -> RESOURCE_EXHAUSTED")
    s = pbg.DuoSignStub(ch)
    try:
        s.EnrollStart(pb.EnrollStartRequest(token=b"nope", device_nonce=os.urandom(32), paillier_bits=2048), timeout=10)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNAUTHENTICATED and duo_error(e) == -45 and "token" in e.details(),
              label + ": unknown token -> UNAUTHENTICATED with an actionable message")
    try:
        s.EnrollStart(pb.EnrollStartRequest(token=b"nope", device_nonce=os.urandom(32), paillier_bits=3072), timeout=10)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and "2048" in e.details(),
              label + ": wrong Paillier size -> says the server's size")
    try:
        s.Status(pb.StatusRequest(key_id=os.urandom(16), device_nonce=os.urandom(32), mac=os.urandom(32)), timeout=10)
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND and duo_error(e) == -49, label + ": unknown key -> NOT_FOUND")
    check(h.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1, label + ": still serving after abuse")


# ---- plaintext
p, port = start(["--insecure"])
ch = grpc.insecure_channel("127.0.0.1:%d" % port)
exercise(ch, "insecure")
ch.close()
rc, err = stop(p)
check(rc == 0 and "stopped cleanly" in err, "insecure: SIGTERM -> exit 0, clean drain (%d)" % rc)

# ---- TLS
p, port = start([])
ca = open(os.path.join(data, "ca.pem"), "rb").read()
ch = grpc.secure_channel("127.0.0.1:%d" % port, grpc.ssl_channel_credentials(root_certificates=ca))
exercise(ch, "tls")
ch.close()
plain = grpc.insecure_channel("127.0.0.1:%d" % port)
try:
    health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
    check(False, "tls: plaintext client accepted")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.UNAVAILABLE, "tls: plaintext client rejected (UNAVAILABLE)")
plain.close()
rc, err = stop(p)
check(rc == 0 and "stopped cleanly" in err, "tls: SIGTERM -> exit 0, clean drain (%d)" % rc)

# ---- a listen address in use gives a clear error
p, port = start(["--insecure"])
r = run("serve", "--data", other, "--listen", "127.0.0.1:%d" % port, "--insecure", "--paillier-bits", "2048")
check(r.returncode == 1 and "cannot listen" in r.stderr, "port in use -> exit 1 with a message")
# ---- one daemon per data directory
r = run("serve", "--data", data, "--listen", "127.0.0.1:0", "--insecure", "--paillier-bits", "2048")
check(r.returncode == 1 and "already serving" in r.stderr, "second daemon on one data directory -> exit 1 with a message")
stop(p)

r = run("audit", "verify", "--data", data)
check(r.returncode == 0, "audit chain still verifies")
shutil.rmtree(tmp, ignore_errors=True)
print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
