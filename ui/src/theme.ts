// Light and dark themes: "auto" follows prefers-color-scheme; the toggle's
// choice is a preference of this browser, not view state, so it is kept in
// localStorage rather than the URL.
import { useEffect, useState } from 'preact/hooks';

export type ThemeChoice = 'auto' | 'light' | 'dark';
const KEY = 'flightrec.theme';
const THEME_EVENT = 'flightrec:theme';

export function storedTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    if (v === 'light' || v === 'dark') return v;
  } catch {
    // storage may be disabled; auto then
  }
  return 'auto';
}

export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === 'auto') delete root.dataset.theme;
  else root.dataset.theme = choice;
  try {
    if (choice === 'auto') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    // not persisted; still applied
  }
  window.dispatchEvent(new Event(THEME_EVENT));
}

/** isDark says which palette is in effect now. */
export function isDark(): boolean {
  const t = document.documentElement.dataset.theme;
  if (t) return t === 'dark';
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
}

/** useThemeVersion re-renders canvases when the palette changes. */
export function useThemeVersion(): number {
  const [v, setV] = useState(0);
  useEffect(() => {
    const on = () => setV((x) => x + 1);
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    window.addEventListener(THEME_EVENT, on);
    mq?.addEventListener('change', on);
    return () => {
      window.removeEventListener(THEME_EVENT, on);
      mq?.removeEventListener('change', on);
    };
  }, []);
  return v;
}

export const nextTheme: Record<ThemeChoice, ThemeChoice> = { auto: 'light', light: 'dark', dark: 'auto' };
