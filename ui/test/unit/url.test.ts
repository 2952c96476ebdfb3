import { describe, expect, it } from 'vitest';
import { decodeState, encodeState, patchState, encodePath, decodePath } from '../../src/url';
import { exploreDefaults } from '../../src/views/explore/Explore';
import { compareDefaults } from '../../src/views/compare/Compare';

describe('URL state', () => {
  const cases: { name: string; defaults: Record<string, string>; state: Record<string, string>; url: string }[] = [
    { name: 'defaults are left out', defaults: exploreDefaults, state: { ...exploreDefaults }, url: '' },
    {
      name: 'explore with selector, zoom and search', defaults: exploreDefaults,
      state: { ...exploreDefaults, query: 'cpu{service="api"}', zoom: 'main.main;main.hot', search: 'hot', from: '2026-11-20T10:00:00.000Z', to: '2026-11-20T11:00:00.000Z' },
      url: '?query=cpu%7Bservice%3D%22api%22%7D&from=2026-11-20T10%3A00%3A00.000Z&to=2026-11-20T11%3A00%3A00.000Z&search=hot&zoom=main.main%3Bmain.hot',
    },
    {
      name: 'compare in the defaults\' key order', defaults: compareDefaults,
      state: { ...compareDefaults, width: 'sum', target: 'cpu{track="canary"}', base: 'cpu{track="baseline"}' },
      url: '?base=cpu%7Btrack%3D%22baseline%22%7D&target=cpu%7Btrack%3D%22canary%22%7D&width=sum',
    },
    { name: 'odd characters', defaults: exploreDefaults, state: { ...exploreDefaults, search: '/a&b=c #?+/' }, url: '?search=%2Fa%26b%3Dc+%23%3F%2B%2F' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(encodeState(c.state, c.defaults)).toBe(c.url);
      expect(decodeState(c.url, c.defaults)).toEqual(c.state);
    });
  }

  it('ignores unknown keys and keeps defaults for missing ones', () => {
    expect(decodeState('?query=x&bogus=1', exploreDefaults)).toEqual({ ...exploreDefaults, query: 'x' });
  });

  it('an explicit empty value differs from a default', () => {
    const s = { ...exploreDefaults, from: '' };
    expect(decodeState(encodeState(s, exploreDefaults), exploreDefaults).from).toBe('');
  });

  it('patchState leaves the rest', () => {
    expect(patchState({ a: '1', b: '2' }, { b: '3' })).toEqual({ a: '1', b: '3' });
  });

  it('frame paths round-trip', () => {
    for (const p of [[], ['a'], ['main.main', 'runtime.mcall', 'x::y<z>']]) expect(decodePath(encodePath(p))).toEqual(p);
  });
});
