// The customer's pages in a real browser: Debian's Chromium, headless, driven
// by playwright-core, against the live server started by
// tests/client/web/test_browser.py. The packages are those of
// tests/consent/browser (one lockfile: playwright-core and axe-core), and
// Chromium is launched as every browser test here launches it (chromium.mjs).
//
// Scenarios, each in a fresh browser context (its own cookie jar):
//   journey  sign up, edit the profile (a refused value first), add a history
//            event, label it a gift, export, change the password, log out,
//            log in, delete the account
//   frame    logged in, a page on another origin puts /account/delete in an
//            iframe
//
// Every page the journey visits is checked by axe-core (WCAG 2.0, 2.1 and 2.2,
// A and AA) and photographed at a phone's and a desktop's width. axe runs
// through the DevTools protocol (page.evaluate), which a page's CSP does not
// govern, so the pages run under their real headers. Prints one JSON object on
// stdout; the Python test asserts on it.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from '../../../consent/browser/chromium.mjs';
import { harness, nav, submit, waitFor } from './harness.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'new-password': { type: 'string' },
    'frame-email': { type: 'string' },
    'out-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['issuer', 'email', 'password', 'new-password', 'frame-email', 'out-dir']) {
  if (!opt[name]) throw new Error(`--${name} is required`);
}

const issuer = opt.issuer.replace(/\/$/, '');
const outDir = opt['out-dir'];
const { inContext, check } = harness(issuer, outDir);

