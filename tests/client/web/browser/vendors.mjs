// A customer and a vendor in a real browser: Debian's Chromium, headless,
// driven by playwright-core, against the live server started by
// tests/client/web/test_browser_vendors.py, with the vendor's callback a real
// HTTP server on its redirect URI.
//
// The customer signs up and fills the profile on the pages; the vendor asks
// (authorization code with PKCE) and the customer answers on the consent page
// with one field unticked; the vendor swaps the code and reads; the customer
// sees the vendor and exactly what it sees, takes a field back, finds the
// reads in the access history with its chart and a receipt, and revokes;
// then approves the command line's device login on the device page.
// Each page is checked by axe-core and photographed at both widths
// (harness.mjs). Prints one JSON object on stdout; the Python test asserts
// on it.

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { launch } from '../../../consent/browser/chromium.mjs';
import { harness, submit } from './harness.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'vendor-name': { type: 'string' },
    scope: { type: 'string' },
    untick: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'out-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['issuer', 'client-id', 'client-secret', 'redirect-uri', 'vendor-name',
  'scope', 'untick', 'email', 'password', 'out-dir']) {
  if (!opt[name]) throw new Error(`--${name} is required`);
}

const issuer = opt.issuer.replace(/\/$/, '');
const redirectUri = opt['redirect-uri'];
const vendorName = opt['vendor-name'];
const { inContext, check } = harness(issuer, opt['out-dir']);
const GRANT_PAGE = /^\/vendors\/[0-9a-f]{32}$/;

// The vendor's web server: its callback answers a tiny page.
async function startVendor() {
  const { hostname, port } = new URL(redirectUri);
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><html lang="en"><title>Callback</title><p>Back at the vendor.</p>');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), hostname, resolve);
  });
  return server;
}

function authorizationRequest() {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${issuer}/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: opt['client-id'],
    redirect_uri: redirectUri,
    scope: opt.scope,
    purpose: 'dpv:ServiceProvision',
    state: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  return { url: url.href, verifier };
}

