// The top-functions table: self and total, each sortable; a click on a row
// opens the function's sandwich.
import type { TopData } from '../api';
import { formatPercent, formatValue } from '../lib/format';

export type TopSort = 'self' | 'total' | 'name';

export function sortTop(rows: TopData['functions'], by: TopSort): TopData['functions'] {
  const out = rows.slice();
  if (by === 'name') out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  else out.sort((a, b) => b[by] - a[by] || (by === 'self' ? b.total - a.total : b.self - a.self) || (a.name < b.name ? -1 : 1));
  return out;
}

export function TopTable(p: { data: TopData; sort: TopSort; onSort: (s: TopSort) => void; onPick: (name: string) => void; highlight?: string }) {
  const rows = sortTop(p.data.functions, p.sort);
  const T = p.data.total || 1;
  const th = (k: TopSort, label: string, cls = '') => (
    <th class={cls} aria-sort={p.sort === k ? (k === 'name' ? 'ascending' : 'descending') : 'none'} onClick={() => p.onSort(k)}>
      {label}{p.sort === k ? (k === 'name' ? ' ▲' : ' ▼') : ''}
    </th>
  );
  return (
    <div class="table-scroll">
      <table class="data" data-table="top">
        <thead>
          <tr>{th('name', 'function', 'name')}{th('self', 'self')}<th>self %</th>{th('total', 'total')}<th>total %</th></tr>
        </thead>
        <tbody>
          {rows.map((f) => (
            <tr key={f.name} onClick={() => p.onPick(f.name)} title="open the sandwich view" style={p.highlight === f.name ? { fontWeight: 600 } : undefined}>
              <td class="name" title={f.name}>{f.name}</td>
              <td>{formatValue(f.self, p.data.unit)}</td>
              <td>{formatPercent(f.self / T)}</td>
              <td>{formatValue(f.total, p.data.unit)}</td>
              <td>{formatPercent(f.total / T)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.data.count > p.data.functions.length && (
        <p class="muted">{p.data.functions.length} of {p.data.count} functions, by {p.sort === 'name' ? 'self' : p.sort}</p>
      )}
    </div>
  );
}
