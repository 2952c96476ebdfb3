// TrieBuilder accumulates call paths into a tree and flattens it to the
// server's columnar pre-order form (siblings by name), so derived trees
// (sandwich, diff) reuse the same layout and renderer.
import type { Tree } from './layout';

interface Node {
  name: string;
  self: number;
  total: number;
  kids: Map<string, Node>;
}

export class TrieBuilder {
  root: Node;
  constructor(rootName: string) {
    this.root = { name: rootName, self: 0, total: 0, kids: new Map() };
  }

  /** add adds value along path (root excluded); the last frame gets self. */
  add(path: string[], total: number, self: number): void {
    let n = this.root;
    n.total += total;
    for (const name of path) {
      let k = n.kids.get(name);
      if (!k) {
        k = { name, self: 0, total: 0, kids: new Map() };
        n.kids.set(name, k);
      }
      k.total += total;
      n = k;
    }
    n.self += self;
  }

  /** child returns the node of path, creating it, for callers that add
   * totals and selves separately. */
  node(path: string[]): Node {
    let n = this.root;
    for (const name of path) {
      let k = n.kids.get(name);
      if (!k) {
        k = { name, self: 0, total: 0, kids: new Map() };
        n.kids.set(name, k);
      }
      n = k;
    }
    return n;
  }

  tree(): Tree {
    return flatten(this.root, (n) => [n.self, n.total]);
  }
}

/** A trie node as flatten walks it. */
export interface TrieNode<N> {
  name: string;
  kids: Map<string, N>;
}

/** flatten lays a trie out in the server's columnar pre-order form,
 * siblings by name; values gives each node's self and total (and may
 * record more about it: it is called once per node, in output order). */
export function flatten<N extends TrieNode<N>>(root: N, values: (n: N) => [self: number, total: number]): Tree {
  const names: string[] = [];
  const index = new Map<string, number>();
  const t = { names, name: [] as number[], parent: [] as number[], self: [] as number[], total: [] as number[] };
  const visit = (n: N, parent: number) => {
    let id = index.get(n.name);
    if (id === undefined) {
      id = names.length;
      names.push(n.name);
      index.set(n.name, id);
    }
    const me = t.name.length;
    t.name.push(id);
    t.parent.push(parent);
    const [self, total] = values(n);
    t.self.push(self);
    t.total.push(total);
    for (const k of [...n.kids.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) visit(k, me);
  };
  visit(root, -1);
  return t;
}
