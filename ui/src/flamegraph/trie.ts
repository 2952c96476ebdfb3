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
    const names: string[] = [];
    const index = new Map<string, number>();
    const t = { names, name: [] as number[], parent: [] as number[], self: [] as number[], total: [] as number[] };
    const visit = (n: Node, parent: number) => {
      let id = index.get(n.name);
      if (id === undefined) {
        id = names.length;
        names.push(n.name);
        index.set(n.name, id);
      }
      const me = t.name.length;
      t.name.push(id);
      t.parent.push(parent);
      t.self.push(n.self);
      t.total.push(n.total);
      for (const k of [...n.kids.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) visit(k, me);
    };
    visit(this.root, -1);
    return t;
  }
}
