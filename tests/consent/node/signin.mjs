// A generic OpenID Connect relying party signs a customer in: openid-client
// with its own checks on (discovery with issuer equality, PKCE S256, state,
// nonce, the RFC 9207 `iss`, the ID token's claims and signature against the
// JWKS, UserInfo's `sub`), asking `openid profile email` and nothing of ours:
// no purpose, no data scope, as any OIDC library does by default.
//
// The customer's browser is the caller's (tests/liveserver.py), so this runs
// twice:
//
//   node signin.mjs start  --issuer URL --client-id ID --client-secret S --redirect-uri URI
//     prints {"url", "state", "nonce", "verifier"}: where to send the browser
//   node signin.mjs finish ... --callback URL --state S --nonce N --verifier V
//     prints what the client got: the token's scope, the ID token's claim
//     names, whether its sub is UserInfo's, and UserInfo's claims
//
// On failure prints {"ok": false, "error": ...} and exits with status 1.
// No token is ever printed.

import { parseArgs } from 'node:util';
import * as client from 'openid-client';

const SCOPE = 'openid profile email';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    callback: { type: 'string' },
    state: { type: 'string' },
    nonce: { type: 'string' },
    verifier: { type: 'string' },
  },
});

async function configure() {
  const config = await client.discovery(
    new URL(values.issuer),
    values['client-id'],
    values['client-secret'],
    undefined,
    { execute: [client.allowInsecureRequests], algorithm: 'oidc' },
  );
  client.enableNonRepudiationChecks(config); // ID token signatures against jwks_uri
  return config;
}

async function start() {
  const config = await configure();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: values['redirect-uri'],
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, state, nonce, verifier };
}

async function finish() {
  const config = await configure();
  const tokens = await client.authorizationCodeGrant(config, new URL(values.callback), {
    pkceCodeVerifier: values.verifier,
    expectedState: values.state,
    expectedNonce: values.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return {
    ok: true,
    token_type: tokens.token_type,
    scope: tokens.scope,
    id_token_claims: Object.keys(claims).sort(),
    userinfo_sub_matches: info.sub === claims.sub,
    userinfo: Object.fromEntries(Object.entries(info).filter(([k]) => k !== 'sub')),
  };
}

try {
  const phases = { start, finish };
  const phase = phases[positionals[0]];
  if (!phase) throw new Error('the first argument is start or finish');
  process.stdout.write(`${JSON.stringify(await phase())}\n`);
} catch (err) {
  const error = err instanceof client.ResponseBodyError ? `${err.error}: ${err.error_description}` : String(err);
  process.stdout.write(`${JSON.stringify({ ok: false, error })}\n`);
  process.stderr.write(`signin.mjs: ${error}\n`);
  process.exitCode = 1;
}