// What the vendor's own server does: swap the code, then read.
async function tokens(code, verifier) {
  const basic = Buffer.from(`${opt['client-id']}:${opt['client-secret']}`).toString('base64');
  const r = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}` },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    }),
  });
  if (r.status !== 200) throw new Error(`the token endpoint answered ${r.status}: ${await r.text()}`);
  return r.json();
}

async function vendorRead(accessToken) {
  const r = await fetch(`${issuer}/v1/data`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: r.status, body: r.status === 200 ? await r.json() : null };
}

async function vendors(out, { page }) {
  out.pages = [];
  await page.goto(`${issuer}/signup`);
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password', { exact: true }).fill(opt.password);
  await page.getByLabel('Password again').fill(opt.password);
  // The answer shows the recovery key, once (pages.mjs checks that page).
  await submit(page, 'Sign up', '/signup');
  await page.goto(`${issuer}/data/profile`);
  await page.getByLabel('Given name').fill('Ana');
  await page.getByLabel('Email').fill('ana.contact@example.org');
  await page.getByLabel('Phone').fill('+351 21 000 0000');
  await submit(page, 'Save', '/data/profile');

  // The vendor asks; the consent page shows what it would get.
  const vendor = await startVendor();
  try {
    const request = authorizationRequest();
    await page.goto(request.url);
    await check(out, page, 'consent', 'v');
    out.consent_values = await page.locator('p.value').allInnerTexts();
    out.consent_selected = await page.getByLabel('For how long').inputValue();
    await page.getByLabel(opt.untick).uncheck();
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`)),
      page.getByRole('button', { name: 'Allow', exact: true }).click(),
    ]);
    const code = new URL(page.url()).searchParams.get('code');
    out.granted = await tokens(code, request.verifier);
  } finally {
    vendor.close();
  }
  const token = out.granted.access_token;
  out.first_read = await vendorRead(token);

  await page.goto(`${issuer}/vendors`);
  await check(out, page, 'vendors', 'v');
  await Promise.all([
    page.waitForURL((u) => GRANT_PAGE.test(u.pathname)),
    page.getByRole('link', { name: `See and change what ${vendorName} may read` }).click(),
  ]);
  const grantPage = page.url();
  await check(out, page, 'vendor', 'v');
  out.vendor_text = await page.locator('main').innerText();

  await page.getByRole('link', { name: `See what ${vendorName} sees` }).click();
  await page.waitForURL((u) => u.pathname.endsWith('/sees'));
  await check(out, page, 'sees', 'v');
  out.sees = JSON.parse(await page.locator('#raw').textContent());

  await page.goto(grantPage);
  await page.locator('input[name=keep][value="profile.email:read"]').uncheck();
  await submit(page, 'Save what it may read', GRANT_PAGE);
  out.narrowed_status = (await page.getByRole('status').innerText()).trim();
  out.after_narrow = await vendorRead(token);

  // The reads, in words and as a chart, and a receipt once a checkpoint
  // covers them (the server signs one within seconds).
  await page.goto(`${issuer}/access`);
  await check(out, page, 'access', 'v');
  out.access_text = await page.locator('main').innerText();
  out.chart_titles = await page.locator('svg title[id]').allTextContents();
  out.chart_descriptions = await page.locator('svg desc').allTextContents();
  for (let tries = 0; tries < 20 && !out.receipt; tries += 1) {
    await page.goto(`${issuer}/access`);
    const link = page.getByRole('link', { name: /^Receipt of entry / }).first();
    const response = await page.request.get(new URL(await link.getAttribute('href'), issuer).href);
    if (response.status() === 200) {
      out.receipt = JSON.parse(await response.text());
      out.receipt_disposition = response.headers()['content-disposition'];
    } else {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  await page.goto(grantPage);
  await page.getByRole('link', { name: `Revoke ${vendorName}'s access…` }).click();
  await page.waitForURL((u) => u.pathname.endsWith('/revoke'));
  await check(out, page, 'revoke', 'v');
  await submit(page, 'Yes, revoke it', GRANT_PAGE);
  await check(out, page, 'revoked', 'v');
  out.revoked_text = await page.locator('main').innerText();
  out.after_revoke = await vendorRead(token);

  // The customer's command line asks to log in (RFC 8628): the device page,
  // opened from the link it prints, then Approve.
  const asked = await fetch(`${issuer}/oauth/device_authorization`, {
    method: 'POST',
    body: new URLSearchParams({ client_id: 'vrm-me' }),
  });
  const device = await asked.json();
  await page.goto(device.verification_uri_complete);
  await check(out, page, 'device', 'v');
  out.device_code_shown = (await page.locator('main strong').first().innerText()).trim();
  await submit(page, 'Approve', '/device');
  await check(out, page, 'device-done', 'v');
  const polled = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      device_code: device.device_code,
      client_id: 'vrm-me',
    }),
  });
  const cli = await polled.json();
  const me = await fetch(`${issuer}/api/v1/me`, {
    headers: { authorization: `Bearer ${cli.access_token}` },
  });
  out.device = { user_code: device.user_code, me_status: me.status, me: await me.json() };

  // The pages that say something went wrong are pages too.
  await page.goto(`${issuer}/device`);
  await check(out, page, 'device-enter', 'v');
  const missing = await page.goto(`${issuer}/vendors/${'0'.repeat(32)}`);
  await check(out, page, 'vendor-not-found', 'v');
  const noEvent = await page.goto(`${issuer}/data/history/${'0'.repeat(32)}`);
  await check(out, page, 'event-not-found', 'v');
  const refused = await page.goto(`${issuer}/oauth/authorize?client_id=nobody&response_type=code`);
  await check(out, page, 'oauth-error', 'v');
  out.error_pages = [missing.status(), noEvent.status(), refused.status()];
}

const browser = await launch(opt.chromium);
try {
  const result = { browser: browser.version(), vendors: await inContext(browser, 'vendors', vendors) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
