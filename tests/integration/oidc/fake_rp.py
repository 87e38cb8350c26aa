#!/usr/bin/python3
"""A stand-in for duosign-cloud's RelyingParty service (proto/relying_party.proto)
for the cases the real daemon cannot be made to produce (a refusal on cue, a
signature over another digest, a foreign verification code, a javascript:
link, many quick approvals; test_oidc_cloud.sh runs the real one): real gRPC over TLS, a client
certificate required, the message types generated from the committed proto.

The "citizen" is a P-256 key with a self-signed certificate; approving signs
the login structure of rp_digest.h (duo_rp_auth_digest), as the cloud does.
A file "mode" in the control directory makes StartAuthentication misbehave
(bad-vc: a code not derived from the challenge; bad-link: a javascript: link),
or approve every session at its first GetSession (auto-approve: a browser test).
What the citizen does is a file in the control directory, named by the
link's claim token: approve, refuse, unusable, or tamper-* (a wrong digest, a
wrong signature) to see the provider refuse the evidence.

    fake_rp.py serve --dir D --port P --cert C --key K --ca CA --rp-name N
    fake_rp.py act --dir D --link LINK --action approve|refuse|unusable|tamper-digest|tamper-sig
"""
import argparse, datetime, hashlib, os, secrets, struct, subprocess, sys, tempfile, threading, time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "..", "proto")


def load_pb(workdir):
    subprocess.check_call(["protoc", "--python_out=" + workdir, "-I", PROTO, os.path.join(PROTO, "relying_party.proto")])
    sys.path.insert(0, workdir)
    import relying_party_pb2
    return relying_party_pb2


def item(t, label, v):
    return bytes([t]) + struct.pack(">I", len(label)) + label + struct.pack(">Q", len(v)) + v


def login_digest(rp_name, challenge, server_random, vc, display):
    """duo_rp_auth_digest (common/include/duosign/rp_digest.h), rewritten from its documentation."""
    return hashlib.sha256(item(1, b"duosign/v1/rp-auth", b"") + item(2, b"rp_name", rp_name.encode())
                          + item(2, b"challenge", challenge) + item(2, b"server_random", server_random)
                          + item(2, b"code", vc.encode()) + item(2, b"display_text", display.encode())).digest()


def citizen():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Taras Shevchenko"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOUA-1234567890")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def sign_raw(key, digest):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    r, s = utils.decode_dss_signature(key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def serve(a):
    import grpc
    pb = load_pb(tempfile.mkdtemp(prefix="duo-fake-rp-"))
    key, cert_der = citizen()
    sessions, lock = {}, threading.Lock()

    def start(req, ctx):
        if not (32 <= len(req.challenge) <= 64):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "challenge must be 32..64 bytes")
        sid, token = secrets.token_hex(16), secrets.token_urlsafe(16)
        vc = "%04d" % (int.from_bytes(hashlib.sha256(req.challenge).digest()[-2:], "big") % 10000)
        link = "duosign://claim/" + token
        mode_file = os.path.join(a.dir, "mode")  # a misbehaving signer, for the provider's checks
        mode = open(mode_file).read().strip() if os.path.exists(mode_file) else ""
        if mode == "bad-vc":
            vc = "%04d" % ((int(vc) + 1) % 10000)
        elif mode == "bad-link":
            link = "javascript:alert(1)//" + token
        with lock:
            sessions[sid] = dict(token=token, vc=vc, challenge=req.challenge, display=req.display_text,
                                 expires=time.time() + 120)
        with open(os.path.join(a.dir, "links"), "a") as f:
            f.write(link + "\n")
        return pb.StartAuthenticationResponse(session_id=sid, verification_code=vc, link=link,
                                              expires_at=int(time.time()) + 120)

    def get(req, ctx):
        with lock:
            s = sessions.get(req.session_id)
        if s is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such session")
        deadline = time.time() + min(req.timeout_ms, 30000) / 1000.0
        path = os.path.join(a.dir, s["token"])
        mode_file = os.path.join(a.dir, "mode")
        if os.path.exists(mode_file) and open(mode_file).read().strip() == "auto-approve":
            with open(path, "w") as f:
                f.write("approve\n")
        while time.time() < deadline and not os.path.exists(path):
            time.sleep(0.05)
        if not os.path.exists(path):
            return pb.GetSessionResponse(state=pb.GetSessionResponse.RUNNING)
        act = open(path).read().strip()
        R = pb.GetSessionResponse
        if act == "refuse":
            return R(state=R.COMPLETE, result=R.USER_REFUSED)
        if act == "unusable":
            return R(state=R.COMPLETE, result=R.ACCOUNT_UNUSABLE)
        if act == "timeout":
            return R(state=R.COMPLETE, result=R.TIMEOUT)
        sr = s.setdefault("sr", secrets.token_bytes(32))
        digest = login_digest(a.rp_name, s["challenge"], sr, s["vc"], s["display"])
        if act == "tamper-digest":
            digest = login_digest(a.rp_name, s["challenge"], sr, s["vc"], s["display"] + "!")
        sig = sign_raw(key, digest)
        if act == "tamper-sig":
            sig = sig[:40] + bytes([sig[40] ^ 1]) + sig[41:]
        return R(state=R.COMPLETE, result=R.OK, signature=sig, signed_digest=digest, certificate=cert_der,
                 citizen_id=a.citizen, server_random=sr)

    handlers = {
        "StartAuthentication": grpc.unary_unary_rpc_method_handler(
            start, request_deserializer=pb.StartAuthenticationRequest.FromString,
            response_serializer=pb.StartAuthenticationResponse.SerializeToString),
        "GetSession": grpc.unary_unary_rpc_method_handler(
            get, request_deserializer=pb.GetSessionRequest.FromString,
            response_serializer=pb.GetSessionResponse.SerializeToString),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("duosign.v1.RelyingParty", handlers),))
    creds = grpc.ssl_server_credentials([(open(a.key, "rb").read(), open(a.cert, "rb").read())],
                                        root_certificates=open(a.ca, "rb").read(), require_client_auth=True)
    server.add_secure_port("127.0.0.1:%d" % a.port, creds)
    server.start()
    print("fake RelyingParty on %d" % a.port, flush=True)
    server.wait_for_termination()


def act(a):
    token = a.link.rsplit("/", 1)[-1]
    if not token or "/" in token or token.startswith("."):
        sys.exit("bad link")
    with open(os.path.join(a.dir, token), "w") as f:
        f.write(a.action + "\n")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["serve", "act"])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--rp-name", default="duosign-oidc")
    p.add_argument("--citizen", default="UA-1234567890")
    p.add_argument("--link")
    p.add_argument("--action", default="approve")
    a = p.parse_args()
    serve(a) if a.cmd == "serve" else act(a)
