// Canvas drawing of a laid-out flamegraph. A draw projects the layout's
// value-unit coordinates through the zoomed node's range to pixels; frames
// narrower than half a pixel are skipped with their whole subtree (children
// are never wider than their parent), so the cost follows what is visible,
// not the size of the tree.
import type { Layout } from './layout';

export const ROW_HEIGHT = 18;
const MIN_WIDTH = 0.5; // px: narrower frames and their subtrees are not drawn
const FONT = '11px ui-monospace, Menlo, Consolas, monospace';

export interface Palette {
  text: string;
  dim: string;
  match: string;
  focus: string;
  neutral: string;
}

export interface DrawOptions {
  width: number; // CSS pixels
  zoom: number; // node whose range fills the width
  inverted?: boolean; // root at the bottom (callers in a sandwich)
  match?: Uint8Array; // by name index: highlighted frames; others dimmed
  hasMatch?: boolean;
  focus?: number;
  color: (i: number) => string; // fill of node i when not searching
  palette: Palette;
}

/** Drawn is what the last draw put on screen, for hit testing and tests:
 * node, left and width in CSS pixels. */
export interface Drawn {
  count: number;
  node: Int32Array;
  left: Float32Array;
  width: Float32Array;
}

export function newDrawn(n: number): Drawn {
  return { count: 0, node: new Int32Array(n), left: new Float32Array(n), width: new Float32Array(n) };
}

export function canvasHeight(L: Layout): number {
  return (L.maxDepth + 1) * ROW_HEIGHT;
}

export function rowTop(L: Layout, depth: number, inverted?: boolean): number {
  return (inverted ? L.maxDepth - depth : depth) * ROW_HEIGHT;
}

/** draw paints L into ctx (already scaled for the device pixel ratio) and
 * records what it drew into out. */
export function draw(ctx: CanvasRenderingContext2D, L: Layout, o: DrawOptions, out: Drawn): void {
  const W = o.width;
  ctx.clearRect(0, 0, W, canvasHeight(L));
  ctx.font = FONT;
  ctx.textBaseline = 'middle';
  const charW = ctx.measureText('m').width || 7;
  const z = o.zoom;
  const x0 = L.x[z];
  const scale = W / (L.total[z] || 1);
  const zDepth = L.depth[z];
  let k = 0;
  for (let i = 0; i < L.n; ) {
    const left = (L.x[i] - x0) * scale;
    const w = L.total[i] * scale;
    if (w < MIN_WIDTH || left >= W || left + w <= 0) {
      i = L.end[i];
      continue;
    }
    const l = Math.max(left, 0);
    const r = Math.min(left + w, W);
    const y = rowTop(L, L.depth[i], o.inverted);
    const name = L.name[i];
    let fill: string;
    if (o.hasMatch && o.match) fill = o.match[name] ? o.palette.match : o.palette.dim;
    else fill = o.color(i);
    ctx.globalAlpha = L.depth[i] < zDepth ? 0.55 : 1; // ancestors of the zoomed frame
    ctx.fillStyle = fill;
    ctx.fillRect(l, y, Math.max(r - l - 0.5, 0.5), ROW_HEIGHT - 1);
    const chars = Math.floor((r - l - 6) / charW);
    if (chars >= 3) {
      const s = L.names[name];
      ctx.fillStyle = o.palette.text;
      ctx.fillText(s.length <= chars ? s : s.slice(0, chars - 1) + '…', l + 3, y + ROW_HEIGHT / 2);
    }
    out.node[k] = i;
    out.left[k] = l;
    out.width[k] = r - l;
    k++;
    i++;
  }
  ctx.globalAlpha = 1;
  out.count = k;
  if (o.focus !== undefined && o.focus >= 0) outline(ctx, L, o, out, o.focus);
}

function outline(ctx: CanvasRenderingContext2D, L: Layout, o: DrawOptions, d: Drawn, node: number): void {
  for (let k = 0; k < d.count; k++) {
    if (d.node[k] !== node) continue;
    ctx.strokeStyle = o.palette.focus;
    ctx.lineWidth = 2;
    ctx.strokeRect(d.left[k] + 1, rowTop(L, L.depth[node], o.inverted) + 1, Math.max(d.width[k] - 2, 1), ROW_HEIGHT - 3);
    return;
  }
}

/** hit finds the drawn node under a point in CSS pixels, or -1. */
export function hit(L: Layout, d: Drawn, x: number, y: number, inverted?: boolean): number {
  const row = Math.floor(y / ROW_HEIGHT);
  const depth = inverted ? L.maxDepth - row : row;
  for (let k = 0; k < d.count; k++) {
    const i = d.node[k];
    if (L.depth[i] === depth && x >= d.left[k] && x < d.left[k] + d.width[k]) return i;
  }
  return -1;
}

/** nameColor is the default palette: warm hues keyed by the frame's
 * package, so one library's frames share a colour across views. */
export function nameColor(name: string, dark: boolean): string {
  const cut = Math.max(name.lastIndexOf('.', name.indexOf('(') >= 0 ? name.indexOf('(') : name.length), name.lastIndexOf('::'));
  const pkg = cut > 0 ? name.slice(0, cut) : name;
  let h = 2166136261;
  for (let i = 0; i < pkg.length; i++) h = Math.imul(h ^ pkg.charCodeAt(i), 16777619);
  const hue = 8 + ((h >>> 0) % 45); // red to yellow
  const light = (dark ? 52 : 62) + ((h >>> 8) % 12);
  return `hsl(${hue},${dark ? 70 : 80}%,${light}%)`;
}
