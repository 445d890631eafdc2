// The OpenID Foundation's Basic and Config OP checks that touch the
// authorization endpoint, run by a certified relying party (openid-client)
// with its own validation on: max_age (the client checks auth_time against
// it), prompt=login, prompt=none with and without a session, the nonce,
// request objects refused, and a request narrower than the grant.
//
//   node conformance.mjs --issuer URL --client-id ID --client-secret SECRET \
//     --email EMAIL --password PASSWORD --redirect-uri URI
//
// Prints one JSON object: what each check saw, {"failed": why} for a check
// that failed ({"ok": false, "step", "error"} and exit status 1 when
// discovery or the first login fails). No token is ever printed. The browser, the
// login and the consent page are flow.mjs's.

import * as client from 'openid-client';
import { Browser, FlowError, authorize, check, describe, options, runScript, versionOf } from './flow.mjs';

const WIDE = 'openid profile.email:read history:read';
const now = () => Math.floor(Date.now() / 1000);
const wentToLogin = (trail) => trail.includes('GET /login 200') && trail.includes('POST /login 303');

async function main(result, step) {
  const opts = options();
  step('discovery');
  const config = await client.discovery(new URL(opts.issuer), opts.clientId, opts.clientSecret, undefined, {
    execute: [client.allowInsecureRequests],
    algorithm: 'oidc',
  });
  client.enableNonRepudiationChecks(config);
  const as = config.serverMetadata();
  result.discovery = {
    request_parameter_supported: as.request_parameter_supported,
    request_uri_parameter_supported: as.request_uri_parameter_supported,
  };
  const browser = new Browser(opts.redirectUri);

  // One authorization through the browser and the code exchange, with the
  // client's checks (state, iss, nonce, max_age against auth_time).
  async function codeFlow(extra, checks = {}) {
    const nonce = extra.noNonce ? undefined : client.randomNonce();
    const auth = await authorize(config, browser, opts, { scope: WIDE, nonce, ...extra });
    const tokens = await client.authorizationCodeGrant(config, auth.callback, {
      pkceCodeVerifier: auth.codeVerifier,
      expectedState: auth.state,
      ...(nonce ? { expectedNonce: nonce } : {}),
      ...checks,
    });
    const claims = tokens.id_token ? tokens.claims() : undefined;
    return { auth, tokens, claims };
  }

  // The client must see this error in the authorization response, after
  // its own iss and state checks.
  async function refused(b, extra) {
    const auth = await authorize(config, b, opts, { scope: WIDE, ...extra });
    try {
      await client.authorizationCodeGrant(config, auth.callback, {
        pkceCodeVerifier: auth.codeVerifier,
        expectedState: auth.state,
      });
    } catch (err) {
      if (err instanceof client.AuthorizationResponseError) return { error: err.error, trail: auth.trail };
      throw err;
    }
    throw new FlowError('the authorization gave a code');
  }

  step('first login and consent');
  const first = await codeFlow({});
  result.first = { login: wentToLogin(first.auth.trail), auth_time: typeof first.claims.auth_time };

  // Each check records what it saw, or {failed: why}: one failing check
  // does not hide the others.
  async function record(key, name, fn) {
    step(name);
    try {
      result[key] = await fn();
    } catch (err) {
      result[key] = { failed: err instanceof FlowError ? err.message : describe(err) };
    }
  }

  let lastLogin;
  await record('max_age_0', 'max_age=0 (oidcc-max-age-1)', async () => {
    const before = now();
    const again = await codeFlow({ params: { max_age: '0' } }, { maxAge: 0 });
    lastLogin = again.claims.auth_time;
    return { login: wentToLogin(again.auth.trail), auth_time_is_new: lastLogin >= before && lastLogin <= now() };
  });

  await record('max_age_3600', 'max_age=3600 (oidcc-max-age-10000)', async () => {
    const within = await codeFlow({ params: { max_age: '3600' } }, { maxAge: 3600 });
    return { trail: within.auth.trail, auth_time_is_the_login: within.claims.auth_time === lastLogin };
  });

  await record('prompt_login', 'prompt=login (oidcc-prompt-login)', async () => {
    const before = now();
    const relogin = await codeFlow({ prompt: 'login' });
    return { login: wentToLogin(relogin.auth.trail), auth_time_is_new: relogin.claims.auth_time >= before };
  });

  await record('prompt_none_logged_in', 'prompt=none with a session (oidcc-prompt-none-logged-in)', async () => {
    const silent = await codeFlow({ prompt: 'none' });
    return { trail: silent.auth.trail, nonce_checked: typeof silent.claims.nonce === 'string' };
  });

  await record('prompt_none_not_logged_in', 'prompt=none without a session (oidcc-prompt-none-not-logged-in)', () =>
    refused(new Browser(opts.redirectUri), { prompt: 'none' }),
  );

  await record('narrower', 'a narrower request than the grant', async () => {
    const narrow = await codeFlow({ scope: 'history:read', noNonce: true });
    return { trail: narrow.auth.trail, scope: narrow.tokens.scope, id_token: typeof narrow.tokens.id_token };
  });

  await record('request', 'a request object (oidcc-unsigned-request-object-...)', () =>
    refused(browser, { params: { request: 'eyJhbGciOiJub25lIn0.e30.' } }),
  );
  await record('request_uri', 'a request_uri (oidcc-request-uri-unsigned)', () =>
    refused(browser, { params: { request_uri: `${opts.redirectUri.replace(/\/[^/]*$/, '')}/request.jwt` } }),
  );
}

await runScript('conformance.mjs', main, { 'openid-client': versionOf('openid-client') });
