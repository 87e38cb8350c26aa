// The "Log in with duosign" demo (scripts/demo.sh): a small web service that
// knows only OpenID Connect (openid-client from npm), and a scripted browser.
// The service redirects /login to duosign-oidc; the browser opens the login
// page, shows its verification code and QR link, the citizen approves
// (CITIZEN_CMD LINK), the page's poll returns the redirect, the service
// exchanges the code and prints the verified ID token's claims.
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, APP_PORT, CITIZEN_CMD.
'use strict';
const http = require('http');
const { execFileSync } = require('child_process');
const { Issuer, generators } = require('openid-client');

const E = process.env;
const REDIRECT = `http://127.0.0.1:${E.APP_PORT}/cb`;
let started = 0;

async function service() {
  const issuer = await Issuer.discover(E.ISSUER);
  const client = new issuer.Client({ client_id: E.CLIENT_ID, client_secret: E.CLIENT_SECRET, redirect_uris: [REDIRECT],
    response_types: ['code'], id_token_signed_response_alg: 'ES256' });
  const pending = {}; // state -> { verifier, nonce } (a real service keeps this in its session)
  return new Promise((resolve) => {
    const srv = http.createServer(async (req, res) => {
      const url = new URL(req.url, REDIRECT);
      if (url.pathname === '/login') {
        const verifier = generators.codeVerifier(), state = generators.state(), nonce = generators.nonce();
        pending[state] = { verifier, nonce };
        res.writeHead(302, { Location: client.authorizationUrl({ scope: 'openid profile', state, nonce,
          code_challenge: generators.codeChallenge(verifier), code_challenge_method: 'S256' }) });
        return res.end();
      }
      if (url.pathname === '/cb') {
        const params = client.callbackParams(req);
        const p = pending[params.state] || {};
        try {
          const ts = await client.callback(REDIRECT, params, { code_verifier: p.verifier, state: params.state, nonce: p.nonce });
          const claims = ts.claims();
          const who = await client.userinfo(ts);
          res.end(`Welcome, ${who.name || who.sub}\n`);
          console.log('service: ID token verified by openid-client (ES256, JWKS, iss, aud, exp, nonce, state, PKCE)');
          console.log(`service: ${Date.now() - started} ms from /login to the verified ID token (the citizen's two-party signature included)`);
          console.log('service: claims ' + JSON.stringify(claims, null, 2));
          srv.close();
          resolve(claims);
        } catch (e) {
          res.writeHead(400);
          res.end(String(e));
          console.log('service: login failed: ' + e.message);
          srv.close();
          resolve(null);
        }
        return;
      }
      res.writeHead(404);
      res.end();
    });
    srv.listen(Number(E.APP_PORT), '127.0.0.1', () => browser());
  });
}

// The citizen's browser: what the login page's script does, by hand.
async function browser() {
  started = Date.now();
  let res = await fetch(`http://127.0.0.1:${E.APP_PORT}/login`, { redirect: 'manual' });
  const page = await fetch(res.headers.get('location'));
  const html = await page.text(), cookie = (page.headers.get('set-cookie') || '').split(';')[0];
  const m = (re) => (html.match(re) || [])[1];
  const link = m(/id="link" href="([^"]+)"/);
  console.log(`browser: the login page of "${m(/id="service">([^<]+)</)}" shows code ${m(/id="vc">(\d{4})</)} and a QR code of ${link}`);
  execFileSync(E.CITIZEN_CMD, [link], { stdio: 'inherit' });
  for (;;) {
    res = await fetch(E.ISSUER + '/login/poll', { method: 'POST', body: `txn=${m(/data-txn="([^"]+)"/)}&csrf=${m(/data-csrf="([^"]+)"/)}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie } });
    const j = await res.json();
    console.log(`browser: ${j.message}`);
    if (j.status === 'waiting') continue;
    if (!j.redirect) process.exit(1);
    const back = await fetch(j.redirect);
    console.log('browser: the service says: ' + (await back.text()).trim());
    return;
  }
}

service().then((claims) => process.exit(claims ? 0 : 1)).catch((e) => { console.error(e); process.exit(1); });
