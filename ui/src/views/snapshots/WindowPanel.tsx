// The flamegraph of the selected window (the whole snapshot until one is
// dragged), of on-CPU or off-CPU time, of all processes or the selected
// lane, with its pprof download.
import { useMemo } from 'preact/hooks';
import { snapshotsApi, type Timeline } from './api';
import { formatOffset, offsetOf } from './model';
import { laneParams, type SetSnapshotsState, type SnapshotsState } from './state';
import { treeOf } from '../../api';
import { useAsync } from '../../lib/async';
import { Status } from '../../components/Status';
import { DownloadLink } from '../../components/DownloadLink';
import { layout } from '../../flamegraph/layout';
import { Flamegraph } from '../../flamegraph/Flamegraph';
import { decodePath, encodePath } from '../../url';
import { formatValue } from '../../lib/format';

export function WindowPanel(p: { s: SnapshotsState; set: SetSnapshotsState; tl: Timeline | null }) {
  const { s, set, tl } = p;
  const params = { type: s.type, from: s.wfrom || undefined, to: s.wto || undefined, ...laneParams(s) };
  const fg = useAsync(`${s.id}:${JSON.stringify(params)}`, (sig) => snapshotsApi.flamegraph(s.id, params, sig));
  const L = useMemo(() => (fg.state === 'done' && fg.data.total > 0 ? layout(treeOf(fg.data)) : null), [fg]);
  const what = s.type === 'off_cpu' ? 'off-CPU time' : 'on-CPU time';
  const lane = s.pid ? ` of pid ${s.pid}${s.tid ? ` tid ${s.tid}` : ''}` : '';
  return (
    <div class="panel" data-window-panel>
      <div class="row">
        <h3 style={{ margin: 0 }} data-window-title>
          Flamegraph of {what}{lane} · {windowText(s, tl)}{L ? ` · ${formatValue(L.total[0], 'nanoseconds')}` : ''}
        </h3>
        <span class="spacer" />
        <button aria-pressed={s.type === 'cpu'} onClick={() => set({ type: 'cpu', zoom: '' }, { push: true })}>on-CPU</button>
        <button aria-pressed={s.type === 'off_cpu'} onClick={() => set({ type: 'off_cpu', zoom: '' }, { push: true })}>off-CPU</button>
        {s.pid && <button onClick={() => set({ pid: '', tid: '', zoom: '' }, { push: true })} title="show every process">all processes</button>}
        {s.wfrom && <button onClick={() => set({ wfrom: '', wto: '', zoom: '' }, { push: true })}>whole window</button>}
        <DownloadLink href={snapshotsApi.pprofURL(s.id, params)} name={`${s.id}.${s.type}.pb.gz`} data-pprof>Download pprof</DownloadLink>
      </div>
      <Status st={fg} what="the window's flamegraph" />
      {fg.state === 'done' && !L && <p class="empty" data-empty>No {what}{lane} in {windowText(s, tl)}{fg.data.message ? ` (${fg.data.message})` : ''}.</p>}
      {L && fg.state === 'done' && (
        <Flamegraph id="snapshot" layout={L} unit={fg.data.unit} zoom={decodePath(s.zoom)}
          onZoom={(z) => set({ zoom: encodePath(z) }, { push: true })} />
      )}
    </div>
  );
}

/** windowText says the window relative to the trigger: "+0.35s … +1.2s". */
function windowText(s: SnapshotsState, tl: Timeline | null): string {
  if (!s.wfrom || !s.wto) return 'the whole snapshot';
  if (!tl) return `${s.wfrom} … ${s.wto} ns`;
  const a = offsetOf(s.wfrom, tl.trigger.time_ns), b = offsetOf(s.wto, tl.trigger.time_ns);
  return `${formatOffset(a)} … ${formatOffset(b)} from the trigger (${formatValue(b - a, 'nanoseconds')})`;
}
