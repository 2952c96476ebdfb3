// The Snapshots view's browser test, run by e2e/ui_snapshots_test.go
// against a real server holding server/snapshots/snaptest's snapshot
// ($SNAPSHOT_ID) and a second, older one ($OTHER_ID): the list, the
// timeline's lanes and markers, a dragged window's flamegraph, a lane, the
// off-CPU flamegraph and the before/after table. Prints one JSON summary
// line last; screenshots go to $FLIGHTREC_UI_ARTIFACTS.
import { join } from 'node:path';
import { launch, check, newPage } from './lib.mjs';

const base = process.env.FLIGHTREC_URL;
const id = process.env.SNAPSHOT_ID;
const other = process.env.OTHER_ID;
const out = process.env.FLIGHTREC_UI_ARTIFACTS || '.';
check(base && id && other, 'FLIGHTREC_URL, SNAPSHOT_ID and OTHER_ID are set');
const res = { screenshots: [], page_errors: [] };
const step = (s) => console.log(`· ${s}`);

const browser = await launch();
try {
  const page = await newPage(browser, res.page_errors);
  await list(page);
  await timeline(page);
  await windowFlamegraph(page);
  await beforeAfter(page);
  await lanesAndTypes(page);
  await reloadAndDark(page);
} finally {
  await browser.close();
}
console.log(JSON.stringify(res));

async function shot(page, name) {
  await page.screenshot({ path: join(out, name), fullPage: true });
  res.screenshots.push(name);
}

async function list(page) {
  step('list: newest first, filter, empty');
  await page.goto(`${base}/snapshots`);
  await page.waitForSelector('table[data-table=snapshots] tbody tr', { timeout: 20000 });
  res.list_ids = await page.$$eval('table[data-table=snapshots] tbody tr', (rs) => rs.map((r) => r.dataset.snapshot));
  res.list_reasons = await page.$$eval('table[data-table=snapshots] tbody tr td.reason', (ts) => ts.map((t) => t.textContent));
  await shot(page, 'snapshots-list.png');
  await page.fill('input[name=query]', '{service="web"}');
  await page.press('input[name=query]', 'Enter');
  await page.waitForFunction((other) => {
    const rs = document.querySelectorAll('table[data-table=snapshots] tbody tr');
    return rs.length === 1 && rs[0].dataset.snapshot === other;
  }, other, { timeout: 20000 });
  res.filtered_ids = [other];
  await page.fill('input[name=query]', '{service="nope"}');
  await page.press('input[name=query]', 'Enter');
  res.empty_message = await page.locator('p.empty[data-empty]').textContent({ timeout: 20000 });
  await page.goto(`${base}/snapshots?id=nope`);
  res.unknown_error = await page.locator('p.error').first().textContent({ timeout: 20000 });
  await page.goto(`${base}/snapshots`);
  await page.click(`tr[data-snapshot="${id}"]`);
  await page.waitForURL(new RegExp(`id=${id}`));
}

function hook(page) {
  return page.evaluate(() => window.__flightrec.snapshotTimeline);
}

async function timeline(page) {
  step('snapshot: header, lanes, markers, tooltip');
  await page.waitForFunction((id) => window.__flightrec?.snapshotTimeline?.id === id, id, { timeout: 20000 });
  res.reason = await page.locator('[data-reason]').textContent();
  let h = await hook(page);
  res.step_ns = h.stepNs;
  res.lanes = h.lanes.map((l) => l.key);
  res.markers = h.markers.map((m) => `${m.kind}@${m.lane}`);
  const sig = h.markers.find((m) => m.kind === 'signal');
  check(sig, `a signal marker: ${res.markers}`);
  const box = await page.locator(`canvas[data-timeline="${id}"]`).boundingBox();
  await page.mouse.move(box.x + sig.x, box.y + sig.y);
  const tip = page.locator('[data-event-tooltip=signal]');
  res.signal_tooltip = await tip.textContent({ timeout: 5000 });
  await page.click('[data-lane="100"] .tl-expand');
  await page.waitForFunction(() => window.__flightrec.snapshotTimeline.lanes.length > 2);
  h = await hook(page);
  res.expanded_lanes = h.lanes.map((l) => l.key);
  res.expanded_markers = h.markers.map((m) => `${m.kind}@${m.lane}`);
}

// frames waits for flamegraph id to be drawn, with a root of total ns when
// total is given, and returns its frames.
async function frames(page, id, total) {
  await page.waitForFunction(([id, total]) => {
    const fr = window.__flightrec?.flamegraphs?.[id]?.frames();
    return fr && fr.length > 0 && (total === undefined || fr.some((f) => f.depth === 0 && f.total === total));
  }, [id, total], { timeout: 20000 });
  return page.evaluate((id) => window.__flightrec.flamegraphs[id].frames(), id);
}

