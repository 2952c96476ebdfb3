// Flamegraph layout, computed once per tree: each node's x offset and width
// in units of the profile's value (samples, ns, bytes), its depth and the end
// of its subtree, in flat typed arrays. Zooming and resizing only re-project
// these numbers to pixels; nothing is laid out again.

/** Tree is a call tree in the server's columnar form (query.Flamegraph):
 * pre-order, node 0 the root, parent[0] = -1. */
export interface Tree {
  names: string[];
  name: ArrayLike<number>;
  parent: ArrayLike<number>;
  self: ArrayLike<number>;
  total: ArrayLike<number>;
}

export interface Layout {
  n: number;
  names: string[];
  name: Int32Array;
  parent: Int32Array;
  self: Float64Array;
  total: Float64Array;
  /** x[i] is node i's left edge in value units; its width is total[i]. */
  x: Float64Array;
  depth: Int32Array;
  /** end[i] is one past node i's last descendant: its subtree is [i, end[i]). */
  end: Int32Array;
  maxDepth: number;
}

/** layout places children left to right in their pre-order (the server
 * sorts siblings by name), each starting where the previous one ended. */
export function layout(t: Tree): Layout {
  const n = t.name.length;
  const L: Layout = {
    n,
    names: t.names,
    name: Int32Array.from(t.name),
    parent: Int32Array.from(t.parent),
    self: Float64Array.from(t.self),
    total: Float64Array.from(t.total),
    x: new Float64Array(n),
    depth: new Int32Array(n),
    end: new Int32Array(n),
    maxDepth: 0,
  };
  const nextX = new Float64Array(n); // where node i's next child starts
  const stack = new Int32Array(n + 1); // open ancestors, to close subtrees
  let sp = 0;
  for (let i = 0; i < n; i++) {
    const p = L.parent[i];
    while (sp > 0 && stack[sp - 1] !== p) L.end[stack[--sp]] = i;
    if (p >= 0) {
      L.x[i] = nextX[p];
      nextX[p] += L.total[i];
      L.depth[i] = L.depth[p] + 1;
      if (L.depth[i] > L.maxDepth) L.maxDepth = L.depth[i];
    }
    nextX[i] = L.x[i];
    stack[sp++] = i;
  }
  while (sp > 0) L.end[stack[--sp]] = n;
  return L;
}

/** pathOf is node i's call path, root excluded, root first. */
export function pathOf(L: Layout, i: number): string[] {
  const out: string[] = [];
  for (let j = i; j > 0; j = L.parent[j]) out.push(L.names[L.name[j]]);
  return out.reverse();
}

/** findPath finds the node of a call path (root excluded), or -1. */
export function findPath(L: Layout, path: string[]): number {
  let node = 0;
  for (const name of path) {
    let found = -1;
    for (let c = node + 1; c < L.end[node]; c = L.end[c]) {
      if (L.names[L.name[c]] === name) {
        found = c;
        break;
      }
    }
    if (found < 0) return -1;
    node = found;
  }
  return node;
}

/** children lists node i's children, walking sibling to sibling by end[]. */
export function children(L: Layout, i: number): number[] {
  const out: number[] = [];
  for (let c = i + 1; c < L.end[i]; c = L.end[c]) out.push(c);
  return out;
}

/** neighbour is the node at the same depth next to i on the left (-1) or
 * right (+1), across parents, or i itself at the edge. */
export function neighbour(L: Layout, i: number, dir: -1 | 1): number {
  const d = L.depth[i];
  if (dir > 0) {
    for (let j = L.end[i]; j < L.n; j++) if (L.depth[j] === d) return j;
  } else {
    for (let j = i - 1; j >= 0; j--) if (L.depth[j] === d) return j;
  }
  return i;
}

/** matchNames marks the names containing query (case-insensitive), or
 * matching it as a regular expression when written /like this/. */
export function matchNames(names: string[], query: string): Uint8Array {
  const out = new Uint8Array(names.length);
  if (!query) return out;
  let test: (s: string) => boolean;
  const re = /^\/(.+)\/([a-z]*)$/.exec(query);
  if (re) {
    let rx: RegExp;
    try {
      rx = new RegExp(re[1], re[2].includes('i') ? 'i' : '');
    } catch {
      return out;
    }
    test = (s) => rx.test(s);
  } else {
    const q = query.toLowerCase();
    test = (s) => s.toLowerCase().includes(q);
  }
  for (let i = 0; i < names.length; i++) if (test(names[i])) out[i] = 1;
  return out;
}

/** matchedValue sums the totals of matching nodes without a matching
 * ancestor within the subtree of root: the value under matching frames,
 * counted once however deep they recurse. */
export function matchedValue(L: Layout, match: Uint8Array, root = 0): number {
  let sum = 0;
  for (let i = root; i < L.end[root]; ) {
    if (match[L.name[i]]) {
      sum += L.total[i];
      i = L.end[i]; // skip the subtree: counted
    } else i++;
  }
  return sum;
}
