// The CLI command that reproduces a comparison, for pipelines and for
// sharing in a terminal.

/** shellQuote quotes s for POSIX shells when it needs it. */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface CompareArgs {
  server?: string;
  base: string;
  target: string;
  from: string;
  to: string;
  baseFrom?: string;
  baseTo?: string;
}

export function diffCommand(a: CompareArgs): string {
  const args = ['flightrec', 'diff'];
  if (a.server) args.push('--server', a.server);
  args.push('--base', shellQuote(a.base), '--target', shellQuote(a.target));
  if (a.from) args.push('--from', shellQuote(a.from));
  if (a.to && a.to !== 'now') args.push('--to', shellQuote(a.to));
  if (a.baseFrom) args.push('--base-from', shellQuote(a.baseFrom));
  if (a.baseTo) args.push('--base-to', shellQuote(a.baseTo));
  return args.join(' ');
}
