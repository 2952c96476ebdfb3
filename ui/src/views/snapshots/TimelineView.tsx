// The snapshot's timeline: lane labels (click selects a lane, ▸ expands a
// process into its threads) beside one canvas of all lanes; dragging across
// the canvas selects a window, hovering a marker shows its event.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Timeline } from './api';
import { eventSummary, markerAt, nsToX, placeEvents, selectWindow, formatOffset, STATES, type Lane, type Marker, type Scale } from './model';
import { AXIS_H, LANE_H, drawTimeline, timelinePalette } from './draw';
import { testHook } from '../../flamegraph/hook';
import { isDark, useThemeVersion } from '../../theme';
import { formatValue } from '../../lib/format';

export interface TimelineProps {
  tl: Timeline;
  lanes: Lane[];
  window: { from: number; to: number } | null; // offsets from the start
  selectedLane: string;
  onSelect: (from: number, to: number) => void;
  onLane: (lane: Lane) => void;
  onToggle: (pid: number) => void;
  expanded: ReadonlySet<number>;
}

export function TimelineView(p: TimelineProps) {
  const { tl, lanes } = p;
  const canvas = useRef<HTMLCanvasElement>(null);
  const area = useRef<HTMLDivElement>(null);
  const width = useWidth(area);
  const theme = useThemeVersion();
  const [drag, setDrag] = useState<{ a: number; b: number } | null>(null);
  const [hover, setHover] = useState<{ m: Marker | null; lane: number; x: number; cx: number; cy: number } | null>(null);
  const scale: Scale = useMemo(() => ({ windowNs: tl.end_ns - tl.start_ns, width }), [tl, width]);
  const markers = useMemo(() => placeEvents(tl, lanes, scale), [tl, lanes, scale]);
  const triggerOffset = tl.trigger.time_ns - tl.start_ns;
  const height = AXIS_H + lanes.length * LANE_H;

  useEffect(() => {
    const c = canvas.current;
    if (!c || width <= 0) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    c.style.height = `${height}px`;
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawTimeline(ctx, { lanes, markers, scale, stepNs: tl.step_ns, triggerOffset, selectedLane: p.selectedLane, palette: timelinePalette(isDark()) });
    publish(tl, lanes, markers, scale, triggerOffset);
  }, [tl, lanes, markers, scale, theme, p.selectedLane, height]);

  const local = (e: MouseEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return { x: Math.min(Math.max(e.clientX - r.left, 0), width), y: e.clientY - r.top };
  };
  const laneAt = (y: number) => Math.floor((y - AXIS_H) / LANE_H);
  const onUp = (e: MouseEvent) => {
    if (!drag) return;
    const w = selectWindow(drag.a, local(e).x, tl.step_ns, scale);
    setDrag(null);
    if (w) p.onSelect(w.from, w.to);
    else {
      const i = laneAt(local(e).y);
      if (i >= 0 && i < lanes.length) p.onLane(lanes[i]);
    }
  };
  const sel = drag ? { a: Math.min(drag.a, drag.b), b: Math.max(drag.a, drag.b) }
    : p.window ? { a: nsToX(p.window.from, scale), b: nsToX(p.window.to, scale) } : null;

  return (
    <div class="tl">
      <div class="tl-labels">
        <div class="tl-axis-label muted" style={{ height: `${AXIS_H}px` }}>pid / tid</div>
        {lanes.map((l) => <LaneLabel key={l.key} lane={l} selected={l.key === p.selectedLane} expanded={p.expanded.has(l.pid)} onLane={p.onLane} onToggle={p.onToggle} />)}
      </div>
      <div class="tl-canvas" ref={area} style={{ height: `${height}px` }}>
        <canvas
          ref={canvas}
          data-timeline={tl.id}
          data-step-ns={tl.step_ns}
          aria-label="timeline: drag to select a window, click a lane to select it"
          onMouseDown={(e) => { e.preventDefault(); const x = local(e).x; setDrag({ a: x, b: x }); }}
          onMouseMove={(e) => {
            const { x, y } = local(e);
            if (drag) setDrag({ a: drag.a, b: x });
            const lane = laneAt(y);
            setHover(lane >= 0 && lane < lanes.length ? { m: markerAt(markers, x, lane), lane, x, cx: e.clientX, cy: e.clientY } : null);
          }}
          onMouseUp={onUp}
          onMouseLeave={() => { setDrag(null); setHover(null); }}
        />
        {sel && <div class="tl-sel" data-window style={{ left: `${sel.a}px`, width: `${Math.max(sel.b - sel.a, 1)}px`, top: `${AXIS_H}px`, height: `${height - AXIS_H}px` }} />}
        {hover && !drag && <HoverTip tl={tl} lane={lanes[hover.lane]} m={hover.m} x={hover.x} cx={hover.cx} cy={hover.cy} scale={scale} />}
      </div>
    </div>
  );
}

