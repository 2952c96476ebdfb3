// Shared by the browser test and the benchmark: chromium through
// playwright-core with flags that keep it off the (closed) network, and a
// fresh profile directory per run.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** launch starts chromium; close() also removes its profile directory. */
export async function launch(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flightrec-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1400, height: 900 },
    deviceScaleFactor: 1,
    ...opts,
  });
  return {
    ctx,
    async close() {
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

/** newPage opens a page whose uncaught errors, and console errors other
 * than the browser's own lines for the HTTP errors a test provokes, are
 * collected in errors. */
export async function newPage(browser, errors) {
  const page = await browser.ctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  return page;
}
