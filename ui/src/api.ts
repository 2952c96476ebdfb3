// The server's JSON API (docs/api.md): typed fetchers that turn error bodies
// into Errors carrying the server's own message.
import { auth } from './auth';

export interface FlamegraphData {
  type: string;
  unit: string;
  names: string[];
  total: number;
  nodes: { name: number[]; parent: number[]; self: number[]; total: number[] };
  truncated: boolean;
  message?: string;
}

export interface TopFunction { name: string; self: number; total: number }
export interface TopData { type: string; unit: string; total: number; count: number; functions: TopFunction[]; message?: string }

export interface SeriesData {
  type: string;
  unit: string;
  from_ms: number;
  to_ms: number;
  step_ms: number;
  series: { labels: Record<string, string>; points: [number, number][] }[];
  message?: string;
}

export interface ProfileType { name: string; sample_type: string; sample_unit: string }
export interface TypesData { types: ProfileType[]; message?: string }
export interface LabelsData { names: string[]; message?: string }
export interface LabelValuesData { name: string; values: string[]; message?: string }

export type Verdict = 'regression' | 'improvement' | 'no_evidence';

export interface DiffChange {
  function: string;
  metric: 'self' | 'total';
  base_share: number;
  target_share: number;
  delta: number;
  ratio: number | null;
  ci_low: number;
  ci_high: number;
  p: number;
  q: number;
  mde: number;
  verdict: Verdict;
  same_as_self?: boolean;
  constant?: boolean;
}

/** A call path's test: the stacks starting with frames (root first). */
export interface DiffPath {
  frames: string[];
  base_share: number;
  target_share: number;
  delta: number;
  ci_low: number;
  ci_high: number;
  q: number;
  verdict: Verdict;
  same_as?: string;
  constant?: boolean;
}

export interface DiffSide { selector: string; from_ms: number; to_ms: number; instances: number; total: number; labels: string[] }

export interface DiffData {
  type: string;
  unit: string;
  status: 'ok' | 'inconclusive';
  message?: string;
  instance_by: string;
  base: DiffSide;
  target: DiffSide;
  alpha: number;
  tested: number;
  changes: DiffChange[];
  paths?: DiffPath[];
}

/** ApiError is a non-2xx answer; message is the server's own. */
export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export type Params = Record<string, string | undefined>;

export function apiURL(path: string, params: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function getJSON<T>(path: string, params: Params, signal?: AbortSignal): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(apiURL(path, params), { signal, headers: { Accept: 'application/json', ...auth.headers() } });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the server: ${(e as Error).message}`);
  }
  const text = await resp.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(resp.status, `${path}: ${resp.status} ${resp.statusText}: ${text.slice(0, 200)}`);
  }
  if (resp.status === 401) auth.refused(body?.error ?? 'a token is required');
  if (!resp.ok) throw new ApiError(resp.status, body?.error ?? `${path}: ${resp.status}`);
  return body as T;
}

export const api = {
  types: (p: Params, s?: AbortSignal) => getJSON<TypesData>('/api/v1/types', p, s),
  labels: (p: Params, s?: AbortSignal) => getJSON<LabelsData>('/api/v1/labels', p, s),
  labelValues: (name: string, p: Params, s?: AbortSignal) =>
    getJSON<LabelValuesData>(`/api/v1/labels/${encodeURIComponent(name)}/values`, p, s),
  flamegraph: (p: Params, s?: AbortSignal) => getJSON<FlamegraphData>('/api/v1/flamegraph', p, s),
  top: (p: Params, s?: AbortSignal) => getJSON<TopData>('/api/v1/top', p, s),
  series: (p: Params, s?: AbortSignal) => getJSON<SeriesData>('/api/v1/series', p, s),
  diff: (p: Params, s?: AbortSignal) => getJSON<DiffData>('/api/v1/diff', p, s),
};

/** treeOf is a flamegraph answer as the call tree the layout reads. */
export function treeOf(fg: FlamegraphData) {
  return { names: fg.names, ...fg.nodes };
}