/** widest is the widest frame at depth d and its share of the root. */
function widest(fr, d) {
  const root = fr.find((f) => f.depth === 0);
  const w = fr.filter((f) => f.depth === d).sort((a, b) => b.width - a.width)[0];
  return { name: w?.name, share: w ? w.width / root.width : 0, total: root.total };
}

async function windowFlamegraph(page) {
  step('drag from just after the trigger to the end');
  const h = await hook(page);
  const box = await page.locator(`canvas[data-timeline="${id}"]`).boundingBox();
  const y = box.y + h.lanes[0].y + 10;
  await page.mouse.move(box.x + h.triggerX + 2, y);
  await page.mouse.down();
  await page.mouse.move(box.x + (h.triggerX + h.width) / 2, y, { steps: 4 });
  await page.mouse.move(box.x + h.width - 2, y, { steps: 4 });
  await page.mouse.up();
  await page.waitForURL(/wfrom=/);
  const u = new URL(page.url());
  res.wfrom = u.searchParams.get('wfrom');
  res.wto = u.searchParams.get('wto');
  const fr = await frames(page, 'snapshot', 50000000);
  res.window = widest(fr, 3);
  res.window_title = await page.locator('[data-window-title]').textContent();
  res.pprof_href = await page.locator('a[data-pprof]').getAttribute('href');
  step(`window flamegraph: widest leaf ${res.window.name} at ${res.window.share}`);
}

async function beforeAfter(page) {
  step('before/after table and diff flamegraph');
  await page.waitForSelector('table[data-table=snapshot-compare] tbody tr', { timeout: 20000 });
  res.compare = await page.$$eval('table[data-table=snapshot-compare] tbody tr', (rs) => rs.map((r) => ({ fn: r.dataset.fn, delta: Number(r.dataset.delta) })));
  const fr = await frames(page, 'snapshot-diff');
  res.diff_states = Object.fromEntries(fr.filter((f) => f.depth === 3).map((f) => [f.name, f.state]));
  await page.mouse.move(0, 0);
  await shot(page, 'snapshots.png');
  await page.click('[data-before-after] button:text-is("total")');
  await page.waitForSelector('table[data-table=snapshot-compare] tr[data-fn="main.handle"]:not([data-delta="0"])', { timeout: 20000 });
  res.compare_total_handle = Number(await page.getAttribute('table[data-table=snapshot-compare] tr[data-fn="main.handle"]', 'data-delta'));
  await page.click('[data-before-after] button:text-is("self")');
  await page.selectOption('select[aria-label=step]', '100ms');
  await page.waitForFunction(() => window.__flightrec.snapshotTimeline.stepNs === 100000000, null, { timeout: 20000 });
  res.chosen_step_ns = await page.evaluate(() => window.__flightrec.snapshotTimeline.stepNs);
  await page.selectOption('select[aria-label=step]', '');
  await page.waitForFunction(() => window.__flightrec.snapshotTimeline.stepNs === 10000000, null, { timeout: 20000 });
}

async function lanesAndTypes(page) {
  step('select thread 101, then off-CPU of all processes');
  await page.click('[data-lane="100/101"] .tl-name');
  await page.waitForURL(/tid=101/);
  let fr = await frames(page, 'snapshot', 40000000);
  res.thread_window = widest(fr, 3);
  await page.click('[data-lane="100/101"] .tl-name'); // again: deselect
  await page.waitForFunction(() => !location.search.includes('tid='));
  await page.click('button:text-is("off-CPU")');
  await page.waitForURL(/type=off_cpu/);
  fr = await frames(page, 'snapshot', 100000000);
  res.off_cpu_window = widest(fr, 1);
  await page.click('button:text-is("on-CPU")');
  await page.waitForFunction(() => !location.search.includes('type='));
}

async function reloadAndDark(page) {
  step('reload keeps the window; dark theme');
  await page.reload();
  const fr = await frames(page, 'snapshot', 50000000);
  res.reloaded = widest(fr, 3);
  for (let i = 0; i < 3 && (await page.evaluate(() => document.documentElement.dataset.theme)) !== 'dark'; i++) {
    await page.click('button.theme-toggle');
  }
  check((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'the toggle reaches dark');
  await page.waitForFunction(() => window.__flightrec.snapshotTimeline.draws > 1);
  await shot(page, 'snapshots-dark.png');
  // leave the next test of this browser profile in the default theme
  while ((await page.evaluate(() => document.documentElement.dataset.theme ?? 'auto')) !== 'auto') await page.click('button.theme-toggle');
}
