// Explore: one selection's series over time, flamegraph, top table and
// sandwich view, all in the URL.
import { useEffect, useMemo } from 'preact/hooks';
import { api, apiURL, treeOf } from '../../api';
import { useAsync } from '../../lib/async';
import { useUrlState, Link } from '../../router';
import { encodePath, decodePath } from '../../url';
import { layout, matchNames, matchedValue, type Layout } from '../../flamegraph/layout';
import { sandwich } from '../../flamegraph/sandwich';
import { Flamegraph } from '../../flamegraph/Flamegraph';
import { SelectorInput } from '../../components/SelectorInput';
import { typeOf } from '../../components/completion';
import { TimeRange, describeRange } from '../../components/TimeRange';
import { SeriesChart } from '../../components/SeriesChart';
import { TopTable, type TopSort } from '../../components/TopTable';
import { Status } from '../../components/Status';
import { DownloadLink } from '../../components/DownloadLink';
import { formatPercent, formatValue } from '../../lib/format';

export const exploreDefaults = { query: '', from: '-1h', to: 'now', search: '', zoom: '', sort: 'self', fn: '' };

/** withType replaces or sets a selector's profile type. */
export function withType(selector: string, type: string): string {
  const t = typeOf(selector);
  const rest = selector.trim().slice(t.length).trim();
  return type + (rest.startsWith('{') ? rest : '{}');
}

export function Explore() {
  const [s, set] = useUrlState(exploreDefaults);
  const range = { from: s.from, to: s.to };
  const types = useAsync(`types:${s.from}:${s.to}`, (sig) => api.types(range, sig));
  const typeNames = types.state === 'done' ? types.data.types.map((t) => t.name) : [];
  // With no selector yet, show everything of the default type (or the
  // first type with data) rather than an empty page.
  const firstType = typeNames.includes('cpu') ? 'cpu' : typeNames[0];
  useEffect(() => {
    if (!s.query && firstType) set({ query: `${firstType}{}` });
  }, [s.query, firstType]);
  const q = s.query ? { query: s.query, ...range } : null;
  const key = q && JSON.stringify(q);
  const fg = useAsync(key, (sig) => api.flamegraph(q!, sig));
  const top = useAsync(key && key + s.sort, (sig) => api.top({ ...q!, limit: '500', order: s.sort === 'total' ? 'total' : 'self' }, sig));
  const series = useAsync(key, (sig) => api.series(q!, sig));
  const L = useMemo(() => (fg.state === 'done' && fg.data.total > 0 ? layout(treeOf(fg.data)) : null), [fg]);
  // The server's message names the absolute range; keep only its hint
  // (which types do have data) after ours, which says the range as chosen.
  const empty = (msg?: string) => {
    const hint = msg?.split('; ').slice(1).join('; ');
    return `No profiles match ${s.query} in ${describeRange(s.from, s.to)}${hint ? `; ${hint}` : ''}.`;
  };

  return (
    <div data-view="explore">
      <div class="row">
        <select aria-label="profile type" value={typeOf(s.query)} onChange={(e) => set({ query: withType(s.query, e.currentTarget.value), zoom: '', fn: '' }, { push: true })}>
          {!typeNames.includes(typeOf(s.query)) && <option value={typeOf(s.query)}>{typeOf(s.query) || 'type'}</option>}
          {typeNames.map((t) => <option key={t} value={t}>{t}</option>)}
        </select>
        <SelectorInput value={s.query} types={typeNames} from={s.from} to={s.to} onSubmit={(v) => set({ query: v, zoom: '', fn: '' }, { push: true })} />
        <TimeRange from={s.from} to={s.to} onChange={(from, to) => set({ from, to }, { push: true })} />
      </div>
      {types.state === 'error' && <p class="error">{types.error}</p>}
      {types.state === 'done' && types.data.types.length === 0 && <p class="empty">{types.data.message ?? 'No profiles in the range.'} Send some with flightrec-agent or `flightrec upload`.</p>}
      {fg.state !== 'error' && <Status st={series} what="series" />}
      {series.state === 'done' && series.data.series.length > 0 && (
        <div class="panel"><SeriesChart data={series.data} onSelect={(a, b) => set({ from: new Date(a).toISOString(), to: new Date(b).toISOString() }, { push: true })} /></div>
      )}
      <div class="row">
        <input class="grow" type="search" name="search" placeholder="search frames (text or /regex/)" value={s.search}
          onInput={(e) => set({ search: e.currentTarget.value })} />
        {L && s.search && <span data-matched>{formatPercent(matchedShareOf(L, s.search))} of total in matching frames</span>}
        {q && <DownloadLink href={apiURL('/api/v1/pprof', q)} name="profile.pb.gz">Download pprof</DownloadLink>}
        {q && <Link href={`/compare?${new URLSearchParams({ base: s.query, target: s.query, from: s.from, to: s.to })}`}>Compare…</Link>}
      </div>
      <Status st={fg} what="flamegraph" />
      {fg.state === 'done' && !L && <p class="empty">{empty(fg.data.message)}</p>}
      {L && fg.state === 'done' && s.fn && <SandwichPanel L={L} fn={s.fn} unit={fg.data.unit} search={s.search} onClose={() => set({ fn: '' }, { push: true })} />}
      {L && fg.state === 'done' && (
        <div class="split">
          <div class="panel">
            <h3>Flamegraph · {formatValue(L.total[0], fg.data.unit)} total{fg.data.truncated ? ' · small frames folded into "other"' : ''}</h3>
            <Flamegraph id="explore" layout={L} unit={fg.data.unit} zoom={decodePath(s.zoom)} search={s.search}
              onZoom={(p) => set({ zoom: encodePath(p) }, { push: true })} onSandwich={(fn) => set({ fn }, { push: true })} />
          </div>
          <div class="panel">
            <h3>Top functions</h3>
            <Status st={top} what="top functions" />
            {top.state === 'done' && <TopTable data={top.data} sort={s.sort as TopSort} onSort={(sort) => set({ sort })} onPick={(fn) => set({ fn }, { push: true })} highlight={s.fn} />}
          </div>
        </div>
      )}
    </div>
  );
}

function matchedShareOf(L: Layout, search: string): number {
  return matchedValue(L, matchNames(L.names, search)) / (L.total[0] || 1);
}

function SandwichPanel(p: { L: Layout; fn: string; unit: string; search: string; onClose: () => void }) {
  const sw = useMemo(() => sandwich(p.L, p.fn), [p.L, p.fn]);
  const callers = useMemo(() => layout(sw.callers), [sw]);
  const callees = useMemo(() => layout(sw.callees), [sw]);
  return (
    <div class="panel" data-sandwich={p.fn}>
      <div class="row">
        <h3 style={{ margin: 0 }}>Sandwich: <span class="mono">{p.fn}</span> · {formatValue(sw.total, p.unit)} ({formatPercent(sw.total / (p.L.total[0] || 1))})</h3>
        <span class="spacer" />
        <button onClick={p.onClose}>Close</button>
      </div>
      {sw.total === 0 ? <p class="empty">{p.fn} is not in this flamegraph.</p> : (
        <>
          <div class="muted">callers ↑</div>
          <Flamegraph id="callers" layout={callers} unit={p.unit} zoom={[]} inverted search={p.search} onZoom={() => {}} />
          <div class="muted">callees ↓</div>
          <Flamegraph id="callees" layout={callees} unit={p.unit} zoom={[]} search={p.search} onZoom={() => {}} />
        </>
      )}
    </div>
  );
}
