// Before/after the trigger: each function's share of the time before it
// against its share after it (the server's /compare), and the diff
// flamegraph of the two spans. There is one span on each side, so there is
// no significance test: colours show the size of a change, not its
// certainty.
import { useMemo, useState } from 'preact/hooks';
import { snapshotsApi, type SnapshotCompare, type Timeline } from './api';
import { laneParams, type SetSnapshotsState, type SnapshotsState } from './state';
import { treeOf } from '../../api';
import { useAsync } from '../../lib/async';
import { Status } from '../../components/Status';
import { layout } from '../../flamegraph/layout';
import { Flamegraph } from '../../flamegraph/Flamegraph';
import { diffColor, mergeDiff, shareDelta } from '../../flamegraph/diff';
import { formatPercent, formatPoints, formatValue } from '../../lib/format';
import { useThemeVersion } from '../../theme';

const SPANS = ['1s', '2s', '5s', '10s', '30s', '60s'];

/** A frame whose share moved less than this is drawn neutral. */
export const NEUTRAL_POINTS = 0.01;

export function diffState(delta: number): 'more' | 'less' | 'neutral' {
  return Math.abs(delta) < NEUTRAL_POINTS ? 'neutral' : delta > 0 ? 'more' : 'less';
}

export function BeforeAfter(p: { s: SnapshotsState; set: SetSnapshotsState; tl: Timeline | null }) {
  const { s, set } = p;
  const lane = laneParams(s);
  const cq = { before: s.before, after: s.after, by: s.by, type: s.type, ...lane, limit: '30' };
  const cmp = useAsync(`${s.id}:${JSON.stringify(cq)}`, (sig) => snapshotsApi.compare(s.id, cq, sig));
  const bq = { type: s.type, from: `-${s.before}`, to: '+0s', ...lane };
  const aq = { type: s.type, from: '+0s', to: `+${s.after}`, ...lane };
  const bfg = useAsync(`${s.id}:${JSON.stringify(bq)}`, (sig) => snapshotsApi.flamegraph(s.id, bq, sig));
  const afg = useAsync(`${s.id}:${JSON.stringify(aq)}`, (sig) => snapshotsApi.flamegraph(s.id, aq, sig));
  const span = (name: 'before' | 'after') => (
    <label class="muted">{name}{' '}
      <select aria-label={name} value={s[name]} onChange={(e) => set({ [name]: e.currentTarget.value }, { push: true })}>
        {(SPANS.includes(s[name]) ? SPANS : [s[name], ...SPANS]).map((d) => <option key={d} value={d}>{d}</option>)}
      </select>
    </label>
  );
  return (
    <div class="panel" data-before-after>
      <div class="row">
        <h3 style={{ margin: 0 }}>Before / after the trigger · {s.type === 'off_cpu' ? 'off-CPU' : 'on-CPU'} time{s.pid ? ` of pid ${s.pid}${s.tid ? ` tid ${s.tid}` : ''}` : ''}</h3>
        <span class="spacer" />
        {span('before')}
        {span('after')}
        <span class="muted">shares of</span>
        <button aria-pressed={s.by === 'self'} onClick={() => set({ by: 'self' })}>self</button>
        <button aria-pressed={s.by === 'total'} onClick={() => set({ by: 'total' })}>total</button>
      </div>
      <Status st={cmp} what="the comparison" />
      {cmp.state === 'done' && <CompareTable c={cmp.data} />}
      <Status st={bfg} what="the flamegraph before" />
      <Status st={afg} what="the flamegraph after" />
      {bfg.state === 'done' && afg.state === 'done' && bfg.data.total > 0 && afg.data.total > 0 && (
        <DiffFlame before={treeOf(bfg.data)} after={treeOf(afg.data)} />
      )}
    </div>
  );
}

function CompareTable(p: { c: SnapshotCompare }) {
  const { c } = p;
  const dur = (sp: { from_ns: number; to_ns: number }) => formatValue(Math.max(sp.to_ns - sp.from_ns, 0), 'nanoseconds');
  return (
    <>
      <p class="muted" style={{ margin: '0 0 4px' }}>
        before: {dur(c.before)} with {formatValue(c.before.total, c.unit)} · after: {dur(c.after)} with {formatValue(c.after.total, c.unit)}
        {c.count > c.functions.length ? ` · largest ${c.functions.length} of ${c.count} changes` : ''}
      </p>
      {c.message && <p class="empty" data-empty>{c.message}</p>}
      {c.functions.length > 0 && (
        <div class="table-scroll">
          <table class="data" data-table="snapshot-compare">
            <thead><tr><th class="name">function</th><th>before %</th><th>after %</th><th>Δ</th><th>before</th><th>after</th></tr></thead>
            <tbody>
              {c.functions.map((f) => (
                <tr key={f.name} data-fn={f.name} data-delta={f.delta}>
                  <td class="name" title={f.name}>{f.name}</td>
                  <td>{f.before_share.toFixed(2)}%</td>
                  <td>{f.after_share.toFixed(2)}%</td>
                  <td class={f.delta > 0 ? 'delta-up' : f.delta < 0 ? 'delta-down' : ''}>{formatPoints(f.delta / 100)}</td>
                  <td>{formatValue(c.by === 'self' ? f.before_self : f.before_total, c.unit)}</td>
                  <td>{formatValue(c.by === 'self' ? f.after_self : f.after_total, c.unit)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function DiffFlame(p: { before: ReturnType<typeof treeOf>; after: ReturnType<typeof treeOf> }) {
  // Width is the sum of both sides (before scaled to after's total) so that
  // what vanished after the trigger still shows.
  const d = useMemo(() => mergeDiff(p.before, p.after, 'sum'), [p.before, p.after]);
  const L = useMemo(() => layout(d.tree), [d]);
  const states = useMemo(() => Array.from({ length: L.n }, (_, i) => (i === 0 ? 'neutral' : diffState(shareDelta(d, i)))), [L, d]);
  const theme = useThemeVersion();
  const neutral = useMemo(() => getComputedStyle(document.documentElement).getPropertyValue('--neutral').trim(), [L, theme]);
  const color = useMemo(() => (i: number, dark: boolean) => {
    const st = states[i];
    return diffColor(st === 'more' ? 'regression' : st === 'less' ? 'improvement' : 'neutral', shareDelta(d, i), dark, neutral);
  }, [states, d, neutral]);
  const stateOf = useMemo(() => (i: number) => states[i], [states]);
  const [zoom, setZoom] = useState<string[]>([]);
  return (
    <div style={{ marginTop: '8px' }}>
      <div class="row">
        <h3 style={{ margin: 0 }}>Diff flamegraph, before → after</h3>
        <span class="legend"><span class="swatch" style={{ background: 'hsl(0,80%,55%)' }} />larger share after
          <span class="swatch" style={{ background: 'hsl(214,80%,55%)' }} />smaller share after
          <span class="swatch" style={{ background: 'var(--neutral)' }} />within {NEUTRAL_POINTS * 100} point · one span a side, no significance test</span>
      </div>
      <Flamegraph id="snapshot-diff" layout={L} unit="nanoseconds" zoom={zoom} onZoom={setZoom} color={color} stateOf={stateOf}
        tooltip={(i) => (
          <div>before {formatPercent(d.baseRoot ? d.base[i] / d.baseRoot : 0)} → after {formatPercent(d.targetRoot ? d.target[i] / d.targetRoot : 0)} · {formatPoints(shareDelta(d, i))}</div>
        )} />
    </div>
  );
}
