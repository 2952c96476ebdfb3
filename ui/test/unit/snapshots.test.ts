import { describe, expect, it } from 'vitest';
import {
  chooseStep, eventSummary, laneOrder, laneScale, markerAt, nsToX, offsetOf, parseStep, placeEvents, selectWindow,
  stepParam, stepX, unixNs, xToNs, formatOffset, MAX_STEPS,
} from '../../src/views/snapshots/model';
import { axisTicks } from '../../src/views/snapshots/draw';
import { diffState } from '../../src/views/snapshots/BeforeAfter';
import type { Activity, SnapshotEvent, Timeline } from '../../src/views/snapshots/api';

const MS = 1e6;

function act(cpu: number[], off: Record<string, number[]> = {}): Activity {
  return { samples: cpu.map((c) => c / (10 * MS)), cpu_ns: cpu, off_cpu_ns: off, total: { samples: 0, cpu_ns: cpu.reduce((a, b) => a + b, 0), off_cpu_ns: {} } };
}

// The shape of server/snapshots/snaptest: a 2 s window triggered 1 s in,
// processes 100 (threads 101, 102) and 200 (thread 201) in the server's
// order (most on-CPU first), an exec of 200, a SIGSEGV of 100/101 and its
// exit.
const START = 1795632940000000000;
function timeline(trigger: Partial<Timeline['trigger']> = {}, events?: SnapshotEvent[]): Timeline {
  const z = () => new Array(4).fill(0);
  return {
    id: 's1', node: 'n1', trigger: { kind: 'alert', reason: 'r', time_ns: START + 1000 * MS, ...trigger },
    start_ns: START, end_ns: START + 2000 * MS, step_ns: 500 * MS, steps: 4, period_ns: 10 * MS,
    processes: [
      { pid: 100, labels: { service: 'api' }, ...act([40 * MS, 0, 30 * MS, 0]), threads: [{ tid: 101, ...act([40 * MS, 0, 20 * MS, 0]) }, { tid: 102, ...act([0, 0, 10 * MS, 0]) }] },
      { pid: 200, labels: { service: 'db' }, ...act([10 * MS, 0, 0, 0]), threads: [{ tid: 201, ...act([10 * MS, 0, 0, 0]) }] },
    ],
    events: events ?? [
      { time_ns: START + 10 * MS, kind: 'exec', pid: 200, tid: 200, comm: 'db', filename: '/usr/bin/db', stack: -1 },
      { time_ns: START + 1500 * MS, kind: 'signal', pid: 100, tid: 101, comm: 'api', signal: 11, si_code: 1, addr: 16, stack: 0, frames: ['main.parse', 'main.handle', 'main.main'] },
      { time_ns: START + 1600 * MS, kind: 'exit', pid: 100, tid: 100, comm: 'api', signal: 11, core_dumped: true, stack: -1 },
    ],
    stats: { ring_evicted: 0, ring_start_ns: START - 5000 * MS, lost_samples: 0, unknown_stacks: 1 },
  };
}

describe('chooseStep', () => {
  it('gives each step at least 3 px, rounded up to a nice step', () => {
    expect(chooseStep(2000 * MS, 1100)).toBe(10 * MS); // 5.45 ms wanted
    expect(chooseStep(70000 * MS, 1160)).toBe(200 * MS); // 181 ms wanted
    expect(chooseStep(60000 * MS, 1200)).toBe(200 * MS); // exactly 150 ms wanted → the next nice one
    expect(chooseStep(1000 * MS, 1000)).toBe(5 * MS); // 3 ms
  });
  it('never asks for more steps than the server serves', () => {
    const step = chooseStep(60000 * MS, 100000);
    expect(60000 * MS / step).toBeLessThanOrEqual(MAX_STEPS);
    expect(step).toBe(10 * MS);
  });
  it('goes past the nice list for very long windows', () => {
    expect(chooseStep(3600e9 * 10, 100)).toBe(18 * 60e9); // 1080 s wanted
  });
});

