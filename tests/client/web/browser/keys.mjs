// Customer-held keys in a real browser: Debian's Chromium, headless, driven
// by playwright-core, against the live server started with
// VRM_KEY_CUSTODY=customer by tests/client/web/test_browser_keys.py, with the
// vendor's callback a real HTTP server on its redirect URI.
//
// The customer signs up and is shown the recovery key, logs out, forgets the
// password: from the login page to /recover, a mistyped key first (refused,
// the email kept), then the right one, which sets a new password and shows
// the next key. The customer logs in with it, allows a vendor on the consent
// page (which says what this server can read while the grant lives) and
// opens the vendor's page, whose "This server" row says it again. Each page
// is checked by axe-core and photographed at both widths (harness.mjs).
// Prints one JSON object on stdout; the Python test asserts on it.

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { launch } from '../../../consent/browser/chromium.mjs';
import { harness, nav, post, shownKey, submit } from './harness.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'vendor-name': { type: 'string' },
    scope: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'new-password': { type: 'string' },
    'out-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['issuer', 'client-id', 'client-secret', 'redirect-uri', 'vendor-name',
  'scope', 'email', 'password', 'new-password', 'out-dir']) {
  if (!opt[name]) throw new Error(`--${name} is required`);
}

const issuer = opt.issuer.replace(/\/$/, '');
const redirectUri = opt['redirect-uri'];
const vendorName = opt['vendor-name'];
const { inContext, check } = harness(issuer, opt['out-dir']);
const GRANT_PAGE = /^\/vendors\/[0-9a-f]{32}$/;

// The accessible name of each element the Tab key reaches, from the top of
// the page, until the form's button.
async function tabOrder(page, last, most = 20) {
  await page.locator('body').focus();
  const seen = [];
  for (let i = 0; i < most && seen.at(-1) !== last; i += 1) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => {
      const el = document.activeElement;
      if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
      return el.textContent.trim();
    }));
  }
  return seen;
}

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

async function keys(out, { page }) {
  out.pages = [];
  await page.goto(`${issuer}/signup`);
  await check(out, page, 'signup', 'k');
  out.signup_text = await page.locator('main').innerText();
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password', { exact: true }).fill(opt.password);
  await page.getByLabel('Password again').fill(opt.password);
  await post(page, 'Sign up');
  out.first_key = await shownKey(page);
  await check(out, page, 'recovery-key', 'k');
  await page.getByRole('link', { name: 'I have kept it: continue' }).click();
  await page.waitForURL(`${issuer}/`);
  out.home_text = await page.locator('body').innerText();
  await submit(page, 'Log out', '/');
  out.after_logout_nav = await nav(page).innerText();

  // Forgotten: from the login page to the recovery form.
  await page.goto(`${issuer}/login`);
  await page.getByRole('link', { name: 'Use your recovery key' }).click();
  await page.waitForURL(`${issuer}/recover`);
  await check(out, page, 'recover', 'k');
  out.recover_tab_order = await tabOrder(page, 'Set the new password');

  // A mistyped key (its last letter wrong): refused, the email kept.
  const last = out.first_key.key.at(-1);
  out.mistyped = `${out.first_key.key.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`;
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Recovery key').fill(out.mistyped);
  await page.getByLabel('New password', { exact: true }).fill(opt['new-password']);
  await page.getByLabel('New password again').fill(opt['new-password']);
  await post(page, 'Set the new password');
  out.wrong_alert = (await page.getByRole('alert').innerText()).trim();
  out.wrong_email_kept = await page.getByLabel('Email').inputValue();
  out.wrong_key_kept = await page.getByLabel('Recovery key').inputValue();
  await check(out, page, 'recover-wrong', 'k');

  // The right key, on the form as the refusal left it.
  await page.getByLabel('Recovery key').fill(out.first_key.key);
  await page.getByLabel('New password', { exact: true }).fill(opt['new-password']);
  await page.getByLabel('New password again').fill(opt['new-password']);
  await post(page, 'Set the new password');
  out.new_key = await shownKey(page);
  out.new_key_text = await page.locator('main').innerText();
  await check(out, page, 'new-key', 'k');
  await page.getByRole('link', { name: 'I have kept it: log in' }).click();
  await page.waitForURL(`${issuer}/login`);
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password').fill(opt['new-password']);
  await submit(page, 'Log in', '/');
  out.logged_in_nav = await nav(page).innerText();

  // A vendor asks; the consent page says what this server could read.
  const vendor = await startVendor();
  try {
    const request = authorizationRequest();
    await page.goto(request.url);
    await check(out, page, 'consent', 'k');
    const custody = page.locator('p.custody');
    out.consent_custody = { text: (await custody.innerText()).trim(), visible: await custody.isVisible() };
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`)),
      page.getByRole('button', { name: 'Allow', exact: true }).click(),
    ]);
    const code = new URL(page.url()).searchParams.get('code');
    out.granted = await tokens(code, request.verifier);
  } finally {
    vendor.close();
  }

  await page.goto(`${issuer}/vendors`);
  await Promise.all([
    page.waitForURL((u) => GRANT_PAGE.test(u.pathname)),
    page.getByRole('link', { name: `See and change what ${vendorName} may read` }).click(),
  ]);
  out.grant_path = new URL(page.url()).pathname;
  await check(out, page, 'vendor', 'k');
  const row = page.locator('dt', { hasText: /^This server$/ }).locator('xpath=following-sibling::dd[1]');
  out.vendor_custody = { text: (await row.innerText()).trim(), visible: await row.isVisible() };
}

const browser = await launch(opt.chromium);
try {
  const result = { browser: browser.version(), keys: await inContext(browser, 'keys', keys) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
