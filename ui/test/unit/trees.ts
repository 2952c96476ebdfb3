// Small call trees for the tests, built from "a;b;c value" lines the way
// the server builds flamegraphs (pre-order, siblings by name).
import { TrieBuilder } from '../../src/flamegraph/trie';
import type { Tree } from '../../src/flamegraph/layout';

export function treeFrom(lines: string[]): Tree {
  const b = new TrieBuilder('total');
  for (const l of lines) {
    const [stack, v] = l.split(' ');
    b.add(stack.split(';'), Number(v), Number(v));
  }
  return b.tree();
}
