// Times of snapshots: Unix nanoseconds shown in UTC to the millisecond,
// the resolution at which people read incident timelines.

export function formatNsTime(ns: number): string {
  return new Date(Math.floor(ns / 1e6)).toISOString().replace('T', ' ').replace('Z', ' UTC');
}
