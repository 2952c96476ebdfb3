// The app's router: views are chosen by path (/explore, /compare, ...) and
// keep their state in the query string through useUrlState.
import { useEffect, useState, useCallback } from 'preact/hooks';
import { decodeState, encodeState, patchState, type State } from './url';

// A change of location from inside the app (pushState does not fire
// popstate), so that every hook re-reads the URL.
const LOCATION_EVENT = 'flightrec:location';

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(LOCATION_EVENT));
}

/** useLocation re-renders on every change of path or query string. */
export function useLocation(): { path: string; search: string } {
  const read = () => ({ path: location.pathname, search: location.search });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener('popstate', on);
    window.addEventListener(LOCATION_EVENT, on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener(LOCATION_EVENT, on);
    };
  }, []);
  return loc;
}

/** useUrlState is a view's state, read from and written to the query
 * string. set(patch, {push}) records a history entry for changes worth going
 * back to (a new query, a zoom); typing replaces the entry instead. */
export function useUrlState<T extends State>(defaults: T): [T, (patch: Partial<T>, opts?: { push?: boolean }) => void] {
  const { search } = useLocation();
  const state = decodeState(search, defaults);
  const set = useCallback(
    (patch: Partial<T>, opts?: { push?: boolean }) => {
      const cur = decodeState(location.search, defaults);
      const next = patchState(cur, patch);
      const url = location.pathname + encodeState(next, defaults) + location.hash;
      if (url !== location.pathname + location.search + location.hash) navigate(url, !opts?.push);
    },
    // defaults are a constant of each view
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [],
  );
  return [state, set];
}

/** Link navigates inside the app without reloading it. */
export function Link(props: { href: string; class?: string; children: any; title?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      title={props.title}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
