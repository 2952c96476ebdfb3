// The snapshot endpoints (docs/api.md "Snapshots"), typed; kept next to the
// view so the shared API client stays the same for the other views.
import { apiURL, getJSON, type FlamegraphData, type Params } from '../../api';

export interface Trigger {
  kind: string;
  reason: string;
  time_ns: number;
  selector?: string;
  labels?: Record<string, string>;
  fingerprint?: string;
  pid?: number;
  id?: string;
}

export interface SnapshotSummary {
  id: string;
  node: string;
  labels?: Record<string, string>;
  trigger: Trigger;
  start_ns: number;
  end_ns: number;
  processes: number;
  size: number;
  received_ns: number;
}

export interface SnapshotList { snapshots: SnapshotSummary[]; total: number }

export interface Activity {
  samples: number[];
  cpu_ns: number[];
  off_cpu_ns: Record<string, number[]>;
  total: { samples: number; cpu_ns: number; off_cpu_ns: Record<string, number> };
}

export interface ProcessActivity extends Activity {
  pid: number;
  labels: Record<string, string>;
  threads: (Activity & { tid: number })[];
}

export interface SnapshotEvent {
  time_ns: number;
  kind: string; // exec, exit, signal, oom_kill
  pid: number;
  tid?: number;
  comm?: string;
  exit_code?: number;
  signal?: number;
  core_dumped?: boolean;
  si_code?: number;
  addr?: number;
  filename?: string;
  stack: number;
  frames?: string[];
}

export interface Timeline {
  id: string;
  node: string;
  trigger: Trigger;
  start_ns: number;
  end_ns: number;
  step_ns: number;
  steps: number;
  period_ns: number;
  processes: ProcessActivity[];
  events: SnapshotEvent[];
  stats: { ring_evicted: number; ring_start_ns: number; lost_samples: number; unknown_stacks: number; truncated?: boolean };
}

export interface FunctionChange {
  name: string;
  before_self: number;
  before_total: number;
  after_self: number;
  after_total: number;
  before_share: number; // percent
  after_share: number;
  delta: number; // percentage points
}

export interface SnapshotCompare {
  type: string;
  unit: string;
  by: 'self' | 'total';
  trigger_ns: number;
  before: { from_ns: number; to_ns: number; total: number };
  after: { from_ns: number; to_ns: number; total: number };
  count: number;
  functions: FunctionChange[];
  message?: string;
}

const base = (id: string) => `/api/v1/snapshots/${encodeURIComponent(id)}`;

export const snapshotsApi = {
  list: (p: Params, s?: AbortSignal) => getJSON<SnapshotList>('/api/v1/snapshots', p, s),
  timeline: (id: string, p: Params, s?: AbortSignal) => getJSON<Timeline>(`${base(id)}/timeline`, p, s),
  flamegraph: (id: string, p: Params, s?: AbortSignal) => getJSON<FlamegraphData>(`${base(id)}/flamegraph`, p, s),
  compare: (id: string, p: Params, s?: AbortSignal) => getJSON<SnapshotCompare>(`${base(id)}/compare`, p, s),
  pprofURL: (id: string, p: Params) => apiURL(`${base(id)}/pprof`, p),
};
