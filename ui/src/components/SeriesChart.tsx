// The series chart: the selection's value over time (the sum of its series,
// and each series when there are a few), where dragging selects a range.
import { useRef, useState } from 'preact/hooks';
import type { SeriesData } from '../api';
import { formatTime, formatValue } from '../lib/format';

const W = 1000;
const H = 100;
const COLORS = ['#2f6fde', '#e0703a', '#2aa876', '#b648e0', '#d6a21e', '#d62d6e', '#4bb3c4', '#7a7f8c'];

/** sumSeries adds the series point by point, by time, sorted. */
export function sumSeries(d: SeriesData): [number, number][] {
  const m = new Map<number, number>();
  for (const s of d.series) for (const [t, v] of s.points) m.set(t, (m.get(t) ?? 0) + v);
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

export function SeriesChart(p: { data: SeriesData; onSelect: (fromMs: number, toMs: number) => void }) {
  const { data } = p;
  const svg = useRef<SVGSVGElement>(null);
  const [drag, setDrag] = useState<{ a: number; b: number } | null>(null);
  const total = sumSeries(data);
  const t0 = data.from_ms;
  const t1 = Math.max(data.to_ms, t0 + 1);
  const max = Math.max(1, ...total.map((p) => p[1]));
  const px = (t: number) => ((t + data.step_ms / 2 - t0) / (t1 - t0)) * W;
  const py = (v: number) => H - (v / max) * (H - 4);
  // Each step is a bar as wide as the step: a lone profile still shows.
  const bw = Math.max((data.step_ms / (t1 - t0)) * W, 3);
  const line = (pts: [number, number][]) => pts.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  const frac = (e: MouseEvent) => {
    const r = svg.current!.getBoundingClientRect();
    return Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  };
  const few = data.series.length > 1 && data.series.length <= COLORS.length;
  return (
    <div>
      <div class="chart">
        <svg
          ref={svg}
          viewBox={`0 0 ${W} ${H}`}
          preserveAspectRatio="none"
          onMouseDown={(e) => { const f = frac(e); setDrag({ a: f, b: f }); }}
          onMouseMove={(e) => drag && setDrag({ a: drag.a, b: frac(e) })}
          onMouseUp={() => {
            if (drag && Math.abs(drag.b - drag.a) > 0.005) {
              const lo = Math.min(drag.a, drag.b), hi = Math.max(drag.a, drag.b);
              p.onSelect(Math.round(t0 + lo * (t1 - t0)), Math.round(t0 + hi * (t1 - t0)));
            }
            setDrag(null);
          }}
          onMouseLeave={() => setDrag(null)}
        >
          {total.map(([t, v]) => (
            <rect key={t} x={px(t) - bw / 2} y={py(v)} width={bw} height={H - py(v)} fill="var(--chart)" opacity="0.55" />
          ))}
          {few && data.series.map((s, k) => (
            <polyline key={k} fill="none" stroke={COLORS[k]} stroke-width="1.5" vector-effect="non-scaling-stroke" points={line(s.points)} />
          ))}
          {drag && (
            <rect x={Math.min(drag.a, drag.b) * W} y={0} width={Math.abs(drag.b - drag.a) * W} height={H} fill="var(--select)" />
          )}
        </svg>
      </div>
      <div class="legend">
        {formatTime(t0)} – {formatTime(t1)} · step {data.step_ms / 1000}s · peak {formatValue(max, data.unit)} per step · drag to select a range
        {few && data.series.map((s, k) => (
          <span key={k}><span class="swatch" style={{ background: COLORS[k] }} />{labelString(s.labels)}</span>
        ))}
      </div>
    </div>
  );
}

function labelString(l: Record<string, string>): string {
  return '{' + Object.keys(l).sort().map((k) => `${k}="${l[k]}"`).join(',') + '}';
}
