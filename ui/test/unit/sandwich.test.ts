import { describe, expect, it } from 'vitest';
import { layout, findPath } from '../../src/flamegraph/layout';
import { sandwich } from '../../src/flamegraph/sandwich';
import { treeFrom } from './trees';

const rows = (t: ReturnType<typeof sandwich>['callers']) => {
  const L = layout(t);
  const out: Record<string, [number, number]> = {};
  for (let i = 0; i < L.n; i++) {
    const path: string[] = [];
    for (let j = i; j >= 0; j = L.parent[j]) path.unshift(L.names[L.name[j]]);
    out[path.join(';')] = [L.total[i], L.self[i]];
  }
  return out;
};

describe('sandwich', () => {
  it('callers nearest first, callees merged across call sites', () => {
    const L = layout(treeFrom(['main;a;f;x 3', 'main;b;f;x 2', 'main;b;f;y 1', 'main;b;f 4', 'main;c 7']));
    const s = sandwich(L, 'f');
    expect(s.total).toBe(10);
    expect(rows(s.callers)).toEqual({
      f: [10, 0], 'f;a': [3, 0], 'f;a;main': [3, 3], 'f;b': [7, 0], 'f;b;main': [7, 7],
    });
    expect(rows(s.callees)).toEqual({ f: [10, 4], 'f;x': [5, 5], 'f;y': [1, 1] });
  });

  it('counts a recursive function once per path', () => {
    const L = layout(treeFrom(['f;g;f;h 2', 'f 1']));
    const s = sandwich(L, 'f');
    expect(s.total).toBe(3);
    expect(rows(s.callers)).toEqual({ f: [3, 3] });
    expect(rows(s.callees)).toEqual({ f: [3, 1], 'f;g': [2, 0], 'f;g;f': [2, 0], 'f;g;f;h': [2, 2] });
  });

  it('is empty for a function not in the tree', () => {
    const s = sandwich(layout(treeFrom(['a 1'])), 'zz');
    expect(s.total).toBe(0);
    expect(s.callers.name.length).toBe(1);
  });

  it('callers of a frame right under the root have the root as self', () => {
    const L = layout(treeFrom(['f;x 2', 'm;f 3']));
    expect(findPath(L, ['f'])).toBeGreaterThan(0);
    expect(rows(sandwich(L, 'f').callers)).toEqual({ f: [5, 2], 'f;m': [3, 3] });
  });
});
