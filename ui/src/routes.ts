// The app's views: one entry each, shown in the header in this order. A new
// view is a directory under views/ and a line here.
import type { ComponentType } from 'preact';
import { Explore } from './views/explore/Explore';
import { Compare } from './views/compare/Compare';
import { Snapshots } from './views/snapshots/Snapshots';

export interface Route {
  path: string;
  title: string;
  view: ComponentType;
}

export const routes: Route[] = [
  { path: '/explore', title: 'Explore', view: Explore },
  { path: '/compare', title: 'Compare', view: Compare },
  { path: '/snapshots', title: 'Snapshots', view: Snapshots },
];

/** routeFor picks the view of a path: "/" and unknown paths are Explore. */
export function routeFor(path: string, all: Route[] = routes): Route | undefined {
  const p = path.replace(/\/+$/, '') || '/';
  return all.find((r) => p === r.path || p.startsWith(r.path + '/'));
}
