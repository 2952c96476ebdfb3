// The read token of a server started with --auth-token-file: asked for once
// when the API answers 401, kept in this browser's localStorage, and sent
// as a bearer token with every request, downloads included.
import { useEffect, useState } from 'preact/hooks';

const key = 'flightrec.token';

type Listener = () => void;

/** Auth is the token and whether the server asked for one; the app holds one. */
export class Auth {
  private listeners = new Set<Listener>();
  needed = false;
  reason = '';
  /** generation counts sign-ins: views keyed on it fetch again. */
  generation = 0;

  constructor(private store: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null) {}

  token(): string {
    return this.store?.getItem(key) ?? '';
  }

  headers(): Record<string, string> {
    const t = this.token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  /** set stores a token (or forgets it with "") and lets every view retry. */
  set(token: string): void {
    if (token) this.store?.setItem(key, token);
    else this.store?.removeItem(key);
    this.needed = false;
    this.reason = '';
    this.generation++;
    this.notify();
  }

  /** refused records a 401: the server wants a (different) token. */
  refused(reason: string): void {
    if (this.needed && this.reason === reason) return;
    this.needed = true;
    this.reason = reason;
    this.notify();
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }
}

function browserStorage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage disabled: the token lasts as long as nothing
  }
}

export const auth = new Auth(browserStorage());

/** useAuthVersion re-renders on sign-in and on a 401. */
export function useAuthVersion(): number {
  const [v, setV] = useState(0);
  useEffect(() => auth.subscribe(() => setV((x) => x + 1)), []);
  return v;
}

/** download fetches url with the token and saves it as name: a plain link
 * cannot carry an Authorization header. */
export async function download(url: string, name: string): Promise<void> {
  const resp = await fetch(url, { headers: auth.headers() });
  if (resp.status === 401) {
    auth.refused((await resp.text()).slice(0, 200));
    return;
  }
  if (!resp.ok) throw new Error(`${url}: ${resp.status} ${(await resp.text()).slice(0, 200)}`);
  const href = URL.createObjectURL(await resp.blob());
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
