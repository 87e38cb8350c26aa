"""A relying party's client for the tests, written from proto/relying_party.proto.

The message classes are generated at run time by protoc --python_out (never
written by hand); the RelyingParty stub is made from the service's method
names with grpc's generic unary calls, so nothing here restates the
contract. Authentication is the RP's TLS client certificate only.
"""
import importlib
import os
import subprocess
import sys
import tempfile

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(_HERE, "..", "..", "..", "proto"))


def load_messages():
    """Compiles relying_party.proto into a temporary package; returns the module."""
    out = tempfile.mkdtemp(prefix="duo-rp-pb-")
    subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + out,
                    os.path.join(PROTO_DIR, "relying_party.proto")], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("relying_party_pb2")


pb = load_messages()
SERVICE = pb.DESCRIPTOR.services_by_name["RelyingParty"]


class RP:
    """One relying party: a channel with its client certificate."""

    def __init__(self, addr, server_ca, cert=None, key=None):
        def rd(p):
            with open(p, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=rd(server_ca),
            private_key=rd(key) if key else None,
            certificate_chain=rd(cert) if cert else None)
        host = addr.rsplit(":", 1)[0]
        # The daemon's certificate names localhost and 127.0.0.1.
        self.channel = grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", "localhost")]
                                           if host not in ("localhost",) else [])
        self._calls = {}
        for m in SERVICE.methods:
            req = getattr(pb, m.input_type.name)
            resp = getattr(pb, m.output_type.name)
            self._calls[m.name] = self.channel.unary_unary(
                "/%s/%s" % (SERVICE.full_name, m.name),
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString)

    def call(self, method, timeout=30, **fields):
        req = getattr(pb, SERVICE.methods_by_name[method].input_type.name)(**fields)
        return self._calls[method](req, timeout=timeout)

    def call_raw(self, method, raw, timeout=30):
        """Sends raw bytes as the request (malformed-message tests)."""
        c = self.channel.unary_unary("/%s/%s" % (SERVICE.full_name, method),
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        return c(raw, timeout=timeout)

    def close(self):
        self.channel.close()


def duo_error(e):
    """The duo-error trailer of a failed call (errors.h number), or None."""
    for k, v in (e.trailing_metadata() or ()):
        if k == "duo-error":
            return int(v)
    return None
