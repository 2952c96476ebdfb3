// The UI against a server started with --auth-token-file (run by
// e2e/ui_test.go's TestUIAuth): the first request's 401 brings up the token
// form, a wrong token keeps it, the read token draws the flamegraph, the
// pprof download carries the token, and a reload remembers it. Prints one
// JSON summary line last.
import { join } from 'node:path';
import { launch, check, newPage } from './lib.mjs';

const base = process.env.FLIGHTREC_URL;
const token = process.env.FLIGHTREC_READ_TOKEN;
const out = process.env.FLIGHTREC_UI_ARTIFACTS || '.';
check(base && token, 'FLIGHTREC_URL and FLIGHTREC_READ_TOKEN are set');
const res = { form_reason: '', wrong_kept_form: false, widest: '', download_bytes: 0, reloaded_widest: '', page_errors: [] };

const browser = await launch({ acceptDownloads: true });
try {
  const page = await newPage(browser, res.page_errors);
  await page.goto(`${base}/explore?query=${encodeURIComponent('cpu{service="app"}')}&from=-1h`);
  const form = page.locator('[data-token-form]');
  await form.waitFor({ timeout: 20000 });
  res.form_reason = (await form.textContent()) ?? '';
  await page.screenshot({ path: join(out, 'auth-token-form.png') });

  await form.locator('input[name=token]').fill('not-the-token');
  await form.locator('button[type=submit]').click();
  // The retry with the wrong token is refused again: the form comes back.
  await page.waitForTimeout(200);
  await form.waitFor({ timeout: 20000 });
  res.wrong_kept_form = await page.evaluate(() => !window.__flightrec?.flamegraphs?.explore);

  await form.locator('input[name=token]').fill(token);
  await form.locator('button[type=submit]').click();
  res.widest = await widest(page);

  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 20000 }), page.click('text=Download pprof')]);
  const saved = join(out, 'auth-download.pb.gz');
  await dl.saveAs(saved);
  const { statSync } = await import('node:fs');
  res.download_bytes = statSync(saved).size;

  await page.reload();
  res.reloaded_widest = await widest(page);
  check((await page.locator('[data-token-form]').count()) === 0, 'no token form after a reload with the stored token');
} finally {
  await browser.close();
}
console.log(JSON.stringify(res));

// widest waits for the Explore flamegraph and names its widest frame below
// main.main.
async function widest(page) {
  await page.waitForFunction(() => (window.__flightrec?.flamegraphs?.explore?.draws ?? 0) >= 1, null, { timeout: 20000 });
  const frames = await page.evaluate(() => window.__flightrec.flamegraphs.explore.frames());
  const below = frames.filter((f) => f.depth === 2).sort((a, b) => b.width - a.width);
  return below[0]?.name ?? '';
}
