import { describe, expect, it } from 'vitest';
import { layout, findPath, pathOf } from '../../src/flamegraph/layout';
import { mergeDiff, nodeState, shareDelta, significance, diffColor } from '../../src/flamegraph/diff';
import type { DiffChange } from '../../src/api';
import { treeFrom } from './trees';

const base = treeFrom(['main;parse 50', 'main;compress 10', 'main;gone 40']);
const target = treeFrom(['main;parse 100', 'main;compress 40', 'main;new 60']); // twice the volume

function row(fn: string, metric: 'self' | 'total', verdict: DiffChange['verdict']): DiffChange {
  return { function: fn, metric, verdict, base_share: 0, target_share: 0, delta: 0, ratio: null, ci_low: 0, ci_high: 0, p: 1, q: 1, mde: 0 };
}

describe('mergeDiff', () => {
  it('unions both trees, keeping each side\'s values', () => {
    const d = mergeDiff(base, target, 'target');
    const L = layout(d.tree);
    const got: Record<string, number[]> = {};
    for (let i = 0; i < L.n; i++) got[pathOf(L, i).join(';') || 'total'] = [d.base[i], d.target[i], L.total[i]];
    expect(got).toEqual({
      total: [100, 200, 200], main: [100, 200, 200], 'main;compress': [10, 40, 40],
      'main;gone': [40, 0, 0], 'main;new': [0, 60, 60], 'main;parse': [50, 100, 100],
    });
    expect([d.baseRoot, d.targetRoot]).toEqual([100, 200]);
  });

  it('sum mode scales the baseline to the target\'s total', () => {
    const d = mergeDiff(base, target, 'sum');
    const L = layout(d.tree);
    const w = (p: string[]) => L.total[findPath(L, p)];
    expect(w([])).toBe(400);
    expect(w(['main', 'gone'])).toBe(80);
    expect(w(['main', 'new'])).toBe(60);
    expect(w(['main', 'compress'])).toBe(60);
    // widths still nest: a node's self plus its children's totals
    expect(L.self[findPath(L, ['main'])]).toBe(0);
  });

  it('share deltas are per side\'s total', () => {
    const d = mergeDiff(base, target, 'target');
    const L = layout(d.tree);
    expect(shareDelta(d, findPath(L, ['main', 'compress']))).toBeCloseTo(0.1);
    expect(shareDelta(d, findPath(L, ['main', 'parse']))).toBeCloseTo(0);
    expect(shareDelta(d, findPath(L, ['main', 'gone']))).toBeCloseTo(-0.4);
  });

  it('an empty side contributes nothing', () => {
    const d = mergeDiff({ names: [], name: [], parent: [], self: [], total: [] }, target, 'target');
    expect(d.baseRoot).toBe(0);
    expect(d.targetRoot).toBe(200);
  });
});

describe('colouring', () => {
  const d = mergeDiff(base, target, 'target');
  const L = layout(d.tree);
  const at = (p: string[]) => findPath(L, p);
  const state = (p: string[], sig: ReturnType<typeof significance>) => nodeState(d, at(p), p, p[p.length - 1] ?? 'total', sig);

  const cases: { name: string; changes: DiffChange[]; body?: Record<string, unknown>; path: string[]; want: string }[] = [
    { name: 'significant rise', changes: [row('compress', 'total', 'regression')], path: ['main', 'compress'], want: 'regression' },
    { name: 'no evidence is neutral', changes: [row('parse', 'total', 'no_evidence')], path: ['main', 'parse'], want: 'neutral' },
    { name: 'untested is neutral', changes: [], path: ['main', 'compress'], want: 'neutral' },
    { name: 'total verdict wins over self', changes: [row('compress', 'self', 'regression'), row('compress', 'total', 'no_evidence')], path: ['main', 'compress'], want: 'neutral' },
    { name: 'self verdict without a total row', changes: [row('compress', 'self', 'regression')], path: ['main', 'compress'], want: 'regression' },
    { name: 'significant fall', changes: [row('gone', 'total', 'improvement')], path: ['main', 'gone'], want: 'improvement' },
    { name: 'verdict against the frame\'s own change', changes: [row('gone', 'total', 'regression')], path: ['main', 'gone'], want: 'neutral' },
    { name: 'root always neutral', changes: [row('total', 'total', 'regression')], path: [], want: 'neutral' },
    {
      name: 'a path row overrides its function', changes: [row('compress', 'total', 'regression')],
      body: { paths: [{ frames: ['main', 'compress'], verdict: 'no_evidence' }] }, path: ['main', 'compress'], want: 'neutral',
    },
    {
      name: 'path rows with a leading total', changes: [],
      body: { paths: [{ frames: ['total', 'main', 'compress'], verdict: 'regression' }] }, path: ['main', 'compress'], want: 'regression',
    },
    {
      name: 'a path without a row falls back to its function', changes: [row('new', 'total', 'regression')],
      body: { paths: [{ frames: ['main'], verdict: 'no_evidence' }] }, path: ['main', 'new'], want: 'regression',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(state(c.path, significance(c.changes, c.body))).toBe(c.want);
    });
  }

  it('colours: neutral grey, red and blue deepen with the change', () => {
    expect(diffColor('neutral', 0.3, false, '#ccc')).toBe('#ccc');
    expect(diffColor('regression', 0.05, false, '#ccc')).toBe('hsl(0,80%,52%)');
    expect(diffColor('regression', 0.01, false, '#ccc')).not.toBe(diffColor('regression', 0.05, false, '#ccc'));
    expect(diffColor('improvement', -0.5, false, '#ccc')).toBe('hsl(214,80%,52%)');
  });
});
