# Shell helpers for the KEK tests (after e2e_lib.sh; needs T, CLOUD, DUOSIGN,
# BITS, and a running daemon's ADDR for enrol/sign_ok):
#   enrol CITIZEN              enrols into $T/CITIZEN.state (PIN in $T/pin)
#   sign_ok CITIZEN WHAT       signs a file and checks it with openssl dgst
#   to_legacy DATA             rewrites every sealed value of DATA/keys.db in
#                              format 1 (as before KEK ids) and removes kek.ref
#   kek_ids DATA               the KEK ids 'kek status' counts values under
enrol() {
  run 0 "enrol $1" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$DATA/ca.pem" --token "$(token "$1")" \
      --state "$T/$1.state" --pin-file "$T/pin" --paillier-bits "$BITS"
  "$DUOSIGN" pubkey --state "$T/$1.state" --out "$T/$1.pub" >/dev/null 2>&1
}
sign_ok() {
  head -c 1000 /dev/urandom >"$T/doc"
  run 0 "$2: $1 signs" -- "$DUOSIGN" sign --state "$T/$1.state" --in "$T/doc" --out "$T/sig.der" --pin-file "$T/pin"
  openssl dgst -sha256 -verify "$T/$1.pub" -signature "$T/sig.der" "$T/doc" >/dev/null 2>&1 \
    && ok "$2: openssl verifies $1's signature" || bad "$2: openssl rejects $1's signature"
}
kek_ids() { "$CLOUD" kek status --data "$1" 2>/dev/null | sed -n 's/^sealed under KEK id \([0-9]*\):.*/\1/p' | tr '\n' ' '; }
# A second, independent implementation of the sealed formats (python3-
# cryptography): opens format 2 under the KEK file, writes format 1.
to_legacy() {
  /usr/bin/python3 - "$1" <<'PY'
import os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
d = sys.argv[1]
kek = open(d + '/kek', 'rb').read()
lp = lambda b: len(b).to_bytes(4, 'big') + b
def aad(fmt, kek_id, kid, col, ver):
    a = lp(b'duosign.seal') + lp(bytes([fmt]))
    if fmt == 2: a += lp(kek_id.to_bytes(4, 'big'))
    return a + lp(kid) + lp(col.encode()) + lp(ver.to_bytes(8, 'big'))
cols = [('keys', 'x1_sealed', 'key_id', 'x1', 'secret_version'),
        ('keys', 'p_sealed', 'key_id', 'paillier_p', 'secret_version'),
        ('keys', 'q_sealed', 'key_id', 'paillier_q', 'secret_version'),
        ('keys', 'secret_cur_sealed', 'key_id', 'device_secret_current', 'secret_version'),
        ('keys', 'secret_pend_sealed', 'key_id', 'device_secret_pending', 'secret_version'),
        ('retired_secrets', 'sealed', 'key_id', 'retired_secret', 'n')]
db = sqlite3.connect(d + '/keys.db')
g = AESGCM(kek); n = 0
for t, c, i, ac, v in cols:
    for rowid, kid, ver, val in db.execute(f'SELECT rowid, {i}, {v}, {c} FROM {t} WHERE {c} IS NOT NULL').fetchall():
        assert val[0] == 2 and int.from_bytes(val[1:5], 'big') == 0, 'expected format 2 under KEK id 0'
        pt = g.decrypt(val[5:17], val[17:], aad(2, 0, kid, ac, ver))
        nonce = os.urandom(12)
        db.execute(f'UPDATE {t} SET {c} = ? WHERE rowid = ?', (bytes([1]) + nonce + g.encrypt(nonce, pt, aad(1, 0, kid, ac, ver)), rowid))
        n += 1
db.commit(); db.close()
os.unlink(d + '/kek.ref')
print(n)
PY
}
