// A label-selector input with autocompletion of profile types, label names
// and label values, fetched from the server for the current time range.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { applyCompletion, completionContext, rankSuggestions, typeOf, type CompletionContext } from './completion';

export interface SelectorInputProps {
  value: string;
  onSubmit: (v: string) => void;
  types: string[];
  from: string;
  to: string;
  name?: string;
  placeholder?: string;
}

export function SelectorInput(p: SelectorInputProps) {
  const [text, setText] = useState(p.value);
  const [open, setOpen] = useState(false);
  const [items, setItems] = useState<string[]>([]);
  const [sel, setSel] = useState(-1);
  const [ctx, setCtx] = useState<CompletionContext | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const cache = useRef(new Map<string, Promise<string[]>>());

  useEffect(() => setText(p.value), [p.value]);

  const fetchList = (key: string, run: () => Promise<string[]>) => {
    let pr = cache.current.get(key);
    if (!pr) {
      pr = run().catch(() => []);
      cache.current.set(key, pr);
    }
    return pr;
  };

  const refresh = async (t: string, cursor: number) => {
    const c = completionContext(t, cursor);
    setCtx(c);
    if (!c) return setOpen(false);
    const range = { from: p.from, to: p.to };
    const scope = `${typeOf(t)}{}`;
    let list: string[];
    if (c.kind === 'type') list = p.types;
    else if (c.kind === 'label') {
      list = await fetchList(`l:${scope}`, () => api.labels({ ...range, query: scope }).then((r) => r.names));
      list = list.filter((n) => !c.used.includes(n));
    } else list = await fetchList(`v:${scope}:${c.label}`, () => api.labelValues(c.label, { ...range, query: scope }).then((r) => r.values));
    const ranked = rankSuggestions(list, c.prefix);
    setItems(ranked);
    setSel(-1);
    setOpen(ranked.length > 0 && document.activeElement === input.current);
  };

  const accept = (choice: string) => {
    if (!ctx) return;
    const r = applyCompletion(text, ctx, choice);
    setText(r.text);
    requestAnimationFrame(() => {
      input.current?.setSelectionRange(r.cursor, r.cursor);
      refresh(r.text, r.cursor);
    });
  };

  const onKey = (e: KeyboardEvent) => {
    if (open && e.key === 'ArrowDown') setSel((s) => Math.min(s + 1, items.length - 1));
    else if (open && e.key === 'ArrowUp') setSel((s) => Math.max(s - 1, 0));
    else if (open && (e.key === 'Tab' || (e.key === 'Enter' && sel >= 0))) accept(items[Math.max(sel, 0)]);
    else if (e.key === 'Escape') setOpen(false);
    else if (e.key === 'Enter') {
      setOpen(false);
      p.onSubmit(text.trim());
      return;
    } else return;
    e.preventDefault();
  };

  return (
    <div class="selector grow">
      <input
        ref={input}
        name={p.name ?? 'selector'}
        value={text}
        spellcheck={false}
        autocomplete="off"
        placeholder={p.placeholder ?? 'cpu{service="api"}'}
        onInput={(e) => {
          const el = e.currentTarget;
          setText(el.value);
          refresh(el.value, el.selectionStart ?? el.value.length);
        }}
        onFocus={(e) => refresh(e.currentTarget.value, e.currentTarget.selectionStart ?? 0)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={onKey}
      />
      {open && (
        <ul class="suggest" role="listbox">
          {items.map((it, k) => (
            <li key={it} class={k === sel ? 'sel' : ''} onMouseDown={(e) => { e.preventDefault(); accept(it); }}>{it}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
