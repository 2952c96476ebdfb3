// Diff flamegraphs: the union of a baseline and a target call tree, each
// node carrying both values, laid out by the target's value or by the sum of
// both (the baseline scaled to the target's total, so neither side dominates
// by volume), and coloured by the change in share, neutral unless
// /api/v1/diff found the change significant.
import type { Tree } from './layout';
import { flatten } from './trie';
import type { DiffChange, Verdict } from '../api';

export type WidthMode = 'target' | 'sum';

export interface DiffTree {
  tree: Tree;
  base: Float64Array; // node totals on each side
  target: Float64Array;
  baseSelf: Float64Array;
  targetSelf: Float64Array;
  baseRoot: number;
  targetRoot: number;
}

interface MNode {
  name: string;
  b: number;
  t: number;
  bs: number;
  ts: number;
  kids: Map<string, MNode>;
}

function insert(into: MNode, src: Tree, side: 'b' | 't'): void {
  const nodes: MNode[] = new Array(src.name.length);
  nodes[0] = into;
  for (let i = 0; i < src.name.length; i++) {
    let n: MNode;
    if (i === 0) n = into;
    else {
      const p = nodes[src.parent[i]];
      const name = src.names[src.name[i]];
      let k = p.kids.get(name);
      if (!k) {
        k = { name, b: 0, t: 0, bs: 0, ts: 0, kids: new Map() };
        p.kids.set(name, k);
      }
      n = k;
    }
    nodes[i] = n;
    if (side === 'b') {
      n.b += src.total[i];
      n.bs += src.self[i];
    } else {
      n.t += src.total[i];
      n.ts += src.self[i];
    }
  }
}

/** mergeDiff unions base and target by call path. */
export function mergeDiff(base: Tree, target: Tree, mode: WidthMode): DiffTree {
  const root: MNode = { name: 'total', b: 0, t: 0, bs: 0, ts: 0, kids: new Map() };
  if (base.name.length) insert(root, base, 'b');
  if (target.name.length) insert(root, target, 't');
  const scale = root.b > 0 ? root.t / root.b : 1;
  const width = (n: MNode) => (mode === 'target' ? n.t : n.t + n.b * scale);
  const widthSelf = (n: MNode) => (mode === 'target' ? n.ts : n.ts + n.bs * scale);
  const b: number[] = [], tg: number[] = [], bs: number[] = [], ts: number[] = [];
  const t = flatten(root, (n) => {
    b.push(n.b); tg.push(n.t); bs.push(n.bs); ts.push(n.ts);
    return [widthSelf(n), width(n)];
  });
  return {
    tree: t, base: Float64Array.from(b), target: Float64Array.from(tg), baseSelf: Float64Array.from(bs),
    targetSelf: Float64Array.from(ts), baseRoot: root.b, targetRoot: root.t,
  };
}

/** shareDelta is node i's change in share of its side's total. */
export function shareDelta(d: DiffTree, i: number): number {
  const bs = d.baseRoot > 0 ? d.base[i] / d.baseRoot : 0;
  const ts = d.targetRoot > 0 ? d.target[i] / d.targetRoot : 0;
  return ts - bs;
}

/** Significance is what /api/v1/diff decided, by function and, when the
 * server tests call paths, by path (names root first, joined by ";"). */
export interface Significance {
  byFunction: Map<string, Verdict>;
  byPath: Map<string, Verdict>;
}

/** significance reads the diff's rows. A frame's width is a total, so a
 * function's verdict is its total's, or its self's when the server has no
 * total row for it. Call-path rows are read from "paths" (or "nodes"), their
 * frames from "frames" (or "path", "names"), root first, a leading "total"
 * dropped. */
export function significance(changes: DiffChange[], body?: Record<string, unknown>): Significance {
  const byFunction = new Map<string, Verdict>();
  for (const c of changes) if (c.metric === 'self') byFunction.set(c.function, c.verdict);
  for (const c of changes) if (c.metric === 'total') byFunction.set(c.function, c.verdict);
  const byPath = new Map<string, Verdict>();
  const rows = (body?.paths ?? body?.nodes) as unknown;
  if (Array.isArray(rows)) {
    for (const r of rows as Record<string, unknown>[]) {
      let frames = (r.frames ?? r.path ?? r.names) as unknown;
      if (typeof frames === 'string') frames = frames.split(';');
      if (!Array.isArray(frames) || typeof r.verdict !== 'string') continue;
      const f = frames[0] === 'total' ? frames.slice(1) : frames;
      byPath.set(f.join(';'), r.verdict as Verdict);
    }
  }
  return { byFunction, byPath };
}

export type NodeState = 'regression' | 'improvement' | 'neutral';

/** nodeState colours node i: by its path's verdict when the server tested
 * the path, else by its function's; a frame whose own change goes against
 * the verdict (one caller of a function that regressed overall) is neutral,
 * as is the root. */
export function nodeState(d: DiffTree, i: number, path: string[], fn: string, sig: Significance): NodeState {
  if (i === 0) return 'neutral';
  const v = sig.byPath.get(path.join(';')) ?? sig.byFunction.get(fn);
  if (v === undefined || v === 'no_evidence') return 'neutral';
  const delta = shareDelta(d, i);
  if (v === 'regression' && delta > 0) return 'regression';
  if (v === 'improvement' && delta < 0) return 'improvement';
  return 'neutral';
}

/** diffColor is the fill of a node: red for more in the target, blue for
 * less, deeper for larger changes (full at 5 points), grey when neutral. */
export function diffColor(state: NodeState, delta: number, dark: boolean, neutral: string): string {
  if (state === 'neutral') return neutral;
  const t = Math.min(1, Math.abs(delta) / 0.05);
  const light = dark ? 62 - 22 * t : 86 - 34 * t;
  return state === 'regression' ? `hsl(0,80%,${light}%)` : `hsl(214,80%,${light}%)`;
}
