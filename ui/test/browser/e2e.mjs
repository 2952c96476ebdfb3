// The UI's browser test, run by e2e/ui_test.go against a real server it
// filled: Explore finds the hot function, searches and zooms it; Compare
// colours the injected regression. Prints one JSON summary line last;
// screenshots go to $FLIGHTREC_UI_ARTIFACTS.
import { join } from 'node:path';
import { launch, check, newPage } from './lib.mjs';

const base = process.env.FLIGHTREC_URL;
const out = process.env.FLIGHTREC_UI_ARTIFACTS || '.';
check(base, 'FLIGHTREC_URL is set');
const res = { screenshots: [], page_errors: [] };
const step = (s) => console.log(`· ${s}`);

const browser = await launch();
try {
  const page = await newPage(browser, res.page_errors);
  await explore(page);
  await emptyAndErrors(page);
  await compare(page);
  await theme(page);
} finally {
  await browser.close();
}
console.log(JSON.stringify(res));

async function shot(page, name) {
  const f = join(out, name);
  await page.screenshot({ path: f, fullPage: false });
  res.screenshots.push(name);
}

// frames waits for a flamegraph to be drawn at least n times and
// returns its frames.
async function frames(page, id, minDraws = 1) {
  await page.waitForFunction(([id, n]) => (window.__flightrec?.flamegraphs?.[id]?.draws ?? 0) >= n, [id, minDraws], { timeout: 20000 });
  return page.evaluate((id) => window.__flightrec.flamegraphs[id].frames(), id);
}

// hookOf reads a flamegraph's test hook, waiting for it to exist: after a
// navigation (goBack) the view mounts it again a moment later.
async function hookOf(page, id) {
  await page.waitForFunction((id) => window.__flightrec?.flamegraphs?.[id], id, { timeout: 20000 });
  return page.evaluate((id) => {
    const h = window.__flightrec.flamegraphs[id];
    return { zoom: h.zoom, draws: h.draws, matchedShare: h.matchedShare };
  }, id);
}

async function explore(page) {
  step('Explore: load, type a selector');
  await page.goto(`${base}/explore`);
  await page.waitForSelector('select[aria-label="profile type"] option[value="cpu"]', { state: 'attached' });
  const input = page.locator('input[name=selector]');
  await input.fill('');
  // Autocompletion from the server: a label name, then its values.
  await input.pressSequentially('cpu{serv');
  await page.waitForSelector('.suggest li:text-is("service")');
  await input.press('Tab');
  check((await input.inputValue()) === 'cpu{service="', `Tab completes the label: ${await input.inputValue()}`);
  await page.waitForSelector('.suggest li:text-is("app")');
  const values = await page.locator('.suggest li').allTextContents();
  check(values.includes('shop'), `values of service offered: ${values}`);
  await input.fill('');
  await input.pressSequentially('cpu{service="app"}');
  await input.press('Enter');
  await page.waitForURL(/query=cpu%7Bservice%3D%22app%22%7D/);
  await page.waitForFunction(() => window.__flightrec?.flamegraphs?.explore?.frames().some((f) => f.name === 'main.hot'), null, { timeout: 20000 });
  const fr = await frames(page, 'explore');
  const canvasW = fr.find((f) => f.depth === 0).width;
  const under = fr.filter((f) => f.depth === 2).sort((a, b) => b.width - a.width);
  res.widest = under[0]?.name;
  res.widest_share = under[0] ? under[0].width / canvasW : 0;
  step(`widest frame under main.main: ${res.widest} (${(res.widest_share * 100).toFixed(1)}%)`);
  await page.waitForSelector('table[data-table=top] tbody tr');
  res.top_first = await page.locator('table[data-table=top] tbody tr td.name').first().textContent();

  step('Explore: drag on the series chart selects a range');
  const chart = await page.locator('.chart svg').boundingBox();
  await page.mouse.move(chart.x + chart.width * 0.5, chart.y + 20);
  await page.mouse.down();
  await page.mouse.move(chart.x + chart.width * 0.9, chart.y + 20, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/from=\d{4}-\d\d-\d\dT/);
  const u = new URL(page.url());
  const span = Date.parse(u.searchParams.get('to')) - Date.parse(u.searchParams.get('from'));
  check(span > 20 * 60e3 && span < 28 * 60e3, `dragging 40% of a 1h chart selects ~24 min, got ${span / 60e3} min`);
  await page.goBack();
  await page.waitForFunction(() => !location.search.includes('from='));
  await shot(page, 'explore.png');

  step('Explore: search');
  const draws = (await hookOf(page, 'explore')).draws;
  await page.fill('input[name=search]', 'main.hot');
  await frames(page, 'explore', draws + 1);
  await page.waitForSelector('[data-matched]');
  res.matched_share = (await hookOf(page, 'explore')).matchedShare;
  await shot(page, 'explore-search.png');
  await page.fill('input[name=search]', '');

  step('Explore: zoom by click, reload, Escape');
  const hot = (await frames(page, 'explore')).find((f) => f.name === 'main.hot');
  const box = await page.locator('canvas[data-flamegraph=explore]').boundingBox();
  await page.mouse.click(box.x + hot.left + hot.width / 2, box.y + hot.depth * 18 + 9);
  await page.waitForURL(/zoom=/);
  await page.waitForFunction(() => window.__flightrec.flamegraphs.explore.zoom.length === 2);
  res.zoom = (await hookOf(page, 'explore')).zoom;
  const zf = await frames(page, 'explore');
  check(zf.find((f) => f.name === 'main.hot').width >= box.width - 2, 'the zoomed frame fills the width');
  await page.reload();
  await page.waitForFunction(() => (window.__flightrec?.flamegraphs?.explore?.zoom.length ?? 0) > 0, null, { timeout: 20000 });
  res.zoom_reloaded = (await hookOf(page, 'explore')).zoom;
  await page.locator('canvas[data-flamegraph=explore]').focus();
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => window.__flightrec.flamegraphs.explore.zoom.length === 0);
  res.zoom_escaped = (await hookOf(page, 'explore')).zoom;
  check(!page.url().includes('zoom='), 'Escape clears the zoom from the URL');

  step('Explore: keyboard and sandwich');
  await page.keyboard.press('ArrowDown'); // total -> main.main
  await page.keyboard.press('ArrowDown'); // main.main -> its widest child, main.hot
  await page.keyboard.press('s');
  await page.waitForSelector('[data-sandwich="main.hot"]');
  await frames(page, 'callers');
  const callers = await page.evaluate(() => window.__flightrec.flamegraphs.callers.frames().map((f) => f.name));
  check(callers.includes('main.main'), `sandwich callers of main.hot include main.main: ${callers}`);
  await shot(page, 'explore-sandwich.png');
}

