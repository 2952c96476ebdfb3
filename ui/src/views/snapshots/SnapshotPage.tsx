// One snapshot: its trigger, the timeline of its processes and threads, the
// flamegraph of a window dragged across it, and before/after the trigger.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { snapshotsApi, type Timeline } from './api';
import { NICE_STEPS_MS, MAX_STEPS, STATES, chooseStep, laneOrder, offsetOf, parseStep, stepParam, unixNs, formatOffset, type Lane } from './model';
import { knownWindow, rememberWindow, PROBE_STEP } from './window';
import { TimelineView, useWidth } from './TimelineView';
import { WindowPanel } from './WindowPanel';
import { BeforeAfter } from './BeforeAfter';
import { Chips } from './List';
import { formatNsTime } from './format';
import { pageReset, type SetSnapshotsState, type SnapshotsState } from './state';
import { timelinePalette } from './draw';
import { useAsync, type AsyncState } from '../../lib/async';
import { Status } from '../../components/Status';
import { formatValue } from '../../lib/format';
import { isDark, useThemeVersion } from '../../theme';

// The canvas's width before it exists, to choose the step of the first
// timeline request: the panel's less the lane labels (.tl-labels) and padding.
const LABELS_W = 220;
const PANEL_PAD = 16;
// Lanes beyond these many processes wait for a click: a busy node has
// hundreds, most of them idle, and they come least on CPU last.
const MAX_PROCS = 40;

export function SnapshotPage(p: { s: SnapshotsState; set: SetSnapshotsState }) {
  const { s, set } = p;
  const panel = useRef<HTMLDivElement>(null);
  const width = useWidth(panel) - LABELS_W - PANEL_PAD;
  const hint = knownWindow(s.id);
  const probe = useAsync(hint === undefined && !parseStep(s.step) ? `probe:${s.id}` : null,
    (sig) => snapshotsApi.timeline(s.id, { step: PROBE_STEP }, sig));
  const windowNs = hint ?? (probe.state === 'done' ? probe.data.end_ns - probe.data.start_ns : undefined);
  useEffect(() => { if (probe.state === 'done' && windowNs) rememberWindow(s.id, windowNs); }, [probe.state]);
  const stepNs = parseStep(s.step) ?? (windowNs !== undefined && width > 0 ? chooseStep(windowNs, width) : null);
  const tlKey = stepNs ? `${s.id}:${stepParam(stepNs)}` : null;
  const timeline = useAsync(tlKey, (sig) => snapshotsApi.timeline(s.id, { step: stepParam(stepNs!) }, sig));
  const tl = timeline.state === 'done' ? timeline.data : null;
  const head = tl ?? (probe.state === 'done' ? probe.data : null);
  const failed: AsyncState<unknown> = probe.state === 'error' ? probe : timeline;

  return (
    <div data-snapshot-page={s.id}>
      <div class="row">
        <button onClick={() => set({ ...pageReset, id: '' }, { push: true })}>← all snapshots</button>
        <span class="mono muted">{s.id}</span>
      </div>
      {head && <Header tl={head} />}
      <div class="panel" ref={panel}>
        {failed.state === 'error' ? <Status st={failed} what={`snapshot ${s.id}`} /> : !tl && <p class="loading">Loading the timeline of {s.id}</p>}
        {tl && <TimelinePanel tl={tl} s={s} set={set} windowNs={windowNs ?? tl.end_ns - tl.start_ns} />}
      </div>
      {/* The panels ask once the snapshot is known to exist: one that
          cannot be read gets one error, not one per panel. */}
      {head && failed.state !== 'error' && (
        <>
          <WindowPanel s={s} set={set} tl={tl} />
          <BeforeAfter s={s} set={set} tl={tl} />
        </>
      )}
    </div>
  );
}

