// Autocompletion of Prometheus selectors (cpu{service="api",pod=~"web-.*"}):
// what the text before the cursor is in the middle of, a profile type, a
// label name or a label value, and how a chosen suggestion is inserted.

export type CompletionContext =
  | { kind: 'type'; prefix: string; from: number; to: number }
  | { kind: 'label'; prefix: string; from: number; to: number; used: string[] }
  | { kind: 'value'; label: string; prefix: string; from: number; to: number; quoted: boolean };

const isIdent = (c: string) => /[A-Za-z0-9_:]/.test(c);

/** completionContext scans text up to cursor. It returns null where
 * nothing can be completed (after a closing brace, inside an operator). */
export function completionContext(text: string, cursor: number): CompletionContext | null {
  let state: 'type' | 'label' | 'op' | 'value' | 'afterValue' | 'done' = 'type';
  let tok = 0;
  let label = '';
  const used: string[] = [];
  for (let i = 0; i < cursor; i++) {
    const c = text[i];
    switch (state) {
      case 'type':
        if (c === '{') [state, tok] = ['label', i + 1];
        break;
      case 'label':
        if (c === '}') state = 'done';
        else if (c === ',' || (c === ' ' && text.slice(tok, i).trim() === '')) tok = i + 1;
        else if (c === '=' || c === '!' || c === '~') {
          label = text.slice(tok, i).trim();
          used.push(label);
          state = 'op';
        }
        break;
      case 'op':
        if (c === '"') [state, tok] = ['value', i + 1];
        break;
      case 'value':
        if (c === '\\') i++;
        else if (c === '"') state = 'afterValue';
        break;
      case 'afterValue':
        if (c === ',') [state, tok] = ['label', i + 1];
        else if (c === '}') state = 'done';
        break;
    }
  }
  switch (state) {
    case 'type': {
      const brace = text.indexOf('{');
      return { kind: 'type', prefix: text.slice(0, cursor).trim(), from: 0, to: brace < 0 ? text.length : brace };
    }
    case 'label': {
      const prefix = text.slice(tok, cursor).trimStart();
      let to = cursor;
      while (to < text.length && isIdent(text[to])) to++;
      return { kind: 'label', prefix, from: cursor - prefix.length, to, used };
    }
    case 'op':
      if (/[=~]$/.test(text.slice(0, cursor).trimEnd())) {
        return { kind: 'value', label, prefix: '', from: cursor, to: cursor, quoted: false };
      }
      return null;
    case 'value': {
      let to = cursor;
      while (to < text.length && text[to] !== '"') to += text[to] === '\\' ? 2 : 1;
      return { kind: 'value', label, prefix: unescape(text.slice(tok, cursor)), from: tok, to: Math.min(to, text.length), quoted: true };
    }
    default:
      return null;
  }
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

export function escapeValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/** applyCompletion inserts choice, returning the new text and cursor: a
 * type gets braces, a label name an opening `="`, a value its quotes. */
export function applyCompletion(text: string, ctx: CompletionContext, choice: string): { text: string; cursor: number } {
  const before = text.slice(0, ctx.from);
  const after = text.slice(ctx.to);
  switch (ctx.kind) {
    case 'type': {
      const rest = after.startsWith('{') ? after : '{}' + after;
      return { text: choice + rest, cursor: choice.length + 1 };
    }
    case 'label': {
      const op = /^\s*(=|!=|=~|!~)/.test(after) ? '' : '="';
      const ins = choice + op;
      return { text: before + ins + after, cursor: before.length + ins.length };
    }
    case 'value': {
      const v = escapeValue(choice);
      if (ctx.quoted) {
        const closed = after.startsWith('"');
        const t = before + v + (closed ? '' : '"') + after;
        return { text: t, cursor: before.length + v.length + 1 };
      }
      const ins = `"${v}"`;
      return { text: before + ins + after, cursor: before.length + ins.length };
    }
  }
}

/** rankSuggestions keeps items matching prefix, those starting with it
 * first, each group in its original order. */
export function rankSuggestions(items: string[], prefix: string, limit = 50): string[] {
  const p = prefix.toLowerCase();
  const starts: string[] = [];
  const contains: string[] = [];
  for (const it of items) {
    const l = it.toLowerCase();
    if (l.startsWith(p)) starts.push(it);
    else if (p && l.includes(p)) contains.push(it);
  }
  return starts.concat(contains).slice(0, limit);
}

/** typeOf is the profile type a selector names, "" when it names none. */
export function typeOf(selector: string): string {
  const m = /^\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(selector);
  return m ? m[1] : '';
}
