// The customer's consent journey in a real browser: Debian's Chromium, headless,
// driven by playwright-core, against the live server started by
// tests/consent/test_browser.py. The pages run with their real headers (CSP,
// X-Frame-Options, cookies), so whatever the browser refuses shows up here.
//
// Scenarios, each in a fresh browser context (its own cookie jar):
//   allow  log in, untick one item, choose a duration, click Allow
//   deny   log in (another customer), click Deny
//   frame  the deny customer logs in again, then opens a page on the vendor's
//          (same-site) origin that puts /oauth/authorize in an iframe
//   csp_canary  a CSP violation on purpose, so that "none seen" means something
//
// The vendor's site is a real HTTP server on the redirect URI's host and port
// (Playwright's routes do not see the redirects that lead there): its callback
// answers a tiny page, and /framer is the page that tries to frame us. Prints
// one JSON object on stdout; the Python test asserts on it.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'redirect-uri': { type: 'string' },
    scope: { type: 'string' },
    purpose: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'deny-email': { type: 'string' },
    untick: { type: 'string' },
    duration: { type: 'string' },
    'out-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['issuer', 'client-id', 'redirect-uri', 'scope', 'purpose', 'email',
  'password', 'deny-email', 'untick', 'duration', 'out-dir']) {
  if (!opt[name]) throw new Error(`--${name} is required`);
}

const TIMEOUT_MS = 10_000;
const issuer = opt.issuer.replace(/\/$/, '');
const redirectUri = opt['redirect-uri'];
const vendorOrigin = new URL(redirectUri).origin;
mkdirSync(opt['out-dir'], { recursive: true });

function escapeHtml(text) {
  return text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
}

// The vendor's web server. Cookies and CSP here are the vendor's own business;
// this one sets neither.
async function startVendor() {
  const { hostname, port } = new URL(redirectUri);
  const server = createServer((req, res) => {
    const url = new URL(req.url, vendorOrigin);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (url.pathname === '/framer') {
      res.end(`<!doctype html><title>Vendor</title><h1>Vendor page</h1>
<iframe id="consent" src="${escapeHtml(url.searchParams.get('target'))}"
 width="600" height="400"></iframe>`);
    } else {
      res.end('<!doctype html><title>Callback</title><p>Back at the vendor.</p>');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), hostname, resolve);
  });
  return server;
}

const b64url = (buf) => buf.toString('base64url');

