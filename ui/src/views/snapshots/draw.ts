// Drawing of the timeline canvas: per lane, stacked bars per step (on-CPU at
// the bottom, then off-CPU by state), the trigger as a vertical line, event
// markers and a time axis in offsets from the trigger.
import type { Lane, Marker, Scale } from './model';
import { STATES, laneScale, nsToX, stepX, formatOffset } from './model';

export const LANE_H = 28;
export const AXIS_H = 18;

export interface TimelinePalette {
  bg: string;
  alt: string;
  fg: string;
  border: string;
  select: string;
  cpu: string;
  states: Record<string, string>;
  trigger: string;
  events: Record<string, string>;
}

export function timelinePalette(dark: boolean): TimelinePalette {
  const cs = getComputedStyle(document.documentElement);
  const v = (n: string) => cs.getPropertyValue(n).trim();
  return {
    bg: v('--bg'), alt: v('--bg2'), fg: v('--fg2'), border: v('--border'), select: v('--select'),
    cpu: dark ? '#4cc27a' : '#2a9d55',
    states: dark
      ? { blocked: '#f0904f', sleep: '#7d8da6', preempted: '#e3c04a', other: '#b08ae6' }
      : { blocked: '#e0702c', sleep: '#a9b6c9', preempted: '#d1a91c', other: '#9466d4' },
    trigger: dark ? '#ff6b6b' : '#d62d2d',
    events: dark
      ? { signal: '#ff6b6b', oom_kill: '#ff6b6b', exit: '#e3e6eb', exec: '#6d9cf0' }
      : { signal: '#d62d2d', oom_kill: '#d62d2d', exit: '#333333', exec: '#2f6fde' },
  };
}

export interface DrawInput {
  lanes: Lane[];
  markers: Marker[];
  scale: Scale;
  stepNs: number;
  triggerOffset: number;
  selectedLane: string;
  palette: TimelinePalette;
}

export function drawTimeline(ctx: CanvasRenderingContext2D, d: DrawInput): void {
  const { scale: s, palette: P } = d;
  ctx.clearRect(0, 0, s.width, AXIS_H + d.lanes.length * LANE_H);
  drawAxis(ctx, d);
  d.lanes.forEach((lane, i) => {
    const y = AXIS_H + i * LANE_H;
    ctx.fillStyle = lane.key === d.selectedLane ? P.select : i % 2 ? P.alt : P.bg;
    ctx.fillRect(0, y, s.width, LANE_H);
    if (lane.activity) drawBars(ctx, lane, y + 2, LANE_H - 4, d);
  });
  const tx = nsToX(d.triggerOffset, s);
  ctx.strokeStyle = P.trigger;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(tx, AXIS_H - 4);
  ctx.lineTo(tx, AXIS_H + d.lanes.length * LANE_H);
  ctx.stroke();
  for (const m of d.markers) drawMarker(ctx, m.x, AXIS_H + m.lane * LANE_H + LANE_H / 2, m.event.kind, P);
}

function drawBars(ctx: CanvasRenderingContext2D, lane: Lane, y: number, h: number, d: DrawInput): void {
  const a = lane.activity!;
  const full = laneScale(a, d.stepNs);
  const layers: [number[], string][] = [[a.cpu_ns, d.palette.cpu]];
  for (const st of STATES) if (a.off_cpu_ns[st]) layers.push([a.off_cpu_ns[st], d.palette.states[st]]);
  for (const st of Object.keys(a.off_cpu_ns)) if (!(STATES as readonly string[]).includes(st)) layers.push([a.off_cpu_ns[st], d.palette.states.other]);
  for (let i = 0; i < a.cpu_ns.length; i++) {
    const [a0, a1] = stepX(i, d.stepNs, d.scale);
    // Whole pixels: fractional edges would leave antialiased seams between
    // adjacent steps; a step narrower than a pixel still shows as one.
    const x0 = Math.round(a0);
    const w = Math.max(Math.round(a1) - x0, 1);
    let top = y + h;
    for (const [vals, color] of layers) {
      const v = vals[i] ?? 0;
      if (v <= 0) continue;
      const bh = Math.max((v / full) * h, 1);
      top -= bh;
      ctx.fillStyle = color;
      ctx.fillRect(x0, top, w, bh);
    }
  }
}

function drawMarker(ctx: CanvasRenderingContext2D, x: number, y: number, kind: string, P: TimelinePalette): void {
  ctx.fillStyle = P.events[kind] ?? P.fg;
  ctx.strokeStyle = P.bg;
  ctx.lineWidth = 1;
  ctx.beginPath();
  if (kind === 'exec') ctx.arc(x, y, 5, 0, 2 * Math.PI);
  else if (kind === 'exit') ctx.rect(x - 4.5, y - 4.5, 9, 9);
  else {
    // fatal signals and OOM kills: a triangle pointing down at the moment
    ctx.moveTo(x - 6, y - 6);
    ctx.lineTo(x + 6, y - 6);
    ctx.lineTo(x, y + 6);
    ctx.closePath();
  }
  ctx.fill();
  ctx.stroke();
}

/** axisTicks are offsets from the start at round intervals from the
 * trigger, about every 100 px. */
export function axisTicks(s: Scale, triggerOffset: number): number[] {
  const raw = (s.windowNs / Math.max(s.width, 1)) * 100;
  const nice = [1e6, 2e6, 5e6, 10e6, 20e6, 50e6, 100e6, 200e6, 500e6, 1e9, 2e9, 5e9, 10e9, 20e9, 30e9, 60e9];
  const every = nice.find((n) => n >= raw) ?? 60e9;
  const out: number[] = [];
  for (let t = triggerOffset - Math.floor(triggerOffset / every) * every; t <= s.windowNs; t += every) out.push(t);
  return out;
}

function drawAxis(ctx: CanvasRenderingContext2D, d: DrawInput): void {
  ctx.fillStyle = d.palette.fg;
  ctx.strokeStyle = d.palette.border;
  ctx.font = '11px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  for (const t of axisTicks(d.scale, d.triggerOffset)) {
    const x = Math.round(nsToX(t, d.scale)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, AXIS_H - 4);
    ctx.lineTo(x, AXIS_H);
    ctx.lineWidth = 1;
    ctx.stroke();
    const rel = t - d.triggerOffset;
    const label = Math.abs(rel) < 1 ? 'trigger' : formatOffset(rel);
    const w = ctx.measureText(label).width;
    ctx.fillText(label, Math.min(Math.max(x - w / 2, 0), d.scale.width - w), 2);
  }
}
