// The API documentation page (/docs: Swagger UI) in a real
// browser: Debian's Chromium, headless, driven by playwright-core, against the
// live server started by tests/vrm/test_apidocs.py. The page runs under its
// real Content-Security-Policy, so what it blocks shows up here, and every
// request the page makes is recorded, so a request off this origin would too.
// Prints one JSON object on stdout; the Python test asserts on it.

import { parseArgs } from 'node:util';
import { launch } from './chromium.mjs';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
if (!opt.issuer) throw new Error('--issuer is required');

const TIMEOUT_MS = 20_000;
const issuer = opt.issuer.replace(/\/$/, '');

// Opens `path`, waits for `selector` (what the page renders from the OpenAPI
// document), and says what the page asked for and what the browser refused.
async function visit(browser, path, selector, canary = false) {
  const out = { requests: [], csp_violations: [], page_errors: [], console_errors: [] };
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT_MS);
  await context.exposeBinding('__reportCspViolation', (_source, v) => out.csp_violations.push(v));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI });
    });
  });
  const page = await context.newPage();
  page.on('request', (r) => out.requests.push(r.url()));
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') out.console_errors.push(m.text());
  });
  try {
    const response = await page.goto(`${issuer}${path}`);
    out.status = response.status();
    out.csp = response.headers()['content-security-policy'] ?? null;
    await page.waitForSelector(selector, { state: 'attached' });
    out.rendered = await page.locator(selector).count();
    if (canary) {
      // The listener must be able to hear a violation: a style without the nonce.
      await page.evaluate(() => {
        const style = document.createElement('style');
        style.textContent = 'body { background: red; }';
        document.head.append(style);
      });
      await page.waitForTimeout(500);
    } else {
      await page.waitForLoadState('networkidle');
    }
  } catch (e) {
    out.failed = String(e);
  } finally {
    await context.close();
  }
  return out;
}

const browser = await launch(opt.chromium);
try {
  const result = {
    // Swagger UI draws one .opblock per operation.
    swagger: await visit(browser, '/docs', '.opblock'),
    canary: await visit(browser, '/docs', '.opblock', true),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
