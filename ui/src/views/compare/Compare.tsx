// Compare: a baseline and a target selection, their diff flamegraph
// coloured by significant changes only, and the diff's ranked table.
import { useMemo } from 'preact/hooks';
import { api, treeOf, type DiffChange, type DiffData, type DiffPath, type FlamegraphData } from '../../api';
import { useAsync } from '../../lib/async';
import { useUrlState } from '../../router';
import { decodePath, encodePath } from '../../url';
import { layout, pathOf } from '../../flamegraph/layout';
import { diffColor, mergeDiff, nodeState, shareDelta, significance, type WidthMode } from '../../flamegraph/diff';
import { Flamegraph } from '../../flamegraph/Flamegraph';
import { SelectorInput } from '../../components/SelectorInput';
import { TimeRange, describeRange } from '../../components/TimeRange';
import { Status } from '../../components/Status';
import { formatPercent, formatPoints, formatQ, formatValue } from '../../lib/format';
import { diffCommand } from './cli';
import { useThemeVersion } from '../../theme';

export const compareDefaults = { base: '', target: '', from: '-1h', to: 'now', bfrom: '', bto: '', width: 'target', search: '', zoom: '' };

export function Compare() {
  const [s, set] = useUrlState(compareDefaults);
  const types = useAsync(`types:${s.from}:${s.to}`, (sig) => api.types({ from: s.from, to: s.to }, sig));
  const typeNames = types.state === 'done' ? types.data.types.map((t) => t.name) : [];
  const ready = s.base !== '' && s.target !== '';
  const baseQ = { query: s.base, from: s.bfrom || s.from, to: s.bto || s.to };
  const targetQ = { query: s.target, from: s.from, to: s.to };
  const diffQ = { base: s.base, target: s.target, from: s.from, to: s.to, base_from: s.bfrom, base_to: s.bto };
  const bfg = useAsync(ready ? JSON.stringify(baseQ) : null, (sig) => api.flamegraph(baseQ, sig));
  const tfg = useAsync(ready ? JSON.stringify(targetQ) : null, (sig) => api.flamegraph(targetQ, sig));
  const diff = useAsync(ready ? JSON.stringify(diffQ) : null, (sig) => api.diff(diffQ, sig));
  const cmd = diffCommand({ server: location.origin, base: s.base, target: s.target, from: s.from, to: s.to, baseFrom: s.bfrom, baseTo: s.bto });

  return (
    <div data-view="compare">
      <div class="sides">
        <div class="side panel">
          <h3>Baseline</h3>
          <div class="row">
            <SelectorInput name="base" value={s.base} types={typeNames} from={s.bfrom || s.from} to={s.bto || s.to} placeholder={'cpu{track="baseline"}'}
              onSubmit={(v) => set({ base: v, zoom: '' }, { push: true })} />
          </div>
          <TimeRange from={s.bfrom || s.from} to={s.bto || s.to} onChange={(from, to) => set({ bfrom: from, bto: to }, { push: true })} />
          {(s.bfrom || s.bto) && <button onClick={() => set({ bfrom: '', bto: '' }, { push: true })}>same range as target</button>}
        </div>
        <div class="side panel">
          <h3>Target</h3>
          <div class="row">
            <SelectorInput name="target" value={s.target} types={typeNames} from={s.from} to={s.to} placeholder={'cpu{track="canary"}'}
              onSubmit={(v) => set({ target: v, zoom: '' }, { push: true })} />
          </div>
          <TimeRange from={s.from} to={s.to} onChange={(from, to) => set({ from, to }, { push: true })} />
        </div>
      </div>
      {!ready && <p class="empty">Enter a baseline and a target selector, e.g. cpu{'{'}service="api",track="baseline"{'}'} and cpu{'{'}service="api",track="canary"{'}'}.</p>}
      {ready && <div class="cli" data-cli>{cmd}</div>}
      <Status st={diff} what="diff" />
      <Status st={bfg} what="baseline flamegraph" />
      <Status st={tfg} what="target flamegraph" />
      {bfg.state === 'done' && tfg.state === 'done' && (
        <DiffView base={bfg.data} target={tfg.data} diff={diff.state === 'done' ? diff.data : null} s={s} set={set} />
      )}
      {diff.state === 'done' && <DiffTable d={diff.data} onPick={(fn) => set({ search: fn })} />}
    </div>
  );
}

type State = typeof compareDefaults;

