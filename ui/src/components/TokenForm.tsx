// TokenForm asks for a read token when the server refused a request (401):
// servers started with --auth-token-file need one (docs/api.md).
import { useState } from 'preact/hooks';
import { auth } from '../auth';

export function TokenForm() {
  const [value, setValue] = useState('');
  return (
    <form class="notice token-form" data-token-form onSubmit={(e) => { e.preventDefault(); auth.set(value.trim()); }}>
      <span>This server needs a token with the <code>read</code> scope ({auth.reason}).</span>
      <input type="password" name="token" autocomplete="off" placeholder="token" value={value}
        onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="submit" disabled={!value.trim()}>Use token</button>
      {auth.token() && <button type="button" onClick={() => auth.set('')}>Forget the stored token</button>}
    </form>
  );
}
