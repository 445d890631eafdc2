// What every browser scenario of the customer's pages shares: a fresh context
// that records what the browser says (console, page errors, CSP violations,
// each navigation of this server), and the check each page gets: axe-core for
// WCAG 2.0, 2.1 and 2.2 at A and AA, and a full-page screenshot, at a phone's
// and a desktop's width. axe runs through the DevTools protocol
// (page.evaluate), which a page's CSP does not govern, so the pages run under
// their real headers. The packages are those of tests/consent/browser (one
// lockfile: playwright-core and axe-core).

import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const TIMEOUT_MS = 10_000;
const requireFromPackages = createRequire(
  new URL('../../../consent/browser/package.json', import.meta.url),
);
const AXE_SOURCE = readFileSync(requireFromPackages.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
export const WIDTHS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

export async function waitFor(condition, ms = 2000) {
  for (let waited = 0; !condition() && waited < ms; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function harness(issuer, outDir) {
  mkdirSync(outDir, { recursive: true });

  // A scenario in a context of its own (its own cookie jar). One that fails
  // returns what it saw until then, its error, where it was and a
  // screenshot, so that the other scenarios still run.
  async function inContext(browser, name, scenario) {
    const log = { console: [], page_errors: [], csp_violations: [], trail: [] };
    const context = await browser.newContext({ acceptDownloads: true });
    context.setDefaultTimeout(TIMEOUT_MS);
    await context.exposeBinding('__reportCspViolation', (source, v) => {
      log.csp_violations.push({ page: source.frame.url(), ...v });
    });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__reportCspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI });
      });
    });
    const page = await context.newPage();
    page.on('console', (m) => log.console.push({ type: m.type(), text: m.text(), url: page.url() }));
    page.on('pageerror', (e) => log.page_errors.push(String(e)));
    page.on('response', (r) => {
      const req = r.request();
      if (req.isNavigationRequest() && r.url().startsWith(`${issuer}/`)) {
        const u = new URL(r.url());
        log.trail.push(`${req.method()} ${u.pathname}${u.search} ${r.status()}`);
      }
    });
    const out = {};
    try {
      await scenario(out, { context, page, log });
      return { ...out, ...log };
    } catch (error) {
      const failed = join(outDir, `failed-${name}.png`);
      await page.screenshot({ path: failed, fullPage: true }).catch(() => {});
      return { ...out, failed: error.message, at: page.url(), failed_screenshot: failed, ...log };
    } finally {
      await context.close();
    }
  }

  // axe at both widths, and a full-page screenshot at each, named by the
  // step (and ``prefix``, so that two scenarios' files do not meet).
  async function check(out, page, step, prefix = '') {
    const seen = { path: new URL(page.url()).pathname, title: await page.title(), violations: [] };
    for (const [width, size] of Object.entries(WIDTHS)) {
      await page.setViewportSize(size);
      const number = String(out.pages.length + 1).padStart(2, '0');
      const file = join(outDir, `${prefix}${number}-${step}-${width}.png`);
      await page.screenshot({ path: file, fullPage: true });
      seen[`${width}_screenshot`] = file;
      if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
        await page.evaluate(AXE_SOURCE);
      }
      const results = await page.evaluate(
        (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }),
        AXE_TAGS,
      );
      for (const v of results.violations) {
        seen.violations.push({
          width, id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map((n) => n.target.join(' ')),
        });
      }
      seen[`${width}_passes`] = results.passes.length;
    }
    // Wider than the phone's screen: a customer would scroll sideways.
    await page.setViewportSize(WIDTHS.phone);
    seen.phone_scroll_width = await page.evaluate(() => document.documentElement.scrollWidth);
    out.pages.push({ step, ...seen });
  }

  return { inContext, check };
}

export const nav = (page) => page.getByRole('navigation', { name: 'Main' });

export async function submit(page, button, path) {
  await Promise.all([
    page.waitForURL((u) => (typeof path === 'string' ? u.pathname === path : path.test(u.pathname))),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
}

// A form whose answer is a page at the same address (the key pages answer
// the POST itself: there is nothing to redirect to, the key is kept
// nowhere). Waits for that answer, not for the address, which is already
// the one it will be. Returns the answer (its headers, its status).
export async function post(page, button) {
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
  await page.waitForLoadState();
  return answer;
}

// What the customer sees of the key: the text in <code>, and how many times
// it appears in the page's visible text.
export async function shownKey(page) {
  const key = (await page.locator('#recovery-key').innerText()).trim();
  const text = await page.locator('body').innerText();
  return { key, times: text.split(key).length - 1, heading: (await page.locator('h1').innerText()).trim() };
}