function DiffView(p: { base: FlamegraphData; target: FlamegraphData; diff: DiffData | null; s: State; set: (x: Partial<State>, o?: { push?: boolean }) => void }) {
  const { s, set } = p;
  const mode = (s.width === 'sum' ? 'sum' : 'target') as WidthMode;
  const d = useMemo(() => mergeDiff(treeOf(p.base), treeOf(p.target), mode), [p.base, p.target, mode]);
  const L = useMemo(() => layout(d.tree), [d]);
  const sig = useMemo(() => significance(p.diff?.status === 'ok' ? p.diff.changes : [], p.diff as unknown as Record<string, unknown>), [p.diff]);
  const states = useMemo(() => {
    const out: string[] = new Array(L.n);
    for (let i = 0; i < L.n; i++) out[i] = nodeState(d, i, pathOf(L, i), L.names[L.name[i]], sig);
    return out;
  }, [L, d, sig]);
  // Re-read on theme changes: the neutral grey differs between light and dark.
  const theme = useThemeVersion();
  const neutral = useMemo(() => getComputedStyle(document.documentElement).getPropertyValue('--neutral').trim(), [L, theme]);
  const color = useMemo(() => (i: number, dark: boolean) => diffColor(states[i] as never, shareDelta(d, i), dark, neutral), [states, d, neutral]);
  const stateOf = useMemo(() => (i: number) => states[i], [states]);
  if (d.baseRoot === 0 && d.targetRoot === 0) {
    return <p class="empty">No profiles match {s.base} or {s.target} in {describeRange(s.from, s.to)}{p.target.message ? ` (${p.target.message})` : ''}.</p>;
  }
  return (
    <div class="panel">
      <div class="row">
        <h3 style={{ margin: 0 }}>Diff flamegraph</h3>
        <span class="legend"><span class="swatch" style={{ background: 'hsl(0,80%,55%)' }} />more in target (significant)
          <span class="swatch" style={{ background: 'hsl(214,80%,55%)' }} />less in target (significant)
          <span class="swatch" style={{ background: 'var(--neutral)' }} />no significant change</span>
        <span class="spacer" />
        <span class="muted">width:</span>
        <button aria-pressed={mode === 'target'} onClick={() => set({ width: 'target' })}>target</button>
        <button aria-pressed={mode === 'sum'} onClick={() => set({ width: 'sum' })}>both</button>
        <input type="search" name="search" placeholder="search frames" value={s.search} onInput={(e) => set({ search: e.currentTarget.value })} />
      </div>
      {p.diff === null && <p class="muted">Waiting for the diff's tests; frames are neutral until then.</p>}
      {p.diff?.status === 'inconclusive' && <p class="muted">Colours: none, the diff is inconclusive.</p>}
      {d.baseRoot === 0 && <p class="empty">The baseline is empty: {p.base.message}</p>}
      {d.targetRoot === 0 && <p class="empty">The target is empty: {p.target.message}</p>}
      <Flamegraph id="compare" layout={L} unit={p.target.unit} zoom={decodePath(s.zoom)} search={s.search} color={color} stateOf={stateOf}
        onZoom={(z) => set({ zoom: encodePath(z) }, { push: true })}
        tooltip={(i) => (
          <div>
            base {formatPercent(d.baseRoot ? d.base[i] / d.baseRoot : 0)} ({formatValue(d.base[i], p.target.unit)}) → target {formatPercent(d.targetRoot ? d.target[i] / d.targetRoot : 0)} ({formatValue(d.target[i], p.target.unit)}) · {formatPoints(shareDelta(d, i))} · {states[i] === 'neutral' ? 'not significant' : states[i]}
          </div>
        )} />
    </div>
  );
}

function DiffTable(p: { d: DiffData; onPick: (fn: string) => void }) {
  const { d } = p;
  if (d.status === 'inconclusive') return <p class="error" role="status" data-inconclusive>{d.message ?? 'inconclusive'}</p>;
  return (
    <div class="panel">
      <h3>Functions by significance: {d.base.instances} baseline and {d.target.instances} target instances ({d.instance_by}), {d.tested} tests, α = {d.alpha}</h3>
      <div class="table-scroll">
        <table class="data" data-table="diff">
          <thead><tr><th class="name">function</th><th>metric</th><th>base %</th><th>target %</th><th>Δ</th><th>95% CI</th><th>q</th><th>verdict</th></tr></thead>
          <tbody>
            {d.changes.map((c, k) => (
              <tr key={k} onClick={() => p.onPick(c.function)} title="search this function in the flamegraph">
                <td class="name" title={c.function}>{c.function}</td>
                <td>{c.metric}{c.same_as_self ? ' (= self)' : ''}</td>
                <StatCells c={c} />
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {d.paths && d.paths.length > 0 && <PathTable paths={d.paths} />}
    </div>
  );
}

// StatCells are the test's columns, alike for function and call-path rows.
function StatCells({ c }: { c: DiffPath | DiffChange }) {
  return (
    <>
      <td>{formatPercent(c.base_share)}</td>
      <td>{formatPercent(c.target_share)}</td>
      <td>{formatPoints(c.delta)}</td>
      <td>[{formatPoints(c.ci_low)}, {formatPoints(c.ci_high)}]</td>
      <td>{c.constant ? '–' : formatQ(c.q)}</td>
      <td class={`verdict-${c.verdict}`}>{c.verdict.replace('_', ' ')}</td>
    </>
  );
}

const PATH_ROWS = 30;

function PathTable(p: { paths: DiffPath[] }) {
  return (
    <>
      <h3 style={{ marginTop: '12px' }}>Call paths{p.paths.length > PATH_ROWS ? ` (first ${PATH_ROWS} of ${p.paths.length})` : ''}</h3>
      <div class="table-scroll">
        <table class="data" data-table="paths">
          <thead><tr><th class="name">call path</th><th>base %</th><th>target %</th><th>Δ</th><th>95% CI</th><th>q</th><th>verdict</th></tr></thead>
          <tbody>
            {p.paths.slice(0, PATH_ROWS).map((c, k) => (
              <tr key={k}>
                <td class="name" title={c.frames.join(' → ')}>{c.frames.join(' → ')}</td>
                <StatCells c={c} />
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