function authorizationRequest() {
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const url = new URL(`${issuer}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: opt['client-id'],
    redirect_uri: redirectUri,
    scope: opt.scope,
    purpose: opt.purpose,
    state,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  }).toString();
  return { url: url.href, state, verifier };
}

const snapshot = (log) => Object.fromEntries(Object.entries(log).map(([k, v]) => [k, [...v]]));

// Everything the browser says about a page: console messages, uncaught
// errors, CSP violations (the DOM event, reported through a CDP binding that
// the page's CSP cannot block) and each navigation response, frames included.
// A scenario that fails returns what it saw until then, its error, a
// screenshot and what the browser said, so that a refusal by the browser reads
// as one and the other scenarios still run.
async function inContext(browser, name, scenario) {
  const log = { console: [], page_errors: [], csp_violations: [], trail: [] };
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT_MS);
  await context.exposeBinding('__reportCspViolation', (source, v) => {
    log.csp_violations.push({ page: source.frame.url(), ...v });
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        document: e.documentURI,
        disposition: e.disposition,
      });
    });
  });
  const page = await context.newPage();
  page.on('console', (m) => log.console.push({ type: m.type(), text: m.text(), url: page.url() }));
  page.on('pageerror', (e) => log.page_errors.push(String(e)));
  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest()) {
      const u = new URL(r.url());
      const where = u.origin === issuer ? u.pathname : `${u.origin}${u.pathname}`;
      log.trail.push(`${req.method()} ${where} ${r.status()}`);
    }
  });
  const out = {};
  try {
    await scenario(out, { context, page, log });
    return { ...out, ...snapshot(log) };
  } catch (error) {
    const failedScreenshot = join(opt['out-dir'], `failed-${name}.png`);
    await page.screenshot({ path: failedScreenshot, fullPage: true }).catch(() => {});
    return {
      ...out, failed: error.message, at: page.url(), failed_screenshot: failedScreenshot,
      ...snapshot(log),
    };
  } finally {
    await context.close();
  }
}

async function logIn(page, email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/oauth/authorize'),
    page.getByRole('button', { name: 'Log in' }).click(),
  ]);
}

async function consentPage(page) {
  return page.evaluate(() => {
    const style = getComputedStyle(document.body);
    return {
      title: document.title,
      heading: document.querySelector('h1')?.textContent.trim(),
      text: document.body.innerText,
      items: [...document.querySelectorAll('input[type=checkbox]')].map((box) => ({
        label: box.closest('label')?.textContent.trim(),
        value: box.value,
        checked: box.checked,
      })),
      durations: [...document.querySelectorAll('select[name=duration_days] option')].map(
        (o) => o.textContent.trim(),
      ),
      // The nonce'd <style> applied (a blocked one leaves the defaults).
      body_max_width: style.maxWidth,
      body_font_family: style.fontFamily,
    };
  });
}

function callbackQuery(url) {
  const u = new URL(url);
  if (u.origin + u.pathname !== redirectUri) throw new Error(`not the redirect URI: ${url}`);
  return Object.fromEntries(u.searchParams);
}

const toCallback = (u) => u.href.startsWith(`${redirectUri}?`);

// Events (console, CSP reports) trail the navigation that caused them.
async function waitFor(condition, ms = 2000) {
  for (let waited = 0; !condition() && waited < ms; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Each scenario writes what it has seen into `out` as it goes: when the browser
// stops it half-way, what came before still reaches the test.

async function allowScenario(out, { context, page }) {
  const request = authorizationRequest();
  out.state = request.state;
  out.code_verifier = request.verifier;
  await page.goto(request.url);
  out.login_path = new URL(page.url()).pathname;
  await page.screenshot({ path: join(opt['out-dir'], 'login.png'), fullPage: true });
  await logIn(page, opt.email, opt.password);
  out.shown = await consentPage(page);
  out.screenshot = join(opt['out-dir'], 'consent.png');
  await page.screenshot({ path: out.screenshot, fullPage: true });
  await page.getByRole('checkbox', { name: opt.untick }).uncheck();
  await page.getByLabel('For how long').selectOption({ label: opt.duration });
  out.submitted = await consentPage(page);
  await page.screenshot({ path: join(opt['out-dir'], 'consent-filled.png'), fullPage: true });
  await Promise.all([
    page.waitForURL(toCallback),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  out.final_url = page.url();
  out.query = callbackQuery(page.url());
  out.cookies = (await context.cookies(issuer)).map((c) => ({
    name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path,
  }));
}

async function denyScenario(out, { page }) {
  const request = authorizationRequest();
  out.state = request.state;
  await page.goto(request.url);
  await logIn(page, opt['deny-email'], opt.password);
  out.heading = (await page.locator('h1').textContent()).trim();
  await Promise.all([
    page.waitForURL(toCallback),
    page.getByRole('button', { name: 'Deny' }).click(),
  ]);
  out.final_url = page.url();
  out.query = callbackQuery(page.url());
}

// Logged in (same-site, so the Lax session cookie goes along) and holding no
// grant, the customer's /oauth/authorize is the consent page itself: that is
// what the vendor's page tries to frame. Only what happens from the vendor's
// page on is logged.
async function frameScenario(out, { page, log }) {
  const request = authorizationRequest();
  await page.goto(request.url);
  await logIn(page, opt['deny-email'], opt.password);
  for (const list of Object.values(log)) list.length = 0;

  const framed = [];
  page.on('response', (r) => {
    if (r.frame() !== page.mainFrame() && r.url().startsWith(`${issuer}/`)) {
      framed.push(r.allHeaders().then((h) => ({
        path: new URL(r.url()).pathname,
        status: r.status(),
        content_security_policy: h['content-security-policy'] ?? null,
        x_frame_options: h['x-frame-options'] ?? null,
      })));
    }
  });
  const framer = new URL(`${vendorOrigin}/framer`);
  framer.searchParams.set('target', request.url);
  // A document's load waits for its frames, refused ones included.
  await page.goto(framer.href);
  out.page_url = page.url();
  await waitFor(() => log.console.some((m) => m.text.includes('frame-ancestors')));
  out.frame_responses = await Promise.all(framed);
  const child = await (await page.$('#consent')).contentFrame();
  out.frame_url = child.url();
  const inside = await child.evaluate(() => ({
    forms: document.forms.length,
    text: document.body?.innerText ?? '',
  }));
  out.frame_forms = inside.forms;
  out.frame_text = inside.text;
  out.screenshot = join(opt['out-dir'], 'framed.png');
  await page.screenshot({ path: out.screenshot, fullPage: true });
}

// The listener behind csp_violations must be able to hear one: on a page of
// ours, a <style> added without the nonce.
async function cspCanaryScenario(out, { page, log }) {
  await page.goto(`${issuer}/login`);
  await page.evaluate(() => {
    const style = document.createElement('style');
    style.textContent = 'body { background: red; }';
    document.head.append(style);
  });
  await waitFor(() => log.csp_violations.length > 0);
}

const vendor = await startVendor();
try {
  const browser = await launch(opt.chromium);
  try {
    const result = {
      browser: browser.version(),
      allow: await inContext(browser, 'allow', allowScenario),
      deny: await inContext(browser, 'deny', denyScenario),
      frame: await inContext(browser, 'frame', frameScenario),
      csp_canary: await inContext(browser, 'csp_canary', cspCanaryScenario),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await browser.close();
  }
} finally {
  vendor.close();
}
