import { describe, expect, it } from 'vitest';
import { layout, findPath, neighbour, matchNames, matchedValue, pathOf, children } from '../../src/flamegraph/layout';
import { treeFrom } from './trees';

// main;hot 60, main;cold 30, main 10 -> total(0) main(1) cold(2) hot(3)
const simple = treeFrom(['main;hot 60', 'main;cold 30', 'main 10']);

describe('layout', () => {
  const cases: { name: string; lines: string[]; want: { name: string; x: number; w: number; depth: number; end: number }[]; maxDepth: number }[] = [
    {
      name: 'children left to right by name, self after them',
      lines: ['main;hot 60', 'main;cold 30', 'main 10'],
      want: [
        { name: 'total', x: 0, w: 100, depth: 0, end: 4 },
        { name: 'main', x: 0, w: 100, depth: 1, end: 4 },
        { name: 'cold', x: 0, w: 30, depth: 2, end: 3 },
        { name: 'hot', x: 30, w: 60, depth: 2, end: 4 },
      ],
      maxDepth: 2,
    },
    {
      name: 'two roots and a deep branch',
      lines: ['a;b;c 5', 'a 1', 'z 4'],
      want: [
        { name: 'total', x: 0, w: 10, depth: 0, end: 5 },
        { name: 'a', x: 0, w: 6, depth: 1, end: 4 },
        { name: 'b', x: 0, w: 5, depth: 2, end: 4 },
        { name: 'c', x: 0, w: 5, depth: 3, end: 4 },
        { name: 'z', x: 6, w: 4, depth: 1, end: 5 },
      ],
      maxDepth: 3,
    },
    { name: 'root only', lines: [], want: [{ name: 'total', x: 0, w: 0, depth: 0, end: 1 }], maxDepth: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const L = layout(treeFrom(c.lines));
      expect(L.n).toBe(c.want.length);
      expect(L.maxDepth).toBe(c.maxDepth);
      c.want.forEach((w, i) => {
        expect({ name: L.names[L.name[i]], x: L.x[i], w: L.total[i], depth: L.depth[i], end: L.end[i] }).toEqual(w);
      });
    });
  }

  it('takes the server form as it is (columnar, pre-order)', () => {
    const L = layout({ names: ['a', 'b', 'total'], name: [2, 0, 1, 1], parent: [-1, 0, 1, 0], self: [0, 1, 2, 3], total: [6, 3, 2, 3] });
    expect(Array.from(L.x)).toEqual([0, 0, 0, 3]);
    expect(Array.from(L.end)).toEqual([4, 3, 3, 4]);
    expect(children(L, 0)).toEqual([1, 3]);
  });
});

describe('paths and navigation', () => {
  const L = layout(simple);
  it('pathOf and findPath are inverse', () => {
    for (let i = 0; i < L.n; i++) expect(findPath(L, pathOf(L, i))).toBe(i);
    expect(pathOf(L, 3)).toEqual(['main', 'hot']);
    expect(findPath(L, ['main', 'nope'])).toBe(-1);
    expect(findPath(L, ['hot'])).toBe(-1);
  });
  it('neighbour moves along a row across parents and stops at the edges', () => {
    const M = layout(treeFrom(['a;x 1', 'b;y 1', 'b;z 1']));
    const at = (p: string[]) => findPath(M, p);
    expect(neighbour(M, at(['a', 'x']), 1)).toBe(at(['b', 'y']));
    expect(neighbour(M, at(['b', 'y']), 1)).toBe(at(['b', 'z']));
    expect(neighbour(M, at(['b', 'z']), 1)).toBe(at(['b', 'z']));
    expect(neighbour(M, at(['b', 'y']), -1)).toBe(at(['a', 'x']));
    expect(neighbour(M, at(['a', 'x']), -1)).toBe(at(['a', 'x']));
  });
});

describe('search', () => {
  const cases: { q: string; want: string[] }[] = [
    { q: 'HOT', want: ['hot'] },
    { q: 'o', want: ['cold', 'hot', 'total'] },
    { q: '/^(hot|cold)$/', want: ['cold', 'hot'] },
    { q: '/[/', want: [] }, // a bad regexp matches nothing instead of throwing
    { q: '', want: [] },
  ];
  for (const c of cases) {
    it(`matches ${c.q || '(empty)'}`, () => {
      const names = simple.names;
      const m = matchNames(names, c.q);
      expect(names.filter((_, i) => m[i]).sort()).toEqual(c.want);
    });
  }
  it('counts recursive matches once', () => {
    const L = layout(treeFrom(['f;g;f 4', 'f 1', 'h 5']));
    expect(matchedValue(L, matchNames(L.names, 'f'))).toBe(5);
    expect(matchedValue(L, matchNames(L.names, '/^[fh]$/'))).toBe(10);
    expect(matchedValue(L, matchNames(L.names, 'g'))).toBe(4);
  });
});
