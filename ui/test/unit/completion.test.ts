import { describe, expect, it } from 'vitest';
import { applyCompletion, completionContext, rankSuggestions, typeOf } from '../../src/components/completion';

// "|" marks the cursor.
function ctx(s: string) {
  const c = s.indexOf('|');
  return completionContext(s.replace('|', ''), c);
}

describe('completion context', () => {
  const cases: { in: string; want: object | null }[] = [
    { in: 'cp|', want: { kind: 'type', prefix: 'cp', from: 0, to: 2 } },
    { in: 'cp|u{a="b"}', want: { kind: 'type', prefix: 'cp', from: 0, to: 3 } },
    { in: 'cpu{|}', want: { kind: 'label', prefix: '', from: 4, to: 4, used: [] } },
    { in: 'cpu{ser|}', want: { kind: 'label', prefix: 'ser', from: 4, to: 7, used: [] } },
    { in: 'cpu{service="api", po|d="x"}', want: { kind: 'label', prefix: 'po', from: 19, to: 22, used: ['service'] } },
    { in: 'cpu{service="a|', want: { kind: 'value', label: 'service', prefix: 'a', from: 13, to: 14, quoted: true } },
    { in: 'cpu{service=~"we|b.*"}', want: { kind: 'value', label: 'service', prefix: 'we', from: 14, to: 19, quoted: true } },
    { in: 'cpu{service!=|', want: { kind: 'value', label: 'service', prefix: '', from: 13, to: 13, quoted: false } },
    { in: 'cpu{a="x\\"y|"}', want: { kind: 'value', label: 'a', prefix: 'x"y', from: 7, to: 11, quoted: true } },
    { in: 'cpu{a="b"}|', want: null },
    { in: 'cpu{a!|', want: null },
  ];
  for (const c of cases) {
    it(c.in, () => {
      expect(ctx(c.in)).toEqual(c.want);
    });
  }
});

describe('applying a suggestion', () => {
  const cases: { in: string; choice: string; want: string }[] = [
    { in: 'cp|', choice: 'cpu', want: 'cpu{|}' },
    { in: 'al|{a="b"}', choice: 'alloc_space', want: 'alloc_space{|a="b"}' },
    { in: 'cpu{se|}', choice: 'service', want: 'cpu{service="|}' },
    { in: 'cpu{se|="x"}', choice: 'service', want: 'cpu{service|="x"}' },
    { in: 'cpu{service="a|', choice: 'api', want: 'cpu{service="api"|' },
    { in: 'cpu{service="a|"}', choice: 'api', want: 'cpu{service="api"|}' },
    { in: 'cpu{service=|}', choice: 'a"b', want: 'cpu{service="a\\"b"|}' },
  ];
  for (const c of cases) {
    it(`${c.in} + ${c.choice}`, () => {
      const cur = c.in.indexOf('|');
      const text = c.in.replace('|', '');
      const r = applyCompletion(text, completionContext(text, cur)!, c.choice);
      expect(r.text.slice(0, r.cursor) + '|' + r.text.slice(r.cursor)).toBe(c.want);
    });
  }
});

describe('ranking and types', () => {
  it('prefix matches first, then substring, case-insensitive', () => {
    expect(rankSuggestions(['pod', 'service', 'app_pod', 'Podman', 'node'], 'pod')).toEqual(['pod', 'Podman', 'app_pod']);
    expect(rankSuggestions(['b', 'a'], '')).toEqual(['b', 'a']);
    expect(rankSuggestions(['a1', 'a2', 'a3'], 'a', 2)).toEqual(['a1', 'a2']);
  });
  it('typeOf', () => {
    expect(typeOf('cpu{a="b"}')).toBe('cpu');
    expect(typeOf('{a="b"}')).toBe('');
    expect(typeOf(' alloc_space')).toBe('alloc_space');
  });
});
