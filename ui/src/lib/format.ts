// Formatting of profile values by their unit, and of shares.

const nsUnits: [number, string][] = [
  [3600e9, 'h'], [60e9, 'min'], [1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns'],
];
const byteUnits: [number, string][] = [
  [2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'], [1, 'B'],
];

function scaled(v: number, units: [number, string][]): string {
  const a = Math.abs(v);
  for (const [div, name] of units) {
    if (a >= div) return `${trim(v / div)} ${name}`;
  }
  return `${trim(v)} ${units[units.length - 1][1]}`;
}

function trim(x: number): string {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** formatValue prints v in unit (nanoseconds, bytes, count, ...). */
export function formatValue(v: number, unit: string): string {
  switch (unit) {
    case 'nanoseconds':
      return scaled(v, nsUnits);
    case 'bytes':
      return scaled(v, byteUnits);
    default: {
      const a = Math.abs(v);
      if (a >= 1e9) return `${trim(v / 1e9)}G`;
      if (a >= 1e6) return `${trim(v / 1e6)}M`;
      if (a >= 1e4) return `${trim(v / 1e3)}k`;
      return String(Math.round(v));
    }
  }
}

export function formatPercent(share: number): string {
  if (!isFinite(share)) return '–';
  const p = share * 100;
  return `${Math.abs(p) >= 10 ? p.toFixed(1) : p.toFixed(2)}%`;
}

/** formatPoints prints a difference of shares in percentage points. */
export function formatPoints(delta: number): string {
  const p = delta * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(2)} pp`;
}

export function formatQ(q: number): string {
  if (q >= 0.01) return q.toFixed(3);
  return q.toExponential(1);
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
