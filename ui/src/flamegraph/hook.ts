// window.__flightrec is the page's test hook: the browser tests and the
// benchmark read laid-out frames from it instead of guessing from pixels.
import type { Layout } from './layout';
import type { Drawn } from './render';

export interface FrameInfo {
  name: string;
  depth: number;
  left: number;
  width: number;
  total: number;
  self: number;
  state?: string;
}

export interface FlamegraphHook {
  frames(): FrameInfo[];
  zoom: string[];
  drawMs: number;
  draws: number;
  matchedShare: number;
}

export interface TestHook {
  flamegraphs: Record<string, FlamegraphHook>;
  [k: string]: unknown;
}

declare global {
  interface Window {
    __flightrec?: TestHook;
  }
}

export function testHook(): TestHook {
  if (!window.__flightrec) window.__flightrec = { flamegraphs: {} };
  return window.__flightrec;
}

/** framesOf lists what a draw put on screen, widest first. */
export function framesOf(L: Layout, d: Drawn, stateOf?: (i: number) => string | undefined): FrameInfo[] {
  const out: FrameInfo[] = [];
  for (let k = 0; k < d.count; k++) {
    const i = d.node[k];
    out.push({
      name: L.names[L.name[i]], depth: L.depth[i], left: d.left[k], width: d.width[k],
      total: L.total[i], self: L.self[i], state: stateOf?.(i),
    });
  }
  return out.sort((a, b) => b.width - a.width || a.depth - b.depth);
}
