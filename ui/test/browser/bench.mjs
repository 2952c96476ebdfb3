// make bench-ui: the flamegraph's speed in chromium on the built bundle, and
// the bundle's gzipped size. Serves ui/dist on loopback, calls the page's
// benchmark hook (src/flamegraph/bench.ts) and prints the table for the
// README with PASS/FAIL against the targets.
import { createServer } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { launch } from './lib.mjs';

const dist = join(dirname(fileURLToPath(import.meta.url)), '../../dist');
const NODES = Number(process.env.BENCH_NODES || 50000);
const RUNS = Number(process.env.BENCH_RUNS || 9);
const ZOOMS = Number(process.env.BENCH_ZOOMS || 31);
const TARGETS = { first: 300, zoom: 50, bundle: 300 * 1024 };

const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  let file = join(dist, path);
  if (!path.startsWith('/assets/')) file = join(dist, 'index.html');
  try {
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":"not found"}');
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const browser = await launch();
let r, version;
try {
  const page = await browser.ctx.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench`);
  await page.waitForFunction(() => typeof window.__flightrec?.bench === 'function');
  version = browser.ctx.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent.match(/Chrome\/([\d.]+)/)?.[1]));
  r = await page.evaluate(([n, runs, zooms]) => window.__flightrec.bench(n, runs, zooms, 1200), [NODES, RUNS, ZOOMS]);
} finally {
  await browser.close();
  server.close();
}

let bundle = 0;
const files = readdirSync(join(dist, 'assets')).filter((f) => /\.(js|css)$/.test(f));
for (const f of files) bundle += gzipSync(readFileSync(join(dist, 'assets', f)), { level: 9 }).length;

const first = median(r.firstMs), zoom = median(r.zoomMs);
const pass = (ok) => (ok ? 'PASS' : 'FAIL');
const rows = [
  ['first render: JSON parse + layout + draw', `${first.toFixed(1)} ms`, `≤ ${TARGETS.first} ms`, pass(first <= TARGETS.first)],
  ['re-render on zoom', `${zoom.toFixed(1)} ms`, `≤ ${TARGETS.zoom} ms`, pass(zoom <= TARGETS.zoom)],
  [`bundle, gzip -9 (${files.length} JS+CSS files)`, `${(bundle / 1024).toFixed(1)} KB`, `≤ ${TARGETS.bundle / 1024} KB`, pass(bundle <= TARGETS.bundle)],
];
console.log(`flightrec UI benchmark: chromium ${version}, ${r.nodes.toLocaleString('en')} nodes, ${r.width} px wide;`);
console.log(`median of ${RUNS} first renders (${r.drawnFirst} frames drawn) and ${ZOOMS} zooms (${r.drawnZoom} frames drawn)`);
console.log('');
console.log('| measure | median | target | result |');
console.log('|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log('');
console.log(`first render, all runs (ms): ${r.firstMs.map((x) => x.toFixed(1)).join(' ')}`);
console.log(`zoom, all runs (ms): ${r.zoomMs.map((x) => x.toFixed(1)).join(' ')}`);
console.log('command: make bench-ui');
if (rows.some((row) => row[3] === 'FAIL')) process.exitCode = 1;