describe('steps as durations', () => {
  it('writes and reads the API form', () => {
    expect(stepParam(100 * MS)).toBe('100ms');
    expect(stepParam(2e9)).toBe('2s');
    expect(parseStep('100ms')).toBe(100 * MS);
    expect(parseStep('1.5s')).toBe(1500 * MS);
    expect(parseStep('1m')).toBe(60e9);
    expect(parseStep('0.5ms')).toBeNull(); // under the server's 1 ms
    expect(parseStep('fast')).toBeNull();
    expect(parseStep('')).toBeNull();
  });
});

describe('time and x', () => {
  const s = { windowNs: 2000 * MS, width: 800 };
  it('maps offsets linearly and clamps x back into the window', () => {
    expect(nsToX(500 * MS, s)).toBe(200);
    expect(xToNs(200, s)).toBe(500 * MS);
    expect(xToNs(-5, s)).toBe(0);
    expect(xToNs(900, s)).toBe(2000 * MS);
  });
  it('cuts the last step at the window end', () => {
    expect(stepX(1, 500 * MS, s)).toEqual([200, 400]);
    expect(stepX(1, 1500 * MS, s)).toEqual([600, 800]);
  });
});

describe('selectWindow', () => {
  const s = { windowNs: 2000 * MS, width: 1000 };
  it('snaps a drag outwards to whole steps, either direction', () => {
    // x 503..990 is 1006..1980 ms; 10 ms steps → [1000, 1980)
    expect(selectWindow(503, 990, 10 * MS, s)).toEqual({ from: 1000 * MS, to: 1980 * MS });
    expect(selectWindow(990, 503, 10 * MS, s)).toEqual({ from: 1000 * MS, to: 1980 * MS });
    expect(selectWindow(503, 990, 100 * MS, s)).toEqual({ from: 1000 * MS, to: 2000 * MS });
  });
  it('keeps the window inside the snapshot', () => {
    expect(selectWindow(-50, 1200, 300 * MS, s)).toEqual({ from: 0, to: 2000 * MS });
  });
  it('treats a tiny drag as a click', () => {
    expect(selectWindow(400, 402, 10 * MS, s)).toBeNull();
  });
});

describe('Unix nanoseconds', () => {
  it('adds offsets exactly past 2^53', () => {
    expect(unixNs(START, 1000 * MS)).toBe('1795632941000000000');
    expect(unixNs(START, 1)).toBe('1795632940000000001');
    expect(offsetOf('1795632941500000000', START)).toBe(1500 * MS);
    expect(offsetOf('', START)).toBeNaN();
    expect(offsetOf('-5s', START)).toBeNaN();
  });
});

describe('laneOrder', () => {
  it('keeps the server order when nothing stands out, but crashed processes go first', () => {
    const tl = timeline();
    // 100 crashed (signal, exit by signal): first even if it were not the busiest
    tl.processes.reverse();
    expect(laneOrder(tl, new Set()).map((l) => l.key)).toEqual(['100', '200']);
  });
  it('puts the trigger process first', () => {
    expect(laneOrder(timeline({ pid: 200 }), new Set()).map((l) => l.key)).toEqual(['200', '100']);
  });
  it('expands threads under their process, in the server order', () => {
    const lanes = laneOrder(timeline(), new Set([100]));
    expect(lanes.map((l) => l.key)).toEqual(['100', '100/101', '100/102', '200']);
    expect(lanes[0].threads).toBe(2);
    expect(lanes[1].tid).toBe(101);
  });
  it('keeps the first processes when told to, the crashed one among them', () => {
    const tl = timeline();
    tl.processes.reverse();
    expect(laneOrder(tl, new Set([100, 200]), 1).map((l) => l.key)).toEqual(['100', '100/101', '100/102']);
  });
  it('gives processes seen only in events an empty lane', () => {
    const tl = timeline({}, [{ time_ns: START + 5 * MS, kind: 'oom_kill', pid: 300, comm: 'hog', stack: -1 }]);
    const lanes = laneOrder(tl, new Set());
    expect(lanes.map((l) => l.key)).toEqual(['100', '200', '300']);
    expect(lanes[2].activity).toBeNull();
    expect(laneOrder(tl, new Set([100]), 2).map((l) => l.key)).toEqual(['100', '100/101', '100/102', '200']);
    expect(laneOrder(tl, new Set([100]), 3).map((l) => l.key)).toEqual(['100', '100/101', '100/102', '200', '300']);
  });
});

