// A customer made while the server held their root key logs in after the
// operator changed VRM_KEY_CUSTODY to "customer": Debian's Chromium,
// headless, driven by playwright-core, against the live server restarted on
// the same data directory by tests/client/web/test_browser_keys_moved.py.
//
// Logged out, the customer opens their history and is sent to the login
// page. The log-in moves their root key to them and answers with the
// recovery key (checked by axe-core and photographed at both widths,
// harness.mjs). The customer goes on to their history, goes back, and
// reloads what they went back to: the key is not shown again, nor at the
// next log-in. Then the key proves itself: logged out, /recover with it sets
// a new password, which logs in. Prints one JSON object on stdout; the Python test asserts on it.

import { parseArgs } from 'node:util';
import { launch } from '../../../consent/browser/chromium.mjs';
import { harness, nav, post, shownKey, submit } from './harness.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'new-password': { type: 'string' },
    'out-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
for (const name of ['issuer', 'email', 'password', 'new-password', 'out-dir']) {
  if (!opt[name]) throw new Error(`--${name} is required`);
}

const issuer = opt.issuer.replace(/\/$/, '');
const { inContext, check } = harness(issuer, opt['out-dir']);

// Where the browser is after ``go`` (back, reload), and what it shows. The
// entry may be the answer to a POST, which Chromium does not keep (no-store)
// and may refuse to send again: that refusal is an answer too.
async function after(page, go) {
  let error = null;
  try {
    await go();
  } catch (e) {
    error = e.message.split('\n')[0];
  }
  await page.waitForLoadState();
  const text = await page.locator('body').innerText().catch(() => '');
  return { url: page.url(), error, text };
}

async function moved(out, { page }) {
  out.pages = [];
  await page.goto(`${issuer}/data/history`);
  out.login_url = page.url();
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password').fill(opt.password);
  const answer = await post(page, 'Log in');
  out.answer = { status: answer.status(), cache_control: answer.headers()['cache-control'] ?? null };
  out.moved_key = await shownKey(page);
  out.moved_text = await page.locator('main').innerText();
  await check(out, page, 'keys-moved', 'm');

  // On to where the customer was going, logged in.
  await page.getByRole('link', { name: 'I have kept it: continue' }).click();
  await page.waitForURL(`${issuer}/data/history`);
  out.went_on = { path: new URL(page.url()).pathname, nav: await nav(page).innerText() };
  out.back = await after(page, () => page.goBack());
  out.reload = await after(page, () => page.reload());

  // What the reload answered is the login form: the keys have moved, so
  // logging in again goes straight on.
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password').fill(opt.password);
  await submit(page, 'Log in', '/data/history');
  out.again_text = await page.locator('body').innerText();

  // The key proves itself: logged out, it sets a new password.
  await submit(page, 'Log out', '/');
  await page.goto(`${issuer}/recover`);
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Recovery key').fill(out.moved_key.key);
  await page.getByLabel('New password', { exact: true }).fill(opt['new-password']);
  await page.getByLabel('New password again').fill(opt['new-password']);
  await post(page, 'Set the new password');
  out.new_key = await shownKey(page);
  await page.getByRole('link', { name: 'I have kept it: log in' }).click();
  await page.waitForURL(`${issuer}/login`);
  await page.getByLabel('Email').fill(opt.email);
  await page.getByLabel('Password').fill(opt['new-password']);
  await submit(page, 'Log in', '/');
  out.logged_in_nav = await nav(page).innerText();
}

const browser = await launch(opt.chromium);
try {
  const result = { browser: browser.version(), moved: await inContext(browser, 'moved', moved) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
