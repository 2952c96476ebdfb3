// The flamegraph benchmark's page side (make bench-ui, ui/test/browser/
// bench.mjs): a synthetic tree of n nodes in the server's JSON form, then
// the times to parse, lay out and draw it, and to redraw it zoomed. Canvas
// drawing is deferred by the browser, so each timing ends by reading a
// pixel back, which waits for the raster.
import { layout, type Tree } from './layout';
import { draw, canvasHeight, nameColor, newDrawn, type Palette } from './render';

/** syntheticTree makes a pre-order tree of n nodes with a seeded PRNG:
 * names from a pool of n/10 functions, depths mostly 10-30, random selves. */
export function syntheticTree(n: number, seed = 1): Tree & { total: number[] } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const pool = Math.max(10, Math.floor(n / 10));
  const names = ['total'];
  for (let i = 0; i < pool; i++) names.push(`pkg${i % 97}.Func${i}`);
  const name = [0], parent = [-1], self = [0];
  const path = [0];
  for (let i = 1; i < n; i++) {
    // Popping likelier the deeper the path keeps depths around 10-30, as in
    // real profiles, with a few roots and wide middle levels.
    while (path.length > 1 && (rnd() < 0.35 + path.length / 100 || path.length > 80)) path.pop();
    name.push(1 + Math.floor(rnd() * pool));
    parent.push(path[path.length - 1]);
    self.push(Math.floor(rnd() * rnd() * 1000));
    path.push(i);
  }
  const total = self.slice();
  for (let i = n - 1; i > 0; i--) total[parent[i]] += total[i];
  return { names, name, parent, self, total };
}

export interface BenchResult {
  nodes: number;
  width: number;
  firstMs: number[];
  zoomMs: number[];
  drawnFirst: number;
  drawnZoom: number;
}

/** benchFlamegraph times runs first renders (JSON parse, layout, draw) and
 * zooms re-renders (draw only, alternating between two deep frames). */
export function benchFlamegraph(n: number, runs: number, zooms: number, width = 1200): BenchResult {
  const json = JSON.stringify(syntheticTree(n));
  const canvas = document.createElement('canvas');
  document.body.appendChild(canvas);
  const pal: Palette = { text: '#111', dim: '#ddd', match: '#b648e0', focus: '#000', neutral: '#ccc' };
  const res: BenchResult = { nodes: n, width, firstMs: [], zoomMs: [], drawnFirst: 0, drawnZoom: 0 };
  let L = layout(syntheticTree(2));
  let drawn = newDrawn(1);
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const t = JSON.parse(json) as Tree;
    L = layout(t);
    const colors = L.names.map((s) => nameColor(s, false));
    canvas.width = width;
    canvas.height = canvasHeight(L);
    const ctx = canvas.getContext('2d')!;
    drawn = newDrawn(L.n);
    draw(ctx, L, { width, zoom: 0, color: (i) => colors[L.name[i]], palette: pal }, drawn);
    ctx.getImageData(0, 0, 1, 1);
    res.firstMs.push(performance.now() - t0);
    res.drawnFirst = drawn.count;
  }
  const colors = L.names.map((s) => nameColor(s, false));
  const ctx = canvas.getContext('2d')!;
  const targets = zoomTargets(L);
  for (let r = 0; r < zooms; r++) {
    const t0 = performance.now();
    draw(ctx, L, { width, zoom: targets[r % 2], color: (i) => colors[L.name[i]], palette: pal }, drawn);
    ctx.getImageData(0, 0, 1, 1);
    res.zoomMs.push(performance.now() - t0);
    res.drawnZoom = drawn.count;
  }
  canvas.remove();
  return res;
}

// zoomTargets picks two frames at depth 3 with the largest subtrees: the
// zooms a user makes into a big branch, drawing many frames.
function zoomTargets(L: ReturnType<typeof layout>): [number, number] {
  const cand: number[] = [];
  for (let i = 0; i < L.n; i++) if (L.depth[i] === 3) cand.push(i);
  cand.sort((a, b) => L.end[b] - b - (L.end[a] - a));
  return [cand[0] ?? 0, cand[1] ?? cand[0] ?? 0];
}
