// A certified relying party (openid-client, on oauth4webapi) drives our
// authorization server end to end, with all of the client's own validation
// on: discovery (issuer equality), the authorization code flow with PKCE S256
// and state, the RFC 9207 `iss` check, token response checks, refresh token
// rotation and replay, code reuse, revocation and introspection. With OpenID
// Connect advertised (/.well-known/openid-configuration answers 200) it also
// asks for `openid` with a nonce, so the ID token is validated (claims and
// signature against the JWKS) and UserInfo's `sub` is checked.
//
// The user agent is a tiny browser: Node's fetch with a cookie jar, no
// automatic redirects, and HTML forms read from the page and submitted as a
// browser would (hidden inputs, ticked checkboxes, the selected option, the
// clicked button). It never fetches the redirect URI: the client reads the
// code from the Location header.
//
//   node flow.mjs --issuer URL --client-id ID --client-secret SECRET \
//     --email EMAIL --password PASSWORD --redirect-uri URI \
//     [--scope "profile.email:read preferences:read"] [--untick SCOPE]...
//
// Each option may come from the environment instead (FLOW_ISSUER,
// FLOW_CLIENT_ID, ...). Prints one JSON object on stdout: the result, or
// {"ok": false, "step": ..., "error": ...} after a failure, which also exits
// with status 1 and explains itself on stderr. No token is ever printed.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as client from 'openid-client';

const PURPOSE = 'dpv:ServiceProvision';

export class FlowError extends Error {}

export function check(condition, message, details) {
  if (!condition) {
    throw new FlowError(details === undefined ? message : `${message}: ${JSON.stringify(details)}`);
  }
}

export function options() {
  const { values } = parseArgs({
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'redirect-uri': { type: 'string' },
      scope: { type: 'string' },
      untick: { type: 'string', multiple: true },
      algorithm: { type: 'string' },
    },
  });
  const get = (name, fallback) => {
    const env = `FLOW_${name.toUpperCase().replaceAll('-', '_')}`;
    const value = values[name] ?? process.env[env];
    if (value === undefined && fallback === undefined) throw new FlowError(`--${name} (or ${env}) is required`);
    return value ?? fallback;
  };
  return {
    issuer: get('issuer'),
    clientId: get('client-id'),
    clientSecret: get('client-secret'),
    email: get('email'),
    password: get('password'),
    redirectUri: get('redirect-uri'),
    scope: get('scope', 'profile.email:read preferences:read'),
    untick: values.untick ?? (process.env.FLOW_UNTICK ? process.env.FLOW_UNTICK.split(' ') : []),
    algorithm: get('algorithm', 'auto'),
  };
}

