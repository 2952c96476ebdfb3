// The timeline's data transforms, kept free of the DOM so they are unit
// tested: the step for a window and a width, time ↔ x, a dragged window as
// nanoseconds, lane order and where events go.
import type { Activity, SnapshotEvent, Timeline } from './api';

/** Steps the timeline picks from: round durations, 1 ms to 1 min. */
export const NICE_STEPS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000];
/** The server's bound on a timeline's steps (server/snapshots MaxSteps). */
export const MAX_STEPS = 6000;
/** Narrower steps than this many pixels would alias on the canvas. */
export const MIN_PX_PER_STEP = 3;

/** chooseStep is the smallest nice step (ns) that gives every step at least
 * MIN_PX_PER_STEP pixels of width and the window at most MAX_STEPS steps. */
export function chooseStep(windowNs: number, widthPx: number): number {
  const want = Math.max(windowNs / Math.max(widthPx / MIN_PX_PER_STEP, 1), windowNs / MAX_STEPS);
  for (const ms of NICE_STEPS_MS) if (ms * 1e6 >= want) return ms * 1e6;
  return Math.ceil(want / 60e9) * 60e9;
}

/** stepParam writes a step as the API's duration ("100ms", "2s"). */
export function stepParam(ns: number): string {
  return ns % 1e9 === 0 ? `${ns / 1e9}s` : `${ns / 1e6}ms`;
}

/** parseStep reads "100ms", "2s" or "1m" as ns; null for anything else. */
export function parseStep(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s.trim());
  if (!m) return null;
  const ns = Number(m[1]) * { ms: 1e6, s: 1e9, m: 60e9 }[m[2] as 'ms' | 's' | 'm'];
  return ns >= 1e6 ? Math.round(ns) : null;
}

/** Scale maps offsets from the window's start (ns) to canvas x (px). */
export interface Scale {
  windowNs: number;
  width: number;
}

// Multiplying first keeps round values exact (a 10 ms event in a 2 s window
// at 1000 px is x = 5, not 5.000000000000001).
export function nsToX(offsetNs: number, s: Scale): number {
  return (offsetNs * s.width) / s.windowNs;
}

export function xToNs(x: number, s: Scale): number {
  return (Math.min(Math.max(x, 0), s.width) * s.windowNs) / s.width;
}

/** stepX is step i's [x0, x1): the last step is cut at the window's end. */
export function stepX(i: number, stepNs: number, s: Scale): [number, number] {
  return [nsToX(i * stepNs, s), nsToX(Math.min((i + 1) * stepNs, s.windowNs), s)];
}

/** selectWindow turns a drag from xa to xb into a sub-window, as offsets
 * from the start snapped outwards to whole steps (the timeline shows no
 * finer), so the flamegraph covers exactly the bars under the selection.
 * A drag shorter than 3 px is a click: null. */
export function selectWindow(xa: number, xb: number, stepNs: number, s: Scale): { from: number; to: number } | null {
  if (Math.abs(xb - xa) < 3) return null;
  const lo = Math.round(xToNs(Math.min(xa, xb), s));
  const hi = Math.round(xToNs(Math.max(xa, xb), s));
  const from = Math.floor(lo / stepNs) * stepNs;
  const to = Math.min(Math.ceil(hi / stepNs) * stepNs, s.windowNs);
  return to > from ? { from, to } : null;
}

// Unix nanoseconds do not fit a double exactly (JSON numbers lose up to
// 128 ns at today's times); offsets within a window do, so the view works
// in offsets and writes absolute times with BigInt for the API and URL.

/** unixNs is start + offset as a decimal Unix-ns string. */
export function unixNs(startNs: number, offsetNs: number): string {
  return (BigInt(Math.round(startNs)) + BigInt(Math.round(offsetNs))).toString();
}

/** offsetOf reads a Unix-ns string as an offset from start; NaN if bad. */
export function offsetOf(unix: string, startNs: number): number {
  if (!/^\d+$/.test(unix)) return NaN;
  return Number(BigInt(unix) - BigInt(Math.round(startNs)));
}

/** A lane of the timeline: a process, or one of its threads when the
 * process is expanded. */
export interface Lane {
  key: string; // "100" or "100/101", also in data-lane
  pid: number;
  tid?: number;
  activity: Activity | null; // null: the process appears only in events
  labels?: Record<string, string>;
  threads: number; // of a process lane
}

/** A process whose events say it crashed or was killed. */
export function fatal(e: SnapshotEvent): boolean {
  return e.kind === 'signal' || e.kind === 'oom_kill' || (e.kind === 'exit' && !!e.signal);
}

/** laneOrder puts the trigger's process first, then processes with a fatal
 * event, then the rest as the server sent them (most on-CPU first), and
 * each expanded process's threads under it; only the first maxProcs
 * processes. Processes seen only in events get an empty lane so that their
 * markers have somewhere to go. */
