import { describe, expect, it } from 'vitest';
import { syntheticTree } from '../../src/flamegraph/bench';
import { layout } from '../../src/flamegraph/layout';

describe('the benchmark\'s synthetic tree', () => {
  it('has n nodes in pre-order, consistent totals, realistic depth and width', () => {
    const L = layout(syntheticTree(50000));
    expect(L.n).toBe(50000);
    const kids = new Float64Array(L.n);
    let notPreorder = 0;
    for (let i = 1; i < L.n; i++) {
      if (L.parent[i] >= i) notPreorder++;
      kids[L.parent[i]] += L.total[i];
    }
    let inconsistent = 0;
    const perDepth = new Array(L.maxDepth + 1).fill(0);
    for (let i = 0; i < L.n; i++) {
      if (L.self[i] + kids[i] !== L.total[i]) inconsistent++;
      perDepth[L.depth[i]]++;
    }
    expect([notPreorder, inconsistent]).toEqual([0, 0]);
    expect(L.maxDepth).toBeGreaterThanOrEqual(20);
    expect(L.maxDepth).toBeLessThanOrEqual(80);
    expect(Math.max(...perDepth)).toBeGreaterThan(2000); // wide middle levels
    expect(perDepth[3]).toBeGreaterThan(50); // zoom targets exist
  });

  it('is the same for the same seed', () => {
    expect(syntheticTree(1000, 3)).toEqual(syntheticTree(1000, 3));
    expect(syntheticTree(1000, 3)).not.toEqual(syntheticTree(1000, 4));
  });
});
