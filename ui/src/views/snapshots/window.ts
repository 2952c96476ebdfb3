// The length of a snapshot's window, known from the list before its
// timeline is fetched, so that the first timeline request already has the
// step that fits the canvas (a link opened directly asks the server once
// with a coarse step to learn it).
const windows = new Map<string, number>();

export function rememberWindow(id: string, ns: number): void {
  windows.set(id, ns);
}

export function knownWindow(id: string): number | undefined {
  return windows.get(id);
}

/** PROBE_STEP is the coarsest step: the smallest answer that says the
 * window. */
export const PROBE_STEP = '60s';