export function laneOrder(tl: Timeline, expanded: ReadonlySet<number>, maxProcs = Infinity): Lane[] {
  const rank = (pid: number) => (pid === tl.trigger.pid ? 0 : tl.events.some((e) => e.pid === pid && fatal(e)) ? 1 : 2);
  const procs = tl.processes.map((p, k) => ({ p, k })).sort((a, b) => rank(a.p.pid) - rank(b.p.pid) || a.k - b.k);
  const out: Lane[] = [];
  for (const { p } of procs.slice(0, maxProcs)) {
    out.push({ key: String(p.pid), pid: p.pid, activity: p, labels: p.labels, threads: p.threads.length });
    if (!expanded.has(p.pid)) continue;
    for (const t of p.threads) out.push({ key: `${p.pid}/${t.tid}`, pid: p.pid, tid: t.tid, activity: t, threads: 0 });
  }
  const seen = new Set(tl.processes.map((p) => p.pid));
  let shown = Math.min(procs.length, maxProcs);
  for (const e of tl.events) {
    if (seen.has(e.pid) || shown >= maxProcs) continue;
    seen.add(e.pid);
    shown++;
    out.push({ key: String(e.pid), pid: e.pid, activity: null, threads: 0 });
  }
  return out;
}

/** A marker: an event drawn on a lane at x. */
export interface Marker {
  event: SnapshotEvent;
  lane: number;
  x: number;
}

/** placeEvents puts each event in the window on its process's lane, and on
 * its thread's lane too when that thread is shown. */
export function placeEvents(tl: Timeline, lanes: Lane[], s: Scale): Marker[] {
  const index = new Map(lanes.map((l, i) => [l.key, i]));
  const out: Marker[] = [];
  for (const e of tl.events) {
    const off = e.time_ns - tl.start_ns;
    if (off < 0 || off > s.windowNs) continue;
    const x = nsToX(off, s);
    const p = index.get(String(e.pid));
    if (p !== undefined) out.push({ event: e, lane: p, x });
    const t = e.tid !== undefined ? index.get(`${e.pid}/${e.tid}`) : undefined;
    if (t !== undefined) out.push({ event: e, lane: t, x });
  }
  return out;
}

/** markerAt is the marker nearest (x, lane) within r px, for the tooltip. */
export function markerAt(ms: Marker[], x: number, lane: number, r = 6): Marker | null {
  let best: Marker | null = null;
  for (const m of ms) {
    if (m.lane !== lane || Math.abs(m.x - x) > r) continue;
    if (!best || Math.abs(m.x - x) < Math.abs(best.x - x)) best = m;
  }
  return best;
}

/** Off-CPU states in drawing order, bottom up above the on-CPU time. */
export const STATES = ['blocked', 'sleep', 'preempted', 'other'] as const;

/** laneScale is the time one lane's full height stands for: a step, or
 * more when a process's threads add up to more than one step. */
export function laneScale(a: Activity, stepNs: number): number {
  let max = stepNs;
  for (let i = 0; i < a.cpu_ns.length; i++) {
    let v = a.cpu_ns[i];
    for (const st of Object.values(a.off_cpu_ns)) v += st[i] ?? 0;
    if (v > max) max = v;
  }
  return max;
}

const SIGNALS: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS',
};

export function signalName(n: number): string {
  return SIGNALS[n] ? `${SIGNALS[n]} (${n})` : `signal ${n}`;
}

/** eventSummary says what happened in one line, for the tooltip. */
export function eventSummary(e: SnapshotEvent): string {
  const who = `${e.comm ?? '?'} pid ${e.pid}${e.tid && e.tid !== e.pid ? ` tid ${e.tid}` : ''}`;
  switch (e.kind) {
    case 'exec': return `exec ${e.filename ?? ''} · ${who}`;
    case 'exit':
      if (e.signal) return `exit: killed by ${signalName(e.signal)}${e.core_dumped ? ', core dumped' : ''} · ${who}`;
      return `exit: code ${e.exit_code ?? 0} · ${who}`;
    case 'signal':
      return `signal ${signalName(e.signal ?? 0)}${e.si_code !== undefined ? ` si_code ${e.si_code}` : ''}${e.addr ? ` addr 0x${e.addr.toString(16)}` : ''} · ${who}`;
    case 'oom_kill': return `OOM kill · ${who}`;
    default: return `${e.kind} · ${who}`;
  }
}

/** formatOffset prints an offset from the trigger: "+1.25s", "-300ms". */
export function formatOffset(ns: number): string {
  const sign = ns < 0 ? '-' : '+';
  const a = Math.abs(ns);
  if (a >= 1e9) return `${sign}${+(a / 1e9).toFixed(3)}s`;
  return `${sign}${+(a / 1e6).toFixed(1)}ms`;
}
