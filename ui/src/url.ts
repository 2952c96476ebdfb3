// A view's state lives in the query string so that links are shareable and
// a reload restores the view. State is a flat record of strings; values equal
// to the view's defaults are left out of the URL to keep links short.

export type State = Record<string, string>;

/** decodeState reads the keys of defaults from a query string, ignoring
 * unknown keys (links from other versions still open). */
export function decodeState<T extends State>(search: string, defaults: T): T {
  const q = new URLSearchParams(search);
  const out: State = { ...defaults };
  for (const k of Object.keys(defaults)) {
    const v = q.get(k);
    if (v !== null) out[k] = v;
  }
  return out as T;
}

/** encodeState writes the keys that differ from defaults, in the defaults'
 * key order, so one state has one URL. */
export function encodeState<T extends State>(state: T, defaults: T): string {
  const q = new URLSearchParams();
  for (const k of Object.keys(defaults)) {
    const v = state[k];
    if (v !== undefined && v !== defaults[k]) q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** withState returns state with patch applied, dropping nothing. */
export function patchState<T extends State>(state: T, patch: Partial<T>): T {
  const out = { ...state };
  for (const [k, v] of Object.entries(patch)) {
    if (v !== undefined) (out as State)[k] = v as string;
  }
  return out;
}

/** Frame paths (zoom targets) are stored as names joined by this separator:
 * ';' as in collapsed stacks, which function names rarely contain. */
export const PATH_SEP = ';';

export function encodePath(names: string[]): string {
  return names.join(PATH_SEP);
}

export function decodePath(s: string): string[] {
  return s === '' ? [] : s.split(PATH_SEP);
}
