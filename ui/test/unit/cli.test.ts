import { describe, expect, it } from 'vitest';
import { diffCommand, shellQuote } from '../../src/views/compare/cli';
import { withType } from '../../src/views/explore/Explore';
import { toLocalInput, fromLocalInput, describeRange } from '../../src/components/TimeRange';
import { sortTop } from '../../src/components/TopTable';

describe('CLI line', () => {
  it('quotes what the shell would split', () => {
    expect(shellQuote('-1h')).toBe('-1h');
    expect(shellQuote('cpu{a="b"}')).toBe(`'cpu{a="b"}'`);
    expect(shellQuote(`it's`)).toBe(`'it'\\''s'`);
  });
  it('reproduces a comparison', () => {
    expect(diffCommand({ base: 'cpu{t="b"}', target: 'cpu{t="c"}', from: '-1h', to: 'now' }))
      .toBe(`flightrec diff --base 'cpu{t="b"}' --target 'cpu{t="c"}' --from -1h`);
    expect(diffCommand({ server: 'http://h:7070', base: 'a{}', target: 'b{}', from: '2026-11-20T10:00:00Z', to: '2026-11-20T11:00:00Z', baseFrom: '-2d', baseTo: '-1d' }))
      .toBe(`flightrec diff --server http://h:7070 --base 'a{}' --target 'b{}' --from 2026-11-20T10:00:00Z --to 2026-11-20T11:00:00Z --base-from -2d --base-to -1d`);
  });
});

describe('small transforms', () => {
  it('withType', () => {
    expect(withType('cpu{a="b"}', 'alloc_space')).toBe('alloc_space{a="b"}');
    expect(withType('', 'cpu')).toBe('cpu{}');
    expect(withType('{a="b"}', 'cpu')).toBe('cpu{a="b"}');
  });
  it('time range round trip and description', () => {
    const iso = '2026-11-20T10:00:05.000Z';
    expect(fromLocalInput(toLocalInput(iso))).toBe(iso);
    expect(toLocalInput('-1h')).toBe('');
    expect(fromLocalInput(toLocalInput('1795168800'))).toBe(new Date(1795168800000).toISOString());
    expect(describeRange('-1h', 'now')).toBe('the last 1h');
    expect(describeRange('now-15m', 'now')).toBe('the last 15m');
    expect(describeRange('a', 'b')).toBe('a to b');
  });
  it('top table sorts', () => {
    const rows = [{ name: 'b', self: 1, total: 9 }, { name: 'a', self: 5, total: 5 }, { name: 'c', self: 1, total: 10 }];
    expect(sortTop(rows, 'self').map((r) => r.name)).toEqual(['a', 'c', 'b']);
    expect(sortTop(rows, 'total').map((r) => r.name)).toEqual(['c', 'b', 'a']);
    expect(sortTop(rows, 'name').map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });
});
