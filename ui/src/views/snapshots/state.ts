// The Snapshots view's URL state: the list's filter, and one snapshot's
// window, lane, type, step and comparison.
export const snapshotsDefaults = {
  id: '', query: '', from: '-7d', to: 'now', // the list
  wfrom: '', wto: '', pid: '', tid: '', type: 'cpu', step: '', open: '', zoom: '', // a snapshot's window
  before: '10s', after: '10s', by: 'self', // its before/after comparison
};

export type SnapshotsState = typeof snapshotsDefaults;
export type SetSnapshotsState = (patch: Partial<SnapshotsState>, opts?: { push?: boolean }) => void;

/** pageReset is what opening another snapshot clears: its window, lane
 * and zoom mean nothing for a different snapshot. */
export const pageReset: Partial<SnapshotsState> = { wfrom: '', wto: '', pid: '', tid: '', step: '', open: '', zoom: '' };

/** laneParams are the pid and tid of the selected lane, for the API. */
export function laneParams(s: SnapshotsState): { pid?: string; tid?: string } {
  return { pid: s.pid || undefined, tid: s.tid || undefined };
}
