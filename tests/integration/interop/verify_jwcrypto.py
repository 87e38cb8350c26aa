"""Verifies a duosign P-256 JWS with python3-jwcrypto (Debian), code nobody
at duosign wrote. Usage: verify_jwcrypto.py PUB.pem DOC SIG.jws"""
import sys

from jwcrypto import jwk, jws

pem, doc, token = (open(p, 'rb').read() for p in sys.argv[1:4])
key = jwk.JWK.from_pem(pem)
assert key.get('crv') == 'P-256', key.get('crv')
sig = jws.JWS()
sig.deserialize(token.decode().strip())
sig.verify(key, alg='ES256')  # raises on a bad signature or another alg
assert sig.jose_header['alg'] == 'ES256'
assert sig.payload == doc
bad = jws.JWS()
h, p, s = token.decode().strip().split('.')
bad.deserialize('.'.join([h, p[:-2] + ('AA' if p[-2:] != 'AA' else 'BB'), s]))
try:
    bad.verify(key, alg='ES256')
    sys.exit('jwcrypto accepted a JWS with another payload')
except jws.InvalidJWSSignature:
    pass
print('ok   jwcrypto verifies the ES256 JWS and rejects a changed payload')
