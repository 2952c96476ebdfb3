// The app shell: header with the views and the theme toggle, and the view
// of the current path.
import { useState } from 'preact/hooks';
import { Link, useLocation } from './router';
import { routes, routeFor } from './routes';
import { applyTheme, nextTheme, storedTheme, type ThemeChoice } from './theme';
import { auth, useAuthVersion } from './auth';
import { TokenForm } from './components/TokenForm';

function ThemeToggle() {
  const [choice, setChoice] = useState<ThemeChoice>(storedTheme());
  const label = { auto: 'Theme: auto', light: 'Theme: light', dark: 'Theme: dark' }[choice];
  return (
    <button
      class="theme-toggle"
      title="Switch between the system's theme, light and dark"
      onClick={() => {
        const n = nextTheme[choice];
        applyTheme(n);
        setChoice(n);
      }}
    >
      {label}
    </button>
  );
}

export function App() {
  const { path } = useLocation();
  const route = routeFor(path);
  const View = (route ?? routes[0]).view;
  useAuthVersion();
  return (
    <div class="app">
      <header class="topbar">
        <span class="brand">flightrec</span>
        <nav>
          {routes.map((r) => (
            <Link key={r.path} href={r.path} class={r === (route ?? routes[0]) ? 'active' : ''}>
              {r.title}
            </Link>
          ))}
        </nav>
        <span class="spacer" />
        <ThemeToggle />
      </header>
      <main>
        {route === undefined && path !== '/' ? (
          <p class="notice">No view at {path}; showing Explore.</p>
        ) : null}
        {auth.needed && <TokenForm />}
        {/* A sign-in remounts the view, so its requests run again with the token. */}
        <View key={auth.generation} />
      </main>
    </div>
  );
}
