// Drives duosign-oidc with openid-client (npm; nobody here wrote it): discovery,
// authorization URL with PKCE, the login page (its poll, as its script does),
// the citizen's answer (fake_rp.py act, or the duosign CLI once branch rp is
// merged), callback, code exchange, ID token validation, userinfo; then
// every abuse case of issue 18 with the OAuth error the RFCs name.
// Environment: see test_oidc.sh. Prints "ok - ..." / "not ok - ..." lines.
'use strict';
const { Issuer, generators, errors } = require('openid-client');
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');

const E = process.env;
let failures = 0;
const ok = (cond, what) => {
  console.log((cond ? 'ok - ' : 'not ok - ') + what);
  if (!cond) failures++;
};

function act(link, action) {
  execFileSync('/usr/bin/python3', [E.FAKE_RP, 'act', '--dir', E.RP_DIR, '--link', link, '--action', action]);
}
function advanceClock(s) {
  const now = parseInt(fs.readFileSync(E.CLOCK, 'utf8'), 10);
  fs.writeFileSync(E.CLOCK, String(now + s));
}

// The browser's part: open the authorization URL, read the page.
async function openPage(url) {
  const res = await fetch(url, { redirect: 'manual' });
  const html = await res.text();
  const m = (re) => (html.match(re) || [])[1];
  const cookie = (res.headers.get('set-cookie') || '').split(';')[0];
  return { res, html, cookie, txn: m(/data-txn="([^"]+)"/), csrf: m(/data-csrf="([^"]+)"/),
           link: m(/id="link" href="([^"]+)"/), vc: m(/id="vc">(\d{4})</) };
}
async function poll(page, opts = {}) {
  const body = opts.body || `txn=${page.txn}&csrf=${page.csrf}`;
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (opts.cookie !== null) headers.Cookie = opts.cookie || page.cookie;
  if (opts.origin) headers.Origin = opts.origin;
  for (let i = 0; i < 50; i++) {
    const res = await fetch(E.ISSUER + '/login/poll', { method: 'POST', headers, body });
    const j = await res.json();
    if (res.status !== 200 || j.status !== 'waiting') return { status: res.status, j };
  }
  return { status: 0, j: {} };
}

// A whole login up to the redirect with the code.
async function login(client, action = 'approve', extra = {}) {
  const verifier = generators.codeVerifier();
  const state = extra.state || generators.state();
  const nonce = extra.nonce || generators.nonce();
  const url = client.authorizationUrl({ scope: extra.scope || 'openid profile', state, nonce,
    code_challenge: generators.codeChallenge(verifier), code_challenge_method: 'S256' });
  const page = await openPage(url);
  act(page.link, action);
  const p = await poll(page);
  return { verifier, state, nonce, page, p, redirect: p.j.redirect };
}

async function exchange(client, l) {
  const params = client.callbackParams(l.redirect);
  return client.callback(E.REDIRECT, params, { code_verifier: l.verifier, state: l.state, nonce: l.nonce });
}

// A raw token request (the client library would refuse to send some of these).
async function tokenRaw(form, auth) {
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (auth) headers.Authorization = auth;
  const res = await fetch(E.ISSUER + '/token', { method: 'POST', headers, body: new URLSearchParams(form).toString() });
  let j = {};
  try { j = await res.json(); } catch (e) {}
  return { status: res.status, j };
}
const basic = (id, secret) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
function codeOf(l) { return new URL(l.redirect).searchParams.get('code'); }

async function authorizeRaw(query) {
  const res = await fetch(E.ISSUER + '/authorize?' + query, { redirect: 'manual' });
  const loc = res.headers.get('location');
  return { status: res.status, loc: loc ? new URL(loc) : null, body: await res.text() };
}

