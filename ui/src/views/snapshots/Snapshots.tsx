// Snapshots: the list of flight-recorder snapshots and, with an id in the
// URL, one snapshot's page. All state is in the query string.
import { useUrlState } from '../../router';
import { SnapshotList } from './List';
import { SnapshotPage } from './SnapshotPage';
import { rememberWindow } from './window';
import { pageReset, snapshotsDefaults } from './state';
import './snapshots.css';

export { snapshotsDefaults };

export function Snapshots() {
  const [s, set] = useUrlState(snapshotsDefaults);
  return (
    <div data-view="snapshots">
      {s.id === '' ? (
        <SnapshotList query={s.query} from={s.from} to={s.to}
          onFilter={(patch) => set(patch, { push: true })}
          onOpen={(snap) => {
            rememberWindow(snap.id, snap.end_ns - snap.start_ns);
            set({ ...pageReset, id: snap.id }, { push: true });
          }} />
      ) : (
        <SnapshotPage s={s} set={set} />
      )}
    </div>
  );
}
