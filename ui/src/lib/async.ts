// useAsync runs a request when its key changes, cancelling the previous
// one, and reports loading, the result or the server's error message.
import { useEffect, useState } from 'preact/hooks';

export type AsyncState<T> =
  | { state: 'idle' }
  | { state: 'loading' }
  | { state: 'error'; error: string }
  | { state: 'done'; data: T };

export function useAsync<T>(key: string | null, run: (signal: AbortSignal) => Promise<T>): AsyncState<T> {
  const [st, setSt] = useState<AsyncState<T>>({ state: 'idle' });
  useEffect(() => {
    if (key === null) {
      setSt({ state: 'idle' });
      return;
    }
    const ctl = new AbortController();
    setSt({ state: 'loading' });
    run(ctl.signal).then(
      (data) => !ctl.signal.aborted && setSt({ state: 'done', data }),
      (e: Error) => !ctl.signal.aborted && setSt({ state: 'error', error: e.message }),
    );
    return () => ctl.abort();
    // run is recreated each render; key says when it changed
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return st;
}
