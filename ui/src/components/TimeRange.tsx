// The time range picker: relative presets ("-1h" to "now", as the API
// reads them) and absolute from/to in the browser's local time.
export const PRESETS = ['5m', '15m', '1h', '6h', '24h'];

export interface TimeRangeProps {
  from: string;
  to: string;
  onChange: (from: string, to: string) => void;
}

/** toLocalInput turns an API time (RFC 3339 or Unix ms/s) into a
 * datetime-local value; relative times give "". */
export function toLocalInput(t: string): string {
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(t)) ms = Number(t) >= 1e11 ? Number(t) : Number(t) * 1000;
  else if (/^\d{4}-\d{2}-\d{2}/.test(t)) ms = Date.parse(t);
  else return '';
  if (!isFinite(ms)) return '';
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export function fromLocalInput(v: string): string {
  const ms = new Date(v).getTime();
  return isFinite(ms) ? new Date(ms).toISOString() : '';
}

/** describeRange says a range in words for messages: "the last 1h". */
export function describeRange(from: string, to: string): string {
  const m = /^(?:now)?-(\w+)$/.exec(from);
  if (m && (to === '' || to === 'now')) return `the last ${m[1]}`;
  return `${from} to ${to || 'now'}`;
}

export function TimeRange(p: TimeRangeProps) {
  const rel = /^(?:now)?-(\w+)$/.exec(p.from);
  const active = rel && (p.to === 'now' || p.to === '') ? rel[1] : '';
  return (
    <div class="timerange">
      {PRESETS.map((d) => (
        <button key={d} aria-pressed={active === d} onClick={() => p.onChange(`-${d}`, 'now')}>{d}</button>
      ))}
      <input type="datetime-local" step="1" aria-label="from" value={toLocalInput(p.from)}
        onChange={(e) => { const v = fromLocalInput(e.currentTarget.value); if (v) p.onChange(v, p.to === 'now' ? new Date().toISOString() : p.to); }} />
      <span class="muted">to</span>
      <input type="datetime-local" step="1" aria-label="to" value={toLocalInput(p.to)}
        onChange={(e) => { const v = fromLocalInput(e.currentTarget.value); if (v) p.onChange(p.from, v); }} />
    </div>
  );
}
