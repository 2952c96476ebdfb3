// The list of snapshots, newest trigger first, filtered by a label
// selector and the trigger's time.
import { snapshotsApi, type SnapshotSummary } from './api';
import { useAsync } from '../../lib/async';
import { Status } from '../../components/Status';
import { TimeRange, describeRange } from '../../components/TimeRange';
import { formatValue } from '../../lib/format';
import { formatNsTime } from './format';

export interface ListProps {
  query: string;
  from: string;
  to: string;
  onFilter: (patch: { query?: string; from?: string; to?: string }) => void;
  onOpen: (s: SnapshotSummary) => void;
}

export function SnapshotList(p: ListProps) {
  const q = { query: p.query, from: p.from, to: p.to, limit: '500' };
  const list = useAsync(JSON.stringify(q), (sig) => snapshotsApi.list(q, sig));
  return (
    <div>
      <div class="row">
        <form class="grow" style={{ display: 'flex' }} onSubmit={(e) => {
          e.preventDefault();
          const v = (e.currentTarget.elements.namedItem('query') as HTMLInputElement).value.trim();
          p.onFilter({ query: v });
        }}>
          <input class="grow mono" name="query" defaultValue={p.query} key={p.query} spellcheck={false} autocomplete="off"
            placeholder={'{service="api",pod=~"api-.*"} and Enter: labels of a process or of the trigger'} />
        </form>
        <TimeRange from={p.from} to={p.to} onChange={(from, to) => p.onFilter({ from, to })} />
      </div>
      <Status st={list} what="snapshots" />
      {list.state === 'done' && list.data.snapshots.length === 0 && (
        <p class="empty" data-empty>
          {p.query
            ? `No snapshots match ${p.query} with a trigger in ${describeRange(p.from, p.to)}.`
            : `No snapshots with a trigger in ${describeRange(p.from, p.to)}: agents upload one when a trigger fires (flightrec trigger, an alert, a crash).`}
        </p>
      )}
      {list.state === 'done' && list.data.snapshots.length > 0 && (
        <div class="panel">
          <h3>{list.data.total} snapshot{list.data.total === 1 ? '' : 's'}{list.data.total > list.data.snapshots.length ? `, newest ${list.data.snapshots.length} shown` : ''}</h3>
          <div class="table-scroll">
            <table class="data snaps" data-table="snapshots">
              <thead><tr><th class="left">trigger time</th><th class="left">kind</th><th class="left">reason</th><th class="left">node</th><th class="left">labels</th><th>window</th><th>processes</th><th>size</th></tr></thead>
              <tbody>
                {list.data.snapshots.map((s) => <Row key={s.id} s={s} onOpen={p.onOpen} />)}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </div>
  );
}

function Row(p: { s: SnapshotSummary; onOpen: (s: SnapshotSummary) => void }) {
  const { s } = p;
  const labels = { ...s.labels, ...s.trigger.labels };
  return (
    <tr data-snapshot={s.id} tabIndex={0} onClick={() => p.onOpen(s)} onKeyDown={(e) => e.key === 'Enter' && p.onOpen(s)} title={`open ${s.id}`}>
      <td class="left">{formatNsTime(s.trigger.time_ns)}</td>
      <td class="left"><span class={`kind kind-${s.trigger.kind}`}>{s.trigger.kind}</span></td>
      <td class="reason" title={s.trigger.reason}>{s.trigger.reason}</td>
      <td class="left">{s.node}</td>
      <td class="left"><Chips labels={labels} /></td>
      <td>{formatValue(s.end_ns - s.start_ns, 'nanoseconds')}</td>
      <td>{s.processes}</td>
      <td>{formatValue(s.size, 'bytes')}</td>
    </tr>
  );
}

export function Chips(p: { labels?: Record<string, string> }) {
  const keys = Object.keys(p.labels ?? {}).sort();
  return <span class="chips">{keys.map((k) => <span key={k} class="chip">{k}={p.labels![k]}</span>)}</span>;
}
