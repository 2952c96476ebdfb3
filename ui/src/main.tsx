import { render } from 'preact';
import { App } from './app';
import { applyTheme, storedTheme } from './theme';
import { testHook } from './flamegraph/hook';
import { benchFlamegraph } from './flamegraph/bench';
import './style.css';

applyTheme(storedTheme());
// make bench-ui calls this in the page, on the bundle users get.
testHook().bench = benchFlamegraph;
render(<App />, document.getElementById('app')!);
