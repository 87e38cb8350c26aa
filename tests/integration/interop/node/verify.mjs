// Verifies duosign P-256 outputs with code nobody at duosign wrote: Node's
// WebCrypto (crypto.subtle, ECDSA P-256 with SHA-256 over the raw r||s
// signature) and the jose library (compact JWS, alg ES256).
// Usage: node verify.mjs PUB.pem DOC SIG.raw SIG.jws
// Exit 0 when every check holds; prints each failure.
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import * as jose from 'jose';

const [pemPath, docPath, rawPath, jwsPath] = process.argv.slice(2);
const pem = readFileSync(pemPath, 'utf8');
const doc = readFileSync(docPath);
const raw = readFileSync(rawPath);
const jws = readFileSync(jwsPath, 'utf8').trim();
let fails = 0;
const check = (cond, what) => {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) fails++;
};

const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
const key = await webcrypto.subtle.importKey('spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
const alg = { name: 'ECDSA', hash: 'SHA-256' };
check(raw.length === 64, 'raw signature is 64 bytes (r||s, the IEEE P1363 form WebCrypto takes)');
check(await webcrypto.subtle.verify(alg, key, raw, doc), 'WebCrypto verifies the raw signature over DOC');
const other = Buffer.concat([doc, Buffer.from('x')]);
check(!(await webcrypto.subtle.verify(alg, key, raw, other)), 'WebCrypto rejects it over a changed DOC');
const bent = Buffer.from(raw);
bent[40] ^= 1;
check(!(await webcrypto.subtle.verify(alg, key, bent, doc)), 'WebCrypto rejects a changed signature');

const jkey = await jose.importSPKI(pem, 'ES256');
const { payload, protectedHeader } = await jose.compactVerify(jws, jkey);
check(protectedHeader.alg === 'ES256', `jose: protected header alg is ES256 (${protectedHeader.alg})`);
check(Buffer.compare(Buffer.from(payload), doc) === 0, 'jose: the JWS payload is DOC');
const parts = jws.split('.');
const bad = [parts[0], Buffer.from('tampered').toString('base64url'), parts[2]].join('.');
let refused = false;
try {
  await jose.compactVerify(bad, jkey);
} catch (e) {
  refused = e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED';
}
check(refused, 'jose rejects a JWS with another payload');
process.exit(fails === 0 ? 0 : 1);