describe('placeEvents', () => {
  const s = { windowNs: 2000 * MS, width: 1000 };
  it('puts events on their process lane at their time', () => {
    const tl = timeline();
    const lanes = laneOrder(tl, new Set());
    const m = placeEvents(tl, lanes, s);
    expect(m.map((x) => [x.event.kind, lanes[x.lane].key])).toEqual([['exec', '200'], ['signal', '100'], ['exit', '100']]);
    // Unix ns parsed from JSON are off by up to 128 ns: well under a pixel.
    expect(m[0].x).toBeCloseTo(5, 3);
    expect(m[1].x).toBeCloseTo(750, 3);
    expect(m[2].x).toBeCloseTo(800, 3);
  });
  it('repeats them on a shown thread lane', () => {
    const tl = timeline();
    const lanes = laneOrder(tl, new Set([100]));
    const m = placeEvents(tl, lanes, s).filter((x) => x.event.kind === 'signal');
    expect(m.map((x) => lanes[x.lane].key)).toEqual(['100', '100/101']);
  });
  it('drops events outside the window', () => {
    const tl = timeline({}, [{ time_ns: START - MS, kind: 'exec', pid: 100, stack: -1 }, { time_ns: START + 2001 * MS, kind: 'exec', pid: 100, stack: -1 }]);
    expect(placeEvents(tl, laneOrder(tl, new Set()), s)).toEqual([]);
  });
  it('finds the nearest marker of a lane for the tooltip', () => {
    const tl = timeline();
    const lanes = laneOrder(tl, new Set());
    const m = placeEvents(tl, lanes, s);
    expect(markerAt(m, 775, 0)).toBeNull(); // 25 px from either
    expect(markerAt(m, 777, 0, 30)?.event.kind).toBe('exit'); // nearer of two within reach
    expect(markerAt(m, 754, 0)?.event.kind).toBe('signal');
    expect(markerAt(m, 797, 0)?.event.kind).toBe('exit');
    expect(markerAt(m, 750, 1)).toBeNull(); // the signal is not on pid 200's lane
  });
});

describe('laneScale', () => {
  it('is one step, or the busiest step when threads add up to more', () => {
    expect(laneScale(act([40 * MS, 0]), 500 * MS)).toBe(500 * MS);
    expect(laneScale(act([300 * MS, 0], { blocked: [400 * MS, 0] }), 500 * MS)).toBe(700 * MS);
  });
});

describe('texts', () => {
  it('says what an event was', () => {
    const [exec, sig, exit] = timeline().events;
    expect(eventSummary(sig)).toBe('signal SIGSEGV (11) si_code 1 addr 0x10 · api pid 100 tid 101');
    expect(eventSummary(exit)).toBe('exit: killed by SIGSEGV (11), core dumped · api pid 100');
    expect(eventSummary(exec)).toBe('exec /usr/bin/db · db pid 200');
    expect(eventSummary({ time_ns: 0, kind: 'exit', pid: 5, comm: 'x', exit_code: 3, stack: -1 })).toBe('exit: code 3 · x pid 5');
  });
  it('prints offsets from the trigger', () => {
    expect(formatOffset(1250 * MS)).toBe('+1.25s');
    expect(formatOffset(-300 * MS)).toBe('-300ms');
    expect(formatOffset(0)).toBe('+0ms');
  });
  it('puts axis ticks on round offsets from the trigger', () => {
    // 2 s over 800 px: a tick about every 250 ms → 500 ms, one on the trigger
    expect(axisTicks({ windowNs: 2000 * MS, width: 800 }, 1000 * MS)).toEqual([0, 500 * MS, 1000 * MS, 1500 * MS, 2000 * MS]);
    // trigger 700 ms in: ticks at 200, 700, 1200, 1700 ms
    expect(axisTicks({ windowNs: 2000 * MS, width: 800 }, 700 * MS)).toEqual([200 * MS, 700 * MS, 1200 * MS, 1700 * MS]);
  });
  it('draws small changes neutral in the diff flamegraph', () => {
    expect(diffState(0.6)).toBe('more');
    expect(diffState(-0.4)).toBe('less');
    expect(diffState(0.005)).toBe('neutral');
  });
});