// A page of another origin (another port of 127.0.0.1) that frames ?target=.
async function startFramer() {
  const server = createServer((req, res) => {
    const target = new URL(req.url, 'http://x').searchParams.get('target') ?? '';
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Elsewhere</title><h1>Another site</h1>
<iframe id="framed" src="${target.replaceAll('"', '&quot;')}" width="600" height="400"></iframe>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

async function journey(out, { page }) {
  out.pages = [];
  await page.goto(`${issuer}/`);
  await check(out, page, 'home-logged-out');

  await Promise.all([
    page.waitForURL(`${issuer}/signup`),
    nav(page).getByRole('link', { name: 'Sign up' }).click(),
  ]);
  await check(out, page, 'signup');
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password', { exact: true }).fill(opt.password);
  await page.getByLabel('Password again').fill(opt.password);
  // The answer shows the recovery key, once, and goes on home from there.
  await submit(page, 'Sign up', '/signup');
  out.recovery_key = (await page.locator('#recovery-key').textContent()).trim();
  await check(out, page, 'recovery-key');
  await Promise.all([
    page.waitForURL(`${issuer}/`),
    page.getByRole('link', { name: 'I have kept it: continue' }).click(),
  ]);
  out.home_heading = (await page.locator('h1').textContent()).trim();
  await check(out, page, 'home');

  // Keyboard: the first Tab reaches the skip link, which moves focus to main.
  await page.keyboard.press('Tab');
  out.first_tab = await page.evaluate(() => document.activeElement.textContent.trim());
  await page.keyboard.press('Enter');
  out.after_skip = await page.evaluate(() => document.activeElement.id);

  await nav(page).getByRole('link', { name: 'Profile', exact: true }).click();
  await page.waitForURL(`${issuer}/data/profile`);
  await check(out, page, 'profile');
  await page.getByLabel('Given name').fill('Ana');
  await page.getByLabel('Phone').fill('call me');
  await submit(page, 'Save', '/data/profile');
  out.profile_error = (await page.getByRole('alert').innerText()).trim();
  out.phone_kept = await page.getByLabel('Phone').inputValue();
  await check(out, page, 'profile-error');
  await page.getByLabel('Phone').fill('+351 21 000 0000');
  await submit(page, 'Save', '/data/profile');
  out.profile_saved = (await page.getByRole('status').innerText()).trim();

  await page.goto(`${issuer}/data/preferences`);
  await check(out, page, 'preferences');

  await page.goto(`${issuer}/data/history`);
  await check(out, page, 'history-empty');
  await page.getByRole('link', { name: 'Add an event' }).click();
  await page.waitForURL(`${issuer}/data/history/new`);
  await check(out, page, 'history-new');
  await page.getByLabel('Vendor', { exact: true }).fill('Livraria Lello');
  await page.getByLabel('What happened').selectOption('purchase');
  await page.getByLabel('When (UTC)').fill('2026-12-01T15:00');
  await page.locator('#items-0-name').fill('A book for my aunt');
  await submit(page, 'Add the event', '/data/history');
  await check(out, page, 'history');
  await page.getByRole('link', { name: /Change or label this event/ }).first().click();
  await page.waitForURL((u) => /^\/data\/history\/[0-9a-f]{32}$/.test(u.pathname));
  await check(out, page, 'history-event');
  out.gift_explained = (await page.locator('#labels-gift-means').innerText()).trim();
  await page.locator('#labels-gift').check();
  await submit(page, 'Save', '/data/history');
  out.history_labels = (await page.locator('.events .labels').first().innerText()).trim();

  await page.goto(`${issuer}/account/export`);
  await check(out, page, 'export');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download your data (JSON)' }).click(),
  ]);
  out.export_filename = download.suggestedFilename();
  out.export = JSON.parse(readFileSync(await download.path(), 'utf8'));

  await page.goto(`${issuer}/account/password`);
  await check(out, page, 'password');
  await page.getByLabel('Current password').fill(opt.password);
  await page.getByLabel('New password', { exact: true }).fill(opt['new-password']);
  await page.getByLabel('New password again').fill(opt['new-password']);
  await submit(page, 'Change password', '/account/password');
  out.password_changed = (await page.getByRole('status').innerText()).trim();

  await submit(page, 'Log out', '/');
  out.after_logout_nav = await nav(page).innerText();
  await page.goto(`${issuer}/login`);
  await check(out, page, 'login');
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password').fill(opt['new-password']);
  await submit(page, 'Log in', '/');

  await nav(page).getByRole('link', { name: 'Delete account' }).click();
  await page.waitForURL(`${issuer}/account/delete`);
  await check(out, page, 'delete');
  await page.getByLabel('Your email').fill(opt.email);
  await page.getByLabel('Your password').fill(opt['new-password']);
  await submit(page, 'Delete my account and all my data', '/goodbye');
  await check(out, page, 'goodbye');
  out.cookies = (await page.context().cookies(issuer)).map((c) => c.name);
}

// Logged in (same-site: the Lax session cookie goes along into the frame), the
// customer meets another origin's page that frames the delete form.
async function frame(out, { page, log }) {
  const framer = await startFramer();
  try {
    await page.goto(`${issuer}/login?next=/account/delete`);
    await page.getByLabel('Email').fill(opt['frame-email']);
    await page.getByLabel('Password').fill(opt.password);
    await submit(page, 'Log in', '/account/delete');
    for (const list of Object.values(log)) list.length = 0;
    const framed = [];
    page.on('response', (r) => {
      if (r.frame() !== page.mainFrame() && r.url().startsWith(`${issuer}/`)) {
        framed.push(r.allHeaders().then((h) => ({
          path: new URL(r.url()).pathname,
          status: r.status(),
          x_frame_options: h['x-frame-options'] ?? null,
        })));
      }
    });
    const url = new URL(`${framer.origin}/`);
    url.searchParams.set('target', `${issuer}/account/delete`);
    await page.goto(url.href);
    await waitFor(() => log.console.some((m) => m.text.includes('frame-ancestors')));
    out.frame_responses = await Promise.all(framed);
    const child = await (await page.$('#framed')).contentFrame();
    out.frame_url = child.url();
    out.frame_forms = await child.evaluate(() => document.forms.length);
    await page.screenshot({ path: join(outDir, 'framed.png'), fullPage: true });
  } finally {
    framer.server.close();
  }
}

const browser = await launch(opt.chromium);
try {
  const result = {
    browser: browser.version(),
    journey: await inContext(browser, 'journey', journey),
    frame: await inContext(browser, 'frame', frame),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