function Header(p: { tl: Timeline }) {
  const { tl } = p;
  const t = tl.trigger;
  const cut = tl.stats.ring_start_ns > tl.start_ns;
  return (
    <div class="snap-head" data-trigger={t.kind}>
      <span class={`kind kind-${t.kind}`}>{t.kind}</span>
      <h2 data-reason>{t.reason}</h2>
      <span>at {formatNsTime(t.time_ns)}</span>
      <span class="muted">node {tl.node}</span>
      {t.pid ? <span class="muted">pid {t.pid}</span> : null}
      {t.selector && <span class="mono" title="what the trigger targeted">{t.selector}</span>}
      <Chips labels={t.labels} />
      <span class="muted">window {formatOffset(tl.start_ns - t.time_ns)} … {formatOffset(tl.end_ns - t.time_ns)}</span>
      {cut && <span class="error" style={{ margin: 0, padding: '0 6px' }}>the agent's ring began {formatOffset(tl.stats.ring_start_ns - t.time_ns)} from the trigger: nothing before</span>}
      {tl.stats.lost_samples > 0 && <span class="muted">{tl.stats.lost_samples} samples lost in the kernel</span>}
    </div>
  );
}

function TimelinePanel(p: { tl: Timeline; s: SnapshotsState; set: SetSnapshotsState; windowNs: number }) {
  const { tl, s, set } = p;
  const theme = useThemeVersion();
  const expanded = useMemo(() => new Set(s.open.split(',').filter(Boolean).map(Number)), [s.open]);
  const [all, setAll] = useState(false);
  const lanes = useMemo(() => laneOrder(tl, expanded, all ? Infinity : MAX_PROCS), [tl, expanded, all]);
  const hidden = all ? 0 : Math.max(tl.processes.length - MAX_PROCS, 0);
  const selectedLane = s.tid ? `${s.pid}/${s.tid}` : s.pid;
  const from = offsetOf(s.wfrom, tl.start_ns), to = offsetOf(s.wto, tl.start_ns);
  const win = isFinite(from) && isFinite(to) && to > from ? { from, to } : null;
  const P = useMemo(() => timelinePalette(isDark()), [theme]);
  const onLane = (l: Lane) => {
    const same = l.key === selectedLane;
    set({ pid: same ? '' : String(l.pid), tid: same || l.tid === undefined ? '' : String(l.tid), zoom: '' }, { push: true });
  };
  const onToggle = (pid: number) => {
    const next = new Set(expanded);
    if (next.has(pid)) next.delete(pid);
    else next.add(pid);
    set({ open: [...next].sort((a, b) => a - b).join(',') }, { push: true });
  };
  const steps = NICE_STEPS_MS.map((ms) => ms * 1e6).filter((ns) => p.windowNs / ns <= MAX_STEPS && p.windowNs / ns >= 4);
  return (
    <>
      <div class="row">
        <h3 style={{ margin: 0 }}>Timeline · {lanes.length} lane{lanes.length === 1 ? '' : 's'} · step {formatValue(tl.step_ns, 'nanoseconds')}</h3>
        <span class="legend" data-legend>
          <span class="swatch" style={{ background: P.cpu }} />on CPU
          {STATES.map((st) => <span key={st}><span class="swatch" style={{ background: P.states[st] }} />{st}</span>)}
          <span class="swatch" style={{ background: P.trigger, width: '3px' }} />trigger
          <span style={{ color: P.events.signal, marginLeft: '8px' }}>▼</span> signal / OOM kill
          <span style={{ color: P.events.exit, marginLeft: '8px' }}>■</span> exit
          <span style={{ color: P.events.exec, marginLeft: '8px' }}>●</span> exec
        </span>
        <span class="spacer" />
        <label class="muted">step{' '}
          <select aria-label="step" value={s.step} onChange={(e) => set({ step: e.currentTarget.value })}>
            <option value="">auto</option>
            {steps.map((ns) => <option key={ns} value={stepParam(ns)}>{formatValue(ns, 'nanoseconds')}</option>)}
          </select>
        </label>
      </div>
      {lanes.length === 0 ? <p class="empty">This snapshot has no samples, off-CPU time or events.</p> : (
        <TimelineView tl={tl} lanes={lanes} window={win} selectedLane={selectedLane} expanded={expanded}
          onLane={onLane} onToggle={onToggle}
          onSelect={(a, b) => set({ wfrom: unixNs(tl.start_ns, a), wto: unixNs(tl.start_ns, b), zoom: '' }, { push: true })} />
      )}
      {hidden > 0 && <button onClick={() => setAll(true)}>show the other {hidden} processes (least on CPU)</button>}
      <p class="muted" style={{ margin: '4px 0 0' }}>Drag across the timeline to see that window's flamegraph; click a lane's name to keep only it.</p>
    </>
  );
}