/** useWidth is an element's width, following its resizes. */
export function useWidth(ref: { current: HTMLElement | null }): number {
  const [w, setW] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setW(el.clientWidth));
    ro.observe(el);
    setW(el.clientWidth);
    return () => ro.disconnect();
  }, []);
  return w;
}

function LaneLabel(p: { lane: Lane; selected: boolean; expanded: boolean; onLane: (l: Lane) => void; onToggle: (pid: number) => void }) {
  const l = p.lane;
  const name = l.labels?.service ?? l.labels?.comm ?? l.labels?.pod ?? '';
  return (
    <div class={`tl-lane${l.tid !== undefined ? ' thread' : ''}${p.selected ? ' selected' : ''}`} style={{ height: `${LANE_H}px` }} data-lane={l.key} aria-selected={p.selected}>
      {l.tid === undefined && l.threads > 0 ? (
        <button class="tl-expand" aria-expanded={p.expanded} title={p.expanded ? 'hide threads' : `show its ${l.threads} thread(s)`}
          onClick={() => p.onToggle(l.pid)}>{p.expanded ? '▾' : '▸'}</button>
      ) : <span class="tl-expand" />}
      <button class="tl-name" title={labelTitle(l)} onClick={() => p.onLane(l)}>
        {l.tid === undefined ? <>pid {l.pid} {name && <span class="muted">{name}</span>}</> : <>tid {l.tid}</>}
      </button>
    </div>
  );
}

function labelTitle(l: Lane): string {
  const labels = l.labels ? Object.entries(l.labels).map(([k, v]) => `${k}="${v}"`).join(', ') : '';
  const who = l.tid === undefined ? `process ${l.pid}` : `thread ${l.tid} of process ${l.pid}`;
  return `${who}${labels ? ` {${labels}}` : ''}: click to show only it in the flamegraph and the comparison`;
}

function HoverTip(p: { tl: Timeline; lane: Lane; m: Marker | null; x: number; cx: number; cy: number; scale: Scale }) {
  const style = { left: `${Math.min(p.cx + 14, window.innerWidth - 440)}px`, top: `${p.cy + 14}px` };
  if (p.m) {
    const e = p.m.event;
    return (
      <div class="tooltip" data-event-tooltip={e.kind} style={style}>
        <div class="name">{eventSummary(e)}</div>
        <div>{formatOffset(e.time_ns - p.tl.trigger.time_ns)} from the trigger</div>
        {e.frames && e.frames.length > 0 && (
          <ol class="tl-frames mono">{e.frames.slice(0, 24).map((f, k) => <li key={k}>{f}</li>)}</ol>
        )}
      </div>
    );
  }
  const a = p.lane.activity;
  if (!a) return null;
  const i = Math.min(Math.floor((p.x / p.scale.width) * p.tl.steps), p.tl.steps - 1);
  const at = p.tl.start_ns + i * p.tl.step_ns;
  return (
    <div class="tooltip" style={style}>
      <div>{p.lane.tid === undefined ? `pid ${p.lane.pid}` : `tid ${p.lane.tid}`} · {formatOffset(at - p.tl.trigger.time_ns)} (step {formatValue(p.tl.step_ns, 'nanoseconds')})</div>
      <div>on CPU {formatValue(a.cpu_ns[i], 'nanoseconds')} ({a.samples[i]} samples)</div>
      {STATES.filter((st) => a.off_cpu_ns[st]?.[i]).map((st) => <div key={st}>{st} {formatValue(a.off_cpu_ns[st][i], 'nanoseconds')}</div>)}
    </div>
  );
}

/** publish puts what was drawn where in the page's test hook, for the
 * browser test to find lanes and markers without reading pixels. */
function publish(tl: Timeline, lanes: Lane[], markers: Marker[], scale: Scale, triggerOffset: number) {
  const hook = testHook();
  const prev = hook.snapshotTimeline as { draws: number } | undefined;
  hook.snapshotTimeline = {
    id: tl.id,
    stepNs: tl.step_ns,
    width: scale.width,
    triggerX: nsToX(triggerOffset, scale),
    lanes: lanes.map((l, i) => ({ key: l.key, pid: l.pid, tid: l.tid, y: AXIS_H + i * LANE_H, h: LANE_H })),
    markers: markers.map((m) => ({ kind: m.event.kind, pid: m.event.pid, tid: m.event.tid, signal: m.event.signal, x: m.x, y: AXIS_H + m.lane * LANE_H + LANE_H / 2, lane: lanes[m.lane].key })),
    draws: (prev?.draws ?? 0) + 1,
  };
}
