// DownloadLink is a link to an API download that also works when the
// server wants a token: then it fetches with the token and saves the blob.
import type { ComponentChildren } from 'preact';
import { auth, download } from '../auth';

export function DownloadLink(p: { href: string; name: string; children: ComponentChildren; [attr: string]: unknown }) {
  const { href, name, children, ...rest } = p;
  return (
    <a {...rest} href={href} download={name} onClick={(e) => {
      if (!auth.token()) return; // the browser's own download needs no header
      e.preventDefault();
      download(href, name).catch((err: Error) => alert(`download failed: ${err.message}`));
    }}>{children}</a>
  );
}
