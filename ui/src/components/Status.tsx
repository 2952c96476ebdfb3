// Status shows a request's loading state or the server's error message.
import type { AsyncState } from '../lib/async';

export function Status<T>(p: { st: AsyncState<T>; what: string }) {
  if (p.st.state === 'loading') return <p class="loading">Loading {p.what}</p>;
  if (p.st.state === 'error') return <p class="error" role="alert">{p.what}: {p.st.error}</p>;
  return null;
}