async function main() {
  // ---------------------------------------------------------------- the flow
  const issuer = await Issuer.discover(E.ISSUER);
  ok(issuer.issuer === E.ISSUER, 'discovery: issuer');
  ok(JSON.stringify(issuer.code_challenge_methods_supported) === '["S256"]', 'discovery: PKCE S256 only');
  ok(issuer.subject_types_supported.includes('pairwise'), 'discovery: pairwise subjects');
  const client = new issuer.Client({ client_id: E.CLIENT_ID, client_secret: E.CLIENT_SECRET,
    redirect_uris: [E.REDIRECT], response_types: ['code'], id_token_signed_response_alg: 'ES256',
    token_endpoint_auth_method: 'client_secret_basic' });

  const l = await login(client, 'approve', { state: 'st a&b=c/ü%20', nonce: 'n-"x"<y>' });
  ok(/^\d{4}$/.test(l.page.vc || ''), 'login page shows a 4-digit verification code');
  ok(l.page.html.includes('Demo Bank'), "login page shows the service's name");
  ok(l.p.j.status === 'done' && !!l.redirect, 'approval: the page gets the redirect with a code');
  ok(new URL(l.redirect).searchParams.get('state') === l.state, 'state echoed exactly');
  const ts = await exchange(client, l);
  const claims = ts.claims();
  ok(claims.nonce === l.nonce, 'nonce echoed exactly in the ID token (openid-client checked it too)');
  ok(claims.iss === E.ISSUER && claims.aud === E.CLIENT_ID, 'ID token iss and aud');
  ok(typeof claims.auth_time === 'number' && claims.acr && Array.isArray(claims.amr) && claims.jti, 'auth_time, acr, amr, jti');
  ok(claims.exp > claims.iat, 'exp after iat');
  ok(claims.name === 'Taras Shevchenko', 'name with the profile scope');
  const header = JSON.parse(Buffer.from(ts.id_token.split('.')[0], 'base64url'));
  ok(header.alg === 'ES256', 'ID token is ES256');
  const ui = await client.userinfo(ts);
  ok(ui.sub === claims.sub && ui.name === 'Taras Shevchenko', 'userinfo: same sub, name');
  fs.writeFileSync(E.OUT + '/first_token.json', JSON.stringify({ jti: claims.jti, sub: claims.sub }));

  // Pairwise: the same citizen at a second service of another sector.
  const client2 = new issuer.Client({ client_id: E.JWT_CLIENT_ID, redirect_uris: [E.REDIRECT2],
    response_types: ['code'], id_token_signed_response_alg: 'ES256', token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256' }, { keys: [JSON.parse(E.JWT_CLIENT_JWK)] });
  const save = E.REDIRECT; E.REDIRECT = E.REDIRECT2;
  const l2 = await login(client2, 'approve', { scope: 'openid' });
  const ts2 = await exchange(client2, l2);
  E.REDIRECT = save;
  const c2 = ts2.claims();
  ok(true, 'private_key_jwt: openid-client exchanged a code with an ES256 client assertion');
  ok(c2.sub !== claims.sub, 'pairwise: another sector sees another sub for the same citizen');
  ok(c2.name === undefined, 'no name claim without the profile scope');
  const l1b = await login(client);
  ok((await exchange(client, l1b)).claims().sub === claims.sub, 'pairwise: the same sector sees the same sub again');

  // ---------------------------------------------------------------- authorization abuse
  const vf = generators.codeVerifier(), cc = generators.codeChallenge(vf);
  const base = `client_id=${E.CLIENT_ID}&response_type=code&scope=openid&state=S1&code_challenge=${cc}&code_challenge_method=S256`;
  const ru = encodeURIComponent(E.REDIRECT);
  let a = await authorizeRaw(`${base}&redirect_uri=${encodeURIComponent('https://evil.example/cb')}`);
  ok(a.status === 400 && a.loc === null && a.body.includes('invalid_request'), 'unregistered redirect_uri: 400 page, no redirect');
  a = await authorizeRaw(`${base}&redirect_uri=${encodeURIComponent(E.REDIRECT + '/../x')}`);
  ok(a.status === 400 && a.loc === null, 'redirect_uri with a suffix: no redirect');
  a = await authorizeRaw(`${base}&redirect_uri=${encodeURIComponent(E.REDIRECT + '?x=1')}`);
  ok(a.status === 400 && a.loc === null, 'redirect_uri with an added query: no redirect');
  a = await authorizeRaw(base.replace(E.CLIENT_ID, 'nobody') + `&redirect_uri=${ru}`);
  ok(a.status === 400 && a.loc === null && a.body.includes('invalid_client'), 'unknown client: 400 page, no redirect');
  const err = (x) => x.loc && x.loc.searchParams.get('error');
  a = await authorizeRaw(`client_id=${E.CLIENT_ID}&redirect_uri=${ru}&response_type=code&scope=openid&state=S1`);
  ok(err(a) === 'invalid_request' && a.loc.searchParams.get('state') === 'S1', 'no code_challenge: invalid_request, state echoed');
  a = await authorizeRaw(`${base.replace('S256', 'plain')}&redirect_uri=${ru}`);
  ok(err(a) === 'invalid_request', 'code_challenge_method=plain: invalid_request');
  a = await authorizeRaw(`${base.replace(cc, 'short')}&redirect_uri=${ru}`);
  ok(err(a) === 'invalid_request', 'malformed code_challenge: invalid_request');
  a = await authorizeRaw(`${base.replace('response_type=code', 'response_type=token')}&redirect_uri=${ru}`);
  ok(err(a) === 'unsupported_response_type', 'response_type=token: unsupported_response_type');
  a = await authorizeRaw(`${base.replace('scope=openid', 'scope=profile')}&redirect_uri=${ru}`);
  ok(err(a) === 'invalid_scope', 'no openid scope: invalid_scope');
  a = await authorizeRaw(`${base}&redirect_uri=${ru}&state=S2`);
  ok(err(a) === 'invalid_request' && a.loc.searchParams.get('state') === null, 'repeated parameter: invalid_request, no state guessed');
  a = await authorizeRaw(`${base}&redirect_uri=${ru}&nonce=${'x'.repeat(600)}`);
  ok(err(a) === 'invalid_request', 'oversized nonce: invalid_request');
  a = await authorizeRaw(`${base}&redirect_uri=${ru}&nonce=%01`);
  ok(err(a) === 'invalid_request', 'control character in nonce: invalid_request');
  a = await authorizeRaw(`${base}&redirect_uri=${ru}&prompt=none`);
  ok(err(a) === 'interaction_required', 'prompt=none: interaction_required');

  // a misbehaving signer: a code not derived from our challenge, a script link
  for (const mode of ['bad-vc', 'bad-link']) {
    fs.writeFileSync(E.RP_DIR + '/mode', mode);
    a = await authorizeRaw(`${base}&redirect_uri=${ru}`);
    ok(err(a) === 'temporarily_unavailable' && a.loc.searchParams.get('state') === 'S1',
       `signer answers with ${mode}: temporarily_unavailable, no login page`);
    fs.unlinkSync(E.RP_DIR + '/mode');
  }

  // ---------------------------------------------------------------- the page's answers
  let x = await login(client, 'refuse');
  ok(x.p.j.status === 'refused' && new URL(x.p.j.redirect).searchParams.get('error') === 'access_denied'
     && new URL(x.p.j.redirect).searchParams.get('state') === x.state, 'refused: the page says so, access_denied back');
  x = await login(client, 'unusable');
  ok(x.p.j.status === 'unusable' && /cannot be used/.test(x.p.j.message), 'account unusable: the page says so');
  x = await login(client, 'tamper-digest');
  ok(x.p.j.status === 'error' && !x.redirect, 'signature over another digest: no code');
  x = await login(client, 'tamper-sig');
  ok(x.p.j.status === 'error' && !x.redirect, 'signature that does not verify: no code');
  // expiry of the page: nothing approved, the clock passes the session's end
  {
    const url = client.authorizationUrl({ scope: 'openid', state: 's', code_challenge: cc, code_challenge_method: 'S256' });
    const page = await openPage(url);
    advanceClock(400);
    const p = await poll(page);
    ok(p.j.status === 'expired' && /expired/.test(p.j.message), 'expired request: the page says so');
    advanceClock(-400);
  }
  // CSRF on the polling
  {
    const url = client.authorizationUrl({ scope: 'openid', state: 's', code_challenge: cc, code_challenge_method: 'S256' });
    const page = await openPage(url), other = await openPage(url);
    act(page.link, 'approve');
    let p = await poll(page, { cookie: null });
    ok(p.status === 403 && p.j.error === 'invalid_request', 'poll without the cookie: 403');
    p = await poll(page, { body: `txn=${page.txn}&csrf=${other.csrf}`, cookie: other.cookie });
    ok(p.status === 403, "poll with another page's cookie and token: 403");
    p = await poll(page, { origin: 'https://evil.example' });
    ok(p.status === 403, 'poll from another Origin: 403');
    p = await poll(page);
    ok(p.j.status === 'done', 'the real page still gets its code');
    p = await poll(page);
    ok(p.j.status === 'error' && !p.j.redirect, 'a page gives one code only');
  }

  // ---------------------------------------------------------------- token abuse
  const good = (l, over = {}) => Object.assign({ grant_type: 'authorization_code', code: codeOf(l),
    redirect_uri: E.REDIRECT, code_verifier: l.verifier }, over);
  const B = basic(E.CLIENT_ID, E.CLIENT_SECRET);
  x = await login(client);
  let t = await tokenRaw(good(x), basic(E.CLIENT_ID, 'wrong' + E.CLIENT_SECRET.slice(5)));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'wrong client secret: 401 invalid_client');
  t = await tokenRaw(good(x));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'no client authentication: 401 invalid_client');
  t = await tokenRaw(good(x, { client_id: E.CLIENT_ID, client_secret: E.CLIENT_SECRET }));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'client_secret_post: invalid_client');
  t = await tokenRaw(good(x, { grant_type: 'password' }), B);
  ok(t.status === 400 && t.j.error === 'unsupported_grant_type', 'grant_type=password: unsupported_grant_type');
  t = await tokenRaw(good(x), B);
  ok(t.status === 200 && t.j.id_token, 'after the refusals (nothing consumed) the code still works');
  const at1 = t.j.access_token;
  t = await tokenRaw(good(x), B);
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'code used twice: invalid_grant');
  let u = await fetch(E.ISSUER + '/userinfo', { headers: { Authorization: 'Bearer ' + at1 } });
  ok(u.status === 401 && /invalid_token/.test(u.headers.get('www-authenticate') || ''), 'code used twice: its access token is revoked');

  x = await login(client);
  t = await tokenRaw(good(x, { code_verifier: generators.codeVerifier() }), B);
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'wrong PKCE verifier: invalid_grant');
  x = await login(client);
  const f = good(x); delete f.code_verifier;
  t = await tokenRaw(f, B);
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'missing PKCE verifier: invalid_grant');
  x = await login(client);
  t = await tokenRaw(good(x, { redirect_uri: E.REDIRECT2 }), B);
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'other redirect_uri at the token endpoint: invalid_grant');
  x = await login(client);
  advanceClock(61);
  t = await tokenRaw(good(x), B);
  ok(t.status === 400 && t.j.error === 'invalid_grant' && /expired/.test(t.j.error_description), 'code after 60 s: invalid_grant');
  advanceClock(-61);
  t = await tokenRaw({ grant_type: 'authorization_code', code: 'nope', redirect_uri: E.REDIRECT, code_verifier: vf }, B);
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'unknown code: invalid_grant');
  t = await tokenRaw({ grant_type: 'authorization_code', code: 'x'.repeat(9000) }, B);
  ok(t.status === 413 && t.j.error === 'invalid_request', 'oversized body: invalid_request');
  t = await tokenRaw({ grant_type: 'authorization_code', code: '%zz' }, B);
  // URLSearchParams encodes '%' itself; send a raw malformed body:
  const raw = await fetch(E.ISSUER + '/token', { method: 'POST', headers: { Authorization: B,
    'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=%zz' });
  ok(raw.status === 400 && (await raw.json()).error === 'invalid_request', 'malformed form encoding: invalid_request');
  // a code of client 1 exchanged by client 2 (private_key_jwt)
  x = await login(client);
  try {
    await client2.grant({ grant_type: 'authorization_code', code: codeOf(x), redirect_uri: E.REDIRECT, code_verifier: x.verifier });
    ok(false, "another client's code: refused");
  } catch (e) { ok(e instanceof errors.OPError && e.error === 'invalid_grant', "another client's code: invalid_grant"); }
  // private_key_jwt: a replayed assertion, a foreign key
  const jwk = JSON.parse(E.JWT_CLIENT_JWK);
  const mkAssertion = (key, jti) => {
    const h = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT' })).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const p = Buffer.from(JSON.stringify({ iss: E.JWT_CLIENT_ID, sub: E.JWT_CLIENT_ID, aud: E.ISSUER + '/token',
      exp: now + 60, iat: now, jti })).toString('base64url');
    const sig = crypto.sign('sha256', Buffer.from(h + '.' + p), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return h + '.' + p + '.' + sig;
  };
  const key2 = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const jwtForm = (as) => ({ grant_type: 'authorization_code', code: 'none', redirect_uri: E.REDIRECT2, code_verifier: vf,
    client_id: E.JWT_CLIENT_ID, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: as });
  const as1 = mkAssertion(key2, 'j-' + Date.now());
  t = await tokenRaw(jwtForm(as1));
  ok(t.status === 400 && t.j.error === 'invalid_grant', 'private_key_jwt by hand: authenticated (then the bogus code is refused)');
  t = await tokenRaw(jwtForm(as1));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'private_key_jwt: a replayed assertion is invalid_client');
  const foreign = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  t = await tokenRaw(jwtForm(mkAssertion(foreign, 'j2-' + Date.now())));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'private_key_jwt: an assertion under another key is invalid_client');
  const noneAlg = Buffer.from('{"alg":"none"}').toString('base64url') + '.' + as1.split('.')[1] + '.';
  t = await tokenRaw(jwtForm(noneAlg));
  ok(t.status === 401 && t.j.error === 'invalid_client', 'private_key_jwt: alg none is invalid_client');

  // ---------------------------------------------------------------- userinfo
  u = await fetch(E.ISSUER + '/userinfo');
  ok(u.status === 401 && /Bearer/.test(u.headers.get('www-authenticate') || ''), 'userinfo without a token: 401');
  u = await fetch(E.ISSUER + '/userinfo', { headers: { Authorization: 'Bearer nope' } });
  ok(u.status === 401 && (await u.json()).error === 'invalid_token', 'userinfo with a bogus token: invalid_token');

  // ---------------------------------------------------------------- key rotation
  const kid1 = header.kid;
  execFileSync(E.OIDC_BIN, ['key', 'rotate', '--dir', E.OP_DIR]);
  const jwks = await (await fetch(E.ISSUER + '/jwks')).json();
  ok(jwks.keys.length === 2 && jwks.keys.some((k) => k.kid === kid1), 'rotation: the old key stays in JWKS');
  const issuerB = await Issuer.discover(E.ISSUER);
  const clientB = new issuerB.Client({ client_id: E.CLIENT_ID, client_secret: E.CLIENT_SECRET, redirect_uris: [E.REDIRECT],
    response_types: ['code'], id_token_signed_response_alg: 'ES256' });
  const ts3 = await exchange(clientB, await login(clientB));
  const kid3 = JSON.parse(Buffer.from(ts3.id_token.split('.')[0], 'base64url')).kid;
  ok(kid3 !== kid1 && jwks.keys[0].kid === kid3, 'rotation: new tokens carry the new kid');
  try { await clientB.validateIdToken(ts, l.nonce, 'token'); ok(true, 'rotation: a token of the old key still validates'); }
  catch (e) { ok(e.message.includes('expired'), 'rotation: a token of the old key still validates (' + e.message + ')'); }
  advanceClock(700);
  const jwks2 = await (await fetch(E.ISSUER + '/jwks')).json();
  ok(jwks2.keys.length === 1 && jwks2.keys[0].kid === kid3, 'rotation: the old key leaves JWKS after its tokens expired');
  advanceClock(-700);

  fs.writeFileSync(E.OUT + '/authorize_url.txt', client.authorizationUrl({ scope: 'openid', state: 'shot',
    code_challenge: cc, code_challenge_method: 'S256' }));
  console.log(failures ? `${failures} failed` : 'all passed');
  process.exit(failures ? 1 : 0);
}
main().catch((e) => { console.log('not ok - exception: ' + (e.stack || e)); process.exit(1); });