async function compare(page) {
  step('Compare: baseline vs canary');
  const q = new URLSearchParams({ base: 'cpu{service="shop",track="baseline"}', target: 'cpu{service="shop",track="canary"}', from: '-1h' });
  await page.goto(`${base}/compare?${q}`);
  await page.waitForSelector('table[data-table=diff] tbody tr', { timeout: 30000 });
  await page.waitForFunction(() => window.__flightrec?.flamegraphs?.compare?.frames().some((f) => f.name === 'shop.compress' && f.state !== 'neutral'), null, { timeout: 20000 });
  const fr = await frames(page, 'compare');
  res.regression = fr.find((f) => f.name === 'shop.compress')?.state;
  res.neutral = fr.find((f) => f.name === 'shop.parse')?.state;
  res.table_verdict = await page.evaluate(() => {
    for (const tr of document.querySelectorAll('table[data-table=diff] tbody tr')) {
      const td = tr.querySelectorAll('td');
      if (td[0].textContent === 'shop.compress') return td[7].textContent.replace(' ', '_');
    }
    return '';
  });
  res.cli = await page.locator('[data-cli]').textContent();
  step(`shop.compress ${res.regression} (table: ${res.table_verdict}), shop.parse ${res.neutral}`);
  await shot(page, 'compare.png');

  step('Compare: one instance a side is inconclusive');
  const one = new URLSearchParams({ base: 'cpu{service="app"}', target: 'cpu{service="app"}' });
  await page.goto(`${base}/compare?${one}`);
  res.inconclusive = await page.locator('[data-inconclusive]').textContent({ timeout: 30000 });
  check(res.inconclusive.includes('inconclusive'), `inconclusive message: ${res.inconclusive}`);
}

async function theme(page) {
  step('theme toggle');
  await page.goto(`${base}/explore?query=${encodeURIComponent('cpu{service="app"}')}`);
  await frames(page, 'explore');
  for (let i = 0; i < 3 && (await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark'; i++) {
    await page.click('button.theme-toggle');
  }
  check((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'the toggle reaches dark');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg !== 'rgb(255, 255, 255)', `dark background, got ${bg}`);
  await shot(page, 'explore-dark.png');
}

async function emptyAndErrors(page) {
  step('Explore: empty result and a bad selector');
  await page.goto(`${base}/explore?query=${encodeURIComponent('cpu{service="nope"}')}`);
  const empty = await page.locator('p.empty').first().textContent({ timeout: 20000 });
  check(empty.includes('No profiles match cpu{service="nope"} in the last 1h'), `empty message says why: ${empty}`);
  await page.goto(`${base}/explore?query=${encodeURIComponent('cpu{service=')}`);
  const errs = await page.locator('p.error').allTextContents().then(async (t) => t.length ? t : [await page.locator('p.error').first().textContent({ timeout: 20000 })]);
  check(errs.length === 1 && errs[0].includes('bad query'), `one error with the server's message: ${errs}`);
  res.empty_message = empty;
  res.error_message = errs[0];
}
