// The sandwich view of one function, from a laid-out flamegraph: its
// callers (each call path leading to it, the function at the root) and its
// callees (its subtrees merged). Recursive calls count once: only the
// outermost occurrence on each path is used, so the totals add up to the
// function's total.
import { pathOf, type Layout, type Tree } from './layout';
import { TrieBuilder } from './trie';

export interface Sandwich {
  callers: Tree; // root: the function; children: its callers
  callees: Tree; // root: the function; children: what it calls
  total: number; // the function's total, counted once per path
}

export function sandwich(L: Layout, fn: string): Sandwich {
  const id = L.names.indexOf(fn);
  const callers = new TrieBuilder(fn);
  const callees = new TrieBuilder(fn);
  let total = 0;
  if (id < 0) return { callers: callers.tree(), callees: callees.tree(), total };
  for (let i = 1; i < L.n; ) {
    if (L.name[i] !== id) {
      i++;
      continue;
    }
    total += L.total[i];
    const path = pathOf(L, i).slice(0, -1).reverse(); // callers, nearest first
    callers.add(path, L.total[i], L.total[i]);
    addSubtree(L, i, callees);
    i = L.end[i]; // nested calls of fn are inside this subtree: counted
  }
  fixCallerSelf(callers);
  return { callers: callers.tree(), callees: callees.tree(), total };
}

// In the callers tree a node's self is the value of paths that end there
// (the outermost caller); add gave the last frame that, and the root, whose
// paths all continue, none unless fn was called from the root directly.
function fixCallerSelf(b: TrieBuilder): void {
  const r = b.root;
  let kids = 0;
  for (const k of r.kids.values()) kids += k.total;
  r.self = r.total - kids;
}

// addSubtree merges node i's subtree into b, relative to i.
function addSubtree(L: Layout, i: number, b: TrieBuilder): void {
  const stack: string[] = [];
  const depth0 = L.depth[i];
  b.root.total += L.total[i];
  b.root.self += L.self[i];
  for (let j = i + 1; j < L.end[i]; j++) {
    stack.length = L.depth[j] - depth0 - 1;
    stack.push(L.names[L.name[j]]);
    const n = b.node(stack);
    n.total += L.total[j];
    n.self += L.self[j];
  }
}
