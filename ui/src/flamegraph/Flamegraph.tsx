// The flamegraph component: a canvas drawn by render.ts over a layout
// computed once per tree. Click or Enter zooms, Escape resets, arrows move
// the focused frame, right-click or "s" opens a function's sandwich.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { findPath, matchNames, matchedValue, neighbour, pathOf, children, type Layout } from './layout';
import { canvasHeight, draw, hit, nameColor, newDrawn, type Palette } from './render';
import { framesOf, testHook } from './hook';
import { formatPercent, formatValue } from '../lib/format';
import { isDark, useThemeVersion } from '../theme';

export interface FlamegraphProps {
  id: string; // names this flamegraph in the test hook
  layout: Layout;
  unit: string;
  zoom: string[];
  onZoom: (path: string[]) => void;
  search?: string;
  inverted?: boolean;
  /** color overrides the default palette (diff flamegraphs). */
  color?: (i: number, dark: boolean) => string;
  /** stateOf names a node's state for tests (regression, neutral, ...). */
  stateOf?: (i: number) => string | undefined;
  tooltip?: (i: number) => ComponentChildren;
  onSandwich?: (name: string) => void;
  onMatched?: (share: number) => void;
}

function palette(): Palette {
  const cs = getComputedStyle(document.documentElement);
  const v = (n: string) => cs.getPropertyValue(n).trim();
  return { text: v('--frame-text'), dim: v('--dim'), match: v('--match'), focus: v('--focus'), neutral: v('--neutral') };
}

export function Flamegraph(p: FlamegraphProps) {
  const L = p.layout;
  const canvas = useRef<HTMLCanvasElement>(null);
  const wrap = useRef<HTMLDivElement>(null);
  const drawn = useMemo(() => newDrawn(L.n), [L]);
  const [width, setWidth] = useState(0);
  const [focus, setFocus] = useState(-1);
  const [hover, setHover] = useState<{ node: number; x: number; y: number } | null>(null);
  const theme = useThemeVersion();
  const zoomKey = p.zoom.join('\n');
  const zoom = useMemo(() => Math.max(findPath(L, p.zoom), 0), [L, zoomKey]);
  const match = useMemo(() => matchNames(L.names, p.search ?? ''), [L, p.search]);
  const hasMatch = useMemo(() => match.some((m) => m === 1), [match]);
  const matchedShare = useMemo(() => (hasMatch ? matchedValue(L, match) / (L.total[0] || 1) : 0), [L, match, hasMatch]);
  const colors = useMemo(() => {
    const dark = isDark();
    return p.color ? null : L.names.map((n) => nameColor(n, dark));
  }, [L, theme, p.color]);

  useEffect(() => p.onMatched?.(matchedShare), [matchedShare]);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    if (!c || width === 0) return;
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const h = canvasHeight(L);
    if (c.width !== Math.round(width * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(width * dpr);
      c.height = Math.round(h * dpr);
      c.style.height = `${h}px`;
    }
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const dark = isDark();
    const color = p.color ? (i: number) => p.color!(i, dark) : (i: number) => colors![L.name[i]];
    draw(ctx, L, { width, zoom, inverted: p.inverted, match, hasMatch, focus, color, palette: palette() }, drawn);
    const hook = testHook();
    const prev = hook.flamegraphs[p.id];
    hook.flamegraphs[p.id] = {
      frames: () => framesOf(L, drawn, p.stateOf),
      zoom: pathOf(L, zoom),
      drawMs: performance.now() - t0,
      draws: (prev?.draws ?? 0) + 1,
      matchedShare,
    };
    c.dataset.zoom = pathOf(L, zoom).join(';');
    c.dataset.draws = String(hook.flamegraphs[p.id].draws);
  }, [L, width, zoom, match, hasMatch, focus, theme, p.color, p.stateOf, colors, p.inverted]);

  useEffect(() => () => void delete testHook().flamegraphs[p.id], [p.id]);

  const zoomTo = (i: number) => p.onZoom(i <= 0 ? [] : pathOf(L, i));
  const at = (e: MouseEvent) => {
    const r = canvas.current!.getBoundingClientRect();
    return hit(L, drawn, e.clientX - r.left, e.clientY - r.top, p.inverted);
  };
  const onKey = (e: KeyboardEvent) => {
    const cur = focus >= 0 ? focus : zoom;
    let next = cur;
    const up = p.inverted ? 'ArrowDown' : 'ArrowUp';
    const down = p.inverted ? 'ArrowUp' : 'ArrowDown';
    switch (e.key) {
      case up: next = L.parent[cur] >= 0 ? L.parent[cur] : cur; break;
      case down: {
        const kids = children(L, cur).sort((a, b) => L.total[b] - L.total[a]);
        next = kids.length ? kids[0] : cur;
        break;
      }
      case 'ArrowLeft': next = neighbour(L, cur, -1); break;
      case 'ArrowRight': next = neighbour(L, cur, 1); break;
      case 'Enter': zoomTo(cur); break;
      case 'Escape': p.onZoom([]); break;
      case 's': p.onSandwich?.(L.names[L.name[cur]]); break;
      default: return;
    }
    e.preventDefault();
    setFocus(next);
  };

  const crumbs = pathOf(L, zoom);
  return (
    <div class="fg-wrap" ref={wrap}>
      {crumbs.length > 0 && (
        <div class="crumbs">
          <button onClick={() => p.onZoom([])} title="Reset zoom (Escape)">⟲ all</button>
          {crumbs.map((c, k) => (
            <button key={k} title={c} onClick={() => p.onZoom(crumbs.slice(0, k + 1))}>{c}</button>
          ))}
        </div>
      )}
      <canvas
        ref={canvas}
        tabIndex={0}
        data-flamegraph={p.id}
        aria-label="flamegraph: arrows move, Enter zooms, Escape resets, s opens the sandwich view"
        onClick={(e) => {
          const i = at(e);
          if (i >= 0) {
            setFocus(i);
            zoomTo(i);
          }
        }}
        onContextMenu={(e) => {
          const i = at(e);
          if (i > 0 && p.onSandwich) {
            e.preventDefault();
            p.onSandwich(L.names[L.name[i]]);
          }
        }}
        onMouseMove={(e) => {
          const i = at(e);
          setHover(i >= 0 ? { node: i, x: e.clientX, y: e.clientY } : null);
        }}
        onMouseLeave={() => setHover(null)}
        onKeyDown={onKey}
      />
      {hover && <Tooltip L={L} node={hover.node} x={hover.x} y={hover.y} unit={p.unit} zoom={zoom} extra={p.tooltip?.(hover.node)} />}
    </div>
  );
}

function Tooltip(t: { L: Layout; node: number; x: number; y: number; unit: string; zoom: number; extra?: ComponentChildren }) {
  const { L, node } = t;
  const left = Math.min(t.x + 14, window.innerWidth - 420);
  return (
    <div class="tooltip" style={{ left: `${left}px`, top: `${t.y + 14}px` }}>
      <div class="name">{L.names[L.name[node]]}</div>
      <div>total {formatValue(L.total[node], t.unit)} · {formatPercent(L.total[node] / (L.total[0] || 1))} of all
        {t.zoom > 0 ? ` · ${formatPercent(L.total[node] / (L.total[t.zoom] || 1))} of zoomed` : ''}</div>
      <div>self {formatValue(L.self[node], t.unit)} · {formatPercent(L.self[node] / (L.total[0] || 1))}</div>
      {t.extra}
      <div class="muted">click: zoom · right-click: sandwich</div>
    </div>
  );
}