export function versionOf(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

const words = (scope) => (scope ?? '').split(' ').filter(Boolean);
const sameSet = (a, b) =>
  a.length === b.length && new Set(a).size === a.length && [...a].sort().join(' ') === [...b].sort().join(' ');

// -- a tiny browser ------------------------------------------------------------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#34': '"' };

function unescapeHtml(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1].toLowerCase() === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

// What a person would read on a page (for error messages).
function pageText(html) {
  const text = html
    .replace(/<(style|script)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return unescapeHtml(text).slice(0, 400);
}

function attributes(tag) {
  const attrs = {};
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  const body = tag.replace(/^<\s*[a-z]+/i, '');
  for (const m of body.matchAll(re)) {
    attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// The first POST form of a page: its action, and what a browser would send
// for it before the user touches anything.
function readForm(html, pageUrl) {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  check(m, `no form on ${pageUrl.pathname}`, pageText(html));
  const form = attributes(`<form ${m[1]}>`);
  check((form.method ?? 'get').toLowerCase() === 'post', 'the form is not a POST form', form);
  const inner = m[2];
  const fields = [];
  const checkboxes = [];
  const buttons = [];
  for (const t of inner.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(t[0]);
    if (!a.name) continue;
    const type = (a.type ?? 'text').toLowerCase();
    if (type === 'checkbox') checkboxes.push({ name: a.name, value: a.value ?? 'on', checked: 'checked' in a });
    else if (type === 'hidden') fields.push([a.name, a.value ?? '']);
    else if (type === 'submit') buttons.push({ name: a.name, value: a.value ?? '' });
    else fields.push([a.name, a.value ?? '']);
  }
  for (const s of inner.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
    const name = attributes(`<select ${s[1]}>`).name;
    const opts = [...s[2].matchAll(/<option\b[^>]*>/gi)].map((o) => attributes(o[0]));
    check(opts.length > 0, `select ${name} has no option`);
    fields.push([name, (opts.find((o) => 'selected' in o) ?? opts[0]).value]);
  }
  for (const b of inner.matchAll(/<button\b[^>]*>/gi)) {
    const a = attributes(b[0]);
    if (a.name && (a.type ?? 'submit').toLowerCase() === 'submit') buttons.push({ name: a.name, value: a.value ?? '' });
  }
  return { action: new URL(form.action ?? '', pageUrl), fields, checkboxes, buttons };
}

export class Browser {
  constructor(redirectUri) {
    this.redirectUri = redirectUri;
    this.cookies = new Map(); // "name\0path" -> {name, value, path}
    this.trail = [];
  }

  remember(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name}\0${path}`;
      if (expired) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  cookieHeader(url) {
    const matches = (path) =>
      url.pathname === path || url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`);
    return [...this.cookies.values()]
      .filter((c) => matches(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  async request(method, url, form) {
    const headers = { accept: 'text/html' };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = url.origin;
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.remember(url, response);
    this.trail.push(`${method} ${url.pathname} ${response.status}`);
    return response;
  }

  // Load a page, following redirects within the server. Returns the page,
  // or {callback} when the server sends the browser to the redirect URI.
  async go(method, url, form) {
    let response = await this.request(method, url, form);
    for (let hops = 0; hops < 10; hops++) {
      if (response.status < 300 || response.status >= 400) {
        const html = await response.text();
        check(response.status === 200, `${method} ${url.pathname} answered ${response.status}`, pageText(html));
        return { url, html };
      }
      // RFC 9700 4.12: never 307 after a POST that carried credentials.
      check(method === 'GET' || response.status === 303, `POST ${url.pathname} redirected with ${response.status}, not 303`);
      const location = response.headers.get('location');
      check(location, `${response.status} from ${url.pathname} without Location`);
      await response.arrayBuffer();
      if (location.startsWith(`${this.redirectUri}?`)) return { callback: new URL(location) };
      const next = new URL(location, url);
      check(next.origin === url.origin, `${url.pathname} redirected off the server, not to the redirect URI`, location);
      url = next;
      method = 'GET';
      form = undefined;
      response = await this.request('GET', url);
    }
    throw new FlowError('too many redirects');
  }

  async submit(page, { fill = {}, untick = [], button }) {
    const f = readForm(page.html, page.url);
    const sent = f.fields.map(([k, v]) => [k, k in fill ? fill[k] : v]);
    for (const [k, v] of Object.entries(fill)) if (!f.fields.some(([n]) => n === k)) sent.push([k, v]);
    for (const c of f.checkboxes) if (c.checked && !untick.includes(c.value)) sent.push([c.name, c.value]);
    if (button) {
      const b = f.buttons.find((x) => x.name === button.name && x.value === button.value);
      check(b, `no ${button.name}=${button.value} button on ${page.url.pathname}`, f.buttons);
      sent.push([b.name, b.value]);
    }
    return { form: f, result: await this.go('POST', f.action, sent) };
  }
}

// One authorization: the browser from the authorization URL to the redirect
// URI, logging in and answering the consent page when they come.
export async function authorize(config, browser, opts, extra) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const params = {
    redirect_uri: opts.redirectUri,
    scope: extra.scope,
    purpose: PURPOSE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    ...(extra.nonce ? { nonce: extra.nonce } : {}),
    ...(extra.prompt ? { prompt: extra.prompt } : {}),
    ...(extra.params ?? {}),
  };
  const url = client.buildAuthorizationUrl(config, params);
  const trailStart = browser.trail.length;
  let page = await browser.go('GET', url);
  let offered = null;
  if (!page.callback && page.url.pathname === '/login') {
    ({ result: page } = await browser.submit(page, { fill: { email: opts.email, password: opts.password } }));
    check(page.callback || page.url.pathname !== '/login', 'the login failed', page.html && pageText(page.html));
  }
  if (!page.callback) {
    check(page.url.pathname === '/oauth/authorize', `expected the consent page, got ${page.url.pathname}`);
    const form = readForm(page.html, page.url);
    for (const name of ['csrf', 'request', 'duration_days']) {
      check(form.fields.some(([k]) => k === name), `the consent form has no ${name} field`);
    }
    offered = form.checkboxes.map((c) => c.value);
    ({ result: page } = await browser.submit(page, {
      untick: extra.untick ?? [],
      button: { name: 'decision', value: extra.decision ?? 'allow' },
    }));
  }
  check(page.callback, 'the flow did not end at the redirect URI');
  const callback = page.callback;
  return {
    callback,
    codeVerifier,
    state,
    offered,
    trail: browser.trail.slice(trailStart),
    iss: callback.searchParams.get('iss'),
  };
}

// The promise must fail with this OAuth error from the server.
async function oauthError(promise, expected, what) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    if (err instanceof client.ResponseBodyError && err.error === expected) {
      return { error: err.error, status: err.status };
    }
    throw new FlowError(`${what}: expected the OAuth error ${expected}, got ${describe(err)}`);
  }
  throw new FlowError(`${what}: expected the OAuth error ${expected}, but it succeeded (${Object.keys(value ?? {})})`);
}

async function introspect(config, token, hint) {
  const info = await client.tokenIntrospection(config, token, { token_type_hint: hint });
  check(typeof info.active === 'boolean', 'introspection without a boolean active', info);
  return info;
}

async function inactive(config, token, hint, what) {
  const info = await introspect(config, token, hint);
  check(info.active === false, `${what} is still active`, info);
  check(Object.keys(info).length === 1, `an inactive ${what} should say only active:false (RFC 7662 2.2)`, info);
  return false;
}

const bytesHidden = (key, value) => (ArrayBuffer.isView(value) ? `<${value.byteLength} bytes>` : value);

export function describe(err) {
  if (err instanceof client.ResponseBodyError) {
    return `${err.name} HTTP ${err.status} ${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  }
  if (err instanceof client.AuthorizationResponseError) {
    return `${err.name} ${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    return `${err.name} HTTP ${err.status}: ${JSON.stringify(err.cause)}`;
  }
  let text = `${err.name ?? 'Error'}${err.code ? ` [${err.code}]` : ''}: ${err.message}`;
  for (let cause = err.cause, depth = 0; cause && depth < 3; cause = cause.cause, depth++) {
    if (cause instanceof Error) text += `; caused by ${cause.name}${cause.code ? ` [${cause.code}]` : ''}: ${cause.message}`;
    else if (typeof cause === 'object' && !(cause instanceof Response)) text += `; cause: ${JSON.stringify(cause, bytesHidden).slice(0, 800)}`;
  }
  return text;
}

// -- the flow ----------------------------------------------------------------

async function main(result, step) {
  const opts = options();
  const issuer = new URL(opts.issuer);

  step('discovery');
  // auto: OpenID Connect discovery once the server offers it, so the flow
  // gets stricter by itself; oauth2: RFC 8414 metadata and no ID tokens.
  let algorithm = opts.algorithm;
  if (algorithm === 'auto') {
    const oidcDoc = await fetch(new URL('/.well-known/openid-configuration', issuer));
    await oidcDoc.arrayBuffer();
    algorithm = oidcDoc.status === 200 ? 'oidc' : 'oauth2';
  }
  check(['oidc', 'oauth2'].includes(algorithm), '--algorithm is auto, oidc or oauth2', algorithm);
  const config = await client.discovery(issuer, opts.clientId, opts.clientSecret, undefined, {
    execute: [client.allowInsecureRequests],
    algorithm,
  });
  const as = config.serverMetadata();
  const oidc = algorithm === 'oidc';
  if (oidc) client.enableNonRepudiationChecks(config); // ID token signatures against jwks_uri
  result.discovery = {
    algorithm,
    issuer: as.issuer,
    iss_parameter_supported: as.authorization_response_iss_parameter_supported === true,
    code_challenge_methods_supported: as.code_challenge_methods_supported,
  };
  check(as.supportsPKCE('S256'), 'the server does not advertise PKCE S256');
  check(
    as.authorization_response_iss_parameter_supported === true,
    'authorization_response_iss_parameter_supported is not true, so the RFC 9207 check would be skipped',
  );

  const requested = words(opts.scope);
  const scope = [...(oidc ? ['openid'] : []), ...requested].join(' ');
  const granted = [...(oidc ? ['openid'] : []), ...requested.filter((s) => !opts.untick.includes(s))];
  const browser = new Browser(opts.redirectUri);
  const tokenSummary = (t) => ({
    token_type: t.token_type,
    scope_is_granted: sameSet(words(t.scope), granted),
    refresh_token: typeof t.refresh_token === 'string',
  });

  step('first authorization (login and consent)');
  const nonce = oidc ? client.randomNonce() : undefined;
  const first = await authorize(config, browser, opts, { scope, nonce, untick: opts.untick });
  result.authorizations = [{ trail: first.trail, iss: first.iss, offered: first.offered }];

  step('code exchange');
  const a = await client.authorizationCodeGrant(config, first.callback, {
    pkceCodeVerifier: first.codeVerifier,
    expectedState: first.state,
    ...(oidc ? { expectedNonce: nonce, idTokenExpected: true } : {}),
  });
  // openid-client has checked iss (RFC 9207) and state before the exchange.
  check(first.iss === as.issuer, 'the authorization response lacks the right iss', first.iss);
  check(a.token_type === 'bearer', 'token_type is not Bearer', a.token_type);
  check(sameSet(words(a.scope), granted), 'the token response scope is not exactly what was granted', {
    scope: a.scope,
    granted,
  });
  check(typeof a.refresh_token === 'string', 'no refresh token');
  check(a.expiresIn() > 0, 'expires_in is not positive', a.expires_in);
  result.code_exchange = { ...tokenSummary(a), id_token: typeof a.id_token === 'string' };
  let sub;
  if (oidc) {
    const claims = a.claims();
    check(claims && typeof claims.sub === 'string', 'no ID token claims');
    check(claims.aud === opts.clientId || (Array.isArray(claims.aud) && claims.aud.includes(opts.clientId)), 'aud', claims.aud);
    for (const name of ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'auth_time']) {
      check(name in claims, `the ID token has no ${name}`, Object.keys(claims));
    }
    sub = claims.sub;
  }

  step('introspection of live tokens');
  const live = await introspect(config, a.access_token, 'access_token');
  check(live.active === true, 'the new access token is not active', live);
  check(live.client_id === opts.clientId, 'introspection names another client', live.client_id);
  check(sameSet(words(live.scope), granted), 'introspected scope is not what was granted', live.scope);
  if (oidc) check(live.sub === sub, 'introspection sub differs from the ID token sub', { live: live.sub, sub });
  const liveRefresh = await introspect(config, a.refresh_token, 'refresh_token');
  check(liveRefresh.active === true, 'the new refresh token is not active', liveRefresh);
  result.introspection = { access_token: true, refresh_token: true, client_id: true, scope_is_granted: true };

  if (oidc && as.userinfo_endpoint) {
    step('userinfo');
    const info = await client.fetchUserInfo(config, a.access_token, sub);
    result.userinfo = { sub_matches: info.sub === sub };
  }

  step('refresh rotation');
  const b = await client.refreshTokenGrant(config, a.refresh_token);
  check(typeof b.refresh_token === 'string', 'no new refresh token: rotation is off');
  check(b.refresh_token !== a.refresh_token, 'the refresh token did not rotate');
  check(b.access_token !== a.access_token, 'the access token did not change');
  check(sameSet(words(b.scope), granted), 'the refreshed scope is not what was granted', b.scope);
  // An ID token on refresh is optional (OIDC Core 12.2); the client has
  // validated it if there is one, and it must name the same subject.
  if (b.id_token) check(b.claims().sub === sub, 'the refreshed ID token names another sub');
  result.refresh = { ...tokenSummary(b), rotated: true };

  step('replay of the rotated refresh token');
  const replay = await oauthError(client.refreshTokenGrant(config, a.refresh_token), 'invalid_grant', 'replaying the old refresh token');
  result.refresh_replay = {
    ...replay,
    newest_refresh_token_active: await inactive(config, b.refresh_token, 'refresh_token', 'the newest refresh token after a replay'),
    newest_access_token_active: await inactive(config, b.access_token, 'access_token', 'the newest access token after a replay'),
    first_access_token_active: await inactive(config, a.access_token, 'access_token', 'the first access token after a replay'),
  };
  const dead = await oauthError(client.refreshTokenGrant(config, b.refresh_token), 'invalid_grant', 'refreshing with the newest token of a revoked family');
  result.refresh_replay.newest_refresh_token_grant = dead.error;

  step('second authorization (consent again, code reused)');
  const nonce2 = oidc ? client.randomNonce() : undefined;
  const second = await authorize(config, browser, opts, { scope, nonce: nonce2, prompt: 'consent' });
  result.authorizations.push({ trail: second.trail, iss: second.iss, offered: second.offered });
  const checks2 = {
    pkceCodeVerifier: second.codeVerifier,
    expectedState: second.state,
    ...(oidc ? { expectedNonce: nonce2, idTokenExpected: true } : {}),
  };
  const c = await client.authorizationCodeGrant(config, second.callback, checks2);
  check(sameSet(words(c.scope), [...(oidc ? ['openid'] : []), ...requested]), 'second token scope', c.scope);
  check((await introspect(config, c.access_token, 'access_token')).active === true, 'the second access token is not active');
  const reuse = await oauthError(client.authorizationCodeGrant(config, second.callback, checks2), 'invalid_grant', 'exchanging the code a second time');
  result.code_reuse = {
    ...reuse,
    first_access_token_active: await inactive(config, c.access_token, 'access_token', 'the access token of a reused code'),
    first_refresh_token_active: await inactive(config, c.refresh_token, 'refresh_token', 'the refresh token of a reused code'),
  };

  step('third authorization (revocation)');
  const nonce3 = oidc ? client.randomNonce() : undefined;
  const third = await authorize(config, browser, opts, { scope, nonce: nonce3, prompt: 'consent' });
  result.authorizations.push({ trail: third.trail, iss: third.iss, offered: third.offered });
  const d = await client.authorizationCodeGrant(config, third.callback, {
    pkceCodeVerifier: third.codeVerifier,
    expectedState: third.state,
    ...(oidc ? { expectedNonce: nonce3, idTokenExpected: true } : {}),
  });
  check((await introspect(config, d.refresh_token, 'refresh_token')).active === true, 'the third refresh token is not active');
  await client.tokenRevocation(config, d.refresh_token, { token_type_hint: 'refresh_token' });
  result.revocation = {
    refresh_token_active: await inactive(config, d.refresh_token, 'refresh_token', 'a revoked refresh token'),
    // RFC 7009 2.1: revoking a refresh token SHOULD end the access tokens of its grant.
    access_token_active: await inactive(config, d.access_token, 'access_token', 'the access token of a revoked refresh token'),
    refresh_token_grant: (
      await oauthError(client.refreshTokenGrant(config, d.refresh_token), 'invalid_grant', 'refreshing with a revoked refresh token')
    ).error,
  };
  // Revoking an unknown or already revoked token is not an error (RFC 7009 2.2).
  await client.tokenRevocation(config, d.refresh_token, { token_type_hint: 'refresh_token' });
  result.revocation.repeat_revocation_ok = true;

  step('fourth authorization (denied)');
  const fourth = await authorize(config, browser, opts, { scope, prompt: 'consent', decision: 'deny' });
  result.authorizations.push({ trail: fourth.trail, iss: fourth.iss, offered: fourth.offered });
  // The client checks iss and state before it looks at the error, so the
  // error response is held to the same rules as a success (RFC 9207 2.4).
  try {
    await client.authorizationCodeGrant(config, fourth.callback, {
      pkceCodeVerifier: fourth.codeVerifier,
      expectedState: fourth.state,
    });
    throw new FlowError('a denied authorization gave the client tokens');
  } catch (err) {
    if (!(err instanceof client.AuthorizationResponseError)) throw err;
    result.denied = { error: err.error };
  }
  check(result.denied.error === 'access_denied', 'a denial is not access_denied', result.denied);
  check(!fourth.callback.searchParams.has('code'), 'a denial carried a code');
}

// Run as a script (not when conformance.mjs imports the browser from here).
/**
 * Run `main` as a script: print one JSON result line on stdout (what
 * `main` recorded in it, the step it failed at and why), and exit 1 when a
 * step failed. `client` names the client libraries the result reports.
 */
export async function runScript(script, main, client) {
  const result = { ok: false, client };
  let current = 'options';
  try {
    await main(result, (name) => {
      current = name;
    });
    result.ok = true;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (err) {
    const message = err instanceof FlowError ? err.message : describe(err);
    result.step = current;
    result.error = message;
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stderr.write(`${script}: step "${current}" failed: ${message}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runScript('flow.mjs', main, {
    node: process.version,
    'openid-client': versionOf('openid-client'),
    oauth4webapi: versionOf('oauth4webapi'),
  });
}
