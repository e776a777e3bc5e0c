// The worker's pure rules: threshold counting, initial values, when a worker may probe (with a
// fake clock: plain numbers stand in for Date.now()), what kills, how results make started/ready,
// and the kubelet's event words.
import t from 'tap';
import { probeEvent, probeKillMessage } from '../../src/prober/probe-messages.js';
import { countResult, EMPTY_RUN, failureKills, initialResult, mayProbe, probeStatus, type ResultRun } from '../../src/prober/probe-results.js';
import type { ProbeResult } from '../../src/prober/types.js';
import { classifyHttpStatus } from '../../src/prober/http-status.js';

/** Feeds `results` through countResult; returns what each run settled. */
function feed(results: ProbeResult[], thresholds: { successThreshold: number; failureThreshold: number }): Array<string | undefined> {
  let run: ResultRun = EMPTY_RUN;
  return results.map((result) => {
    const counted = countResult(run, result, thresholds);
    run = counted.run;
    return counted.settle;
  });
}

t.test('failureThreshold: one failure short of it settles nothing', async (t) => {
  t.strictSame(feed(['failure', 'failure'], { successThreshold: 1, failureThreshold: 2 }), [undefined, 'failure']);
  t.strictSame(feed(['failure', 'success', 'failure', 'failure', 'failure'], { successThreshold: 1, failureThreshold: 2 }), [
    undefined, 'success', undefined, 'failure', 'failure',
  ]);
});

t.test('successThreshold counts successes in a row; a warning is a success', async (t) => {
  t.strictSame(feed(['success', 'failure', 'success', 'warning', 'success'], { successThreshold: 2, failureThreshold: 3 }), [
    undefined, undefined, undefined, 'success', 'success',
  ]);
});

t.test('an unknown result (the probe could not run) is not counted and breaks no run', async (t) => {
  t.strictSame(feed(['failure', 'unknown', 'failure'], { successThreshold: 1, failureThreshold: 2 }), [undefined, undefined, 'failure']);
});

t.test('initial results: alive, not ready, not started', async (t) => {
  t.equal(initialResult('liveness'), 'success');
  t.equal(initialResult('readiness'), 'failure');
  t.equal(initialResult('startup'), 'unknown');
});

t.test('liveness and startup failures kill; readiness failures do not', async (t) => {
  t.ok(failureKills('liveness'));
  t.ok(failureKills('startup'));
  t.notOk(failureKills('readiness'));
});

t.test('mayProbe: initialDelaySeconds in whole seconds since the start (fake clock)', async (t) => {
  const startedAt = 1_000_000;
  t.notOk(mayProbe('liveness', true, startedAt, startedAt + 4_999, 5), '4.999 s is not yet 5');
  t.ok(mayProbe('liveness', true, startedAt, startedAt + 5_000, 5));
  t.ok(mayProbe('readiness', true, startedAt, startedAt, 0));
});

t.test('mayProbe: startup only before the start, liveness and readiness only after', async (t) => {
  t.ok(mayProbe('startup', false, 0, 0, 0));
  t.notOk(mayProbe('startup', true, 0, 0, 0));
  t.notOk(mayProbe('liveness', false, 0, 0, 0));
  t.notOk(mayProbe('readiness', false, 0, 0, 0));
  t.ok(mayProbe('liveness', true, 0, 0, 0));
});

t.test('probeStatus: no startup probe means started; no readiness probe means ready once started', async (t) => {
  t.strictSame(probeStatus({}), { started: true, ready: true });
  t.strictSame(probeStatus({ readiness: 'failure' }), { started: true, ready: false });
  t.strictSame(probeStatus({ readiness: 'success' }), { started: true, ready: true });
  t.strictSame(probeStatus({ startup: 'unknown' }), { started: false, ready: false });
  t.strictSame(probeStatus({ startup: 'success' }), { started: true, ready: true });
  t.strictSame(probeStatus({ startup: 'unknown', readiness: 'success' }), { started: false, ready: false });
});

t.test('the HTTP status rule: 2xx succeeds, 3xx warns, the rest fails', async (t) => {
  t.strictSame(classifyHttpStatus(200, 'ok'), { result: 'success', output: 'ok' });
  t.strictSame(classifyHttpStatus(399, ''), { result: 'warning', output: 'Probe terminated redirects, Response body: ' });
  t.strictSame(classifyHttpStatus(302, 'moved'), { result: 'warning', output: 'Probe terminated redirects, Response body: moved' });
  t.strictSame(classifyHttpStatus(199, ''), { result: 'failure', output: 'HTTP probe failed with statuscode: 199' });
  t.strictSame(classifyHttpStatus(404, 'nope'), { result: 'failure', output: 'HTTP probe failed with statuscode: 404' });
  t.strictSame(classifyHttpStatus(500, ''), { result: 'failure', output: 'HTTP probe failed with statuscode: 500' });
});

t.test('event words are the kubelet ones', async (t) => {
  t.strictSame(probeEvent('liveness', { result: 'failure', output: 'HTTP probe failed with statuscode: 500' }), {
    reason: 'Unhealthy',
    message: 'Liveness probe failed: HTTP probe failed with statuscode: 500',
  });
  t.strictSame(probeEvent('readiness', { result: 'unknown', output: 'port web not found' }), { reason: 'Unhealthy', message: 'Readiness probe errored: port web not found' });
  t.strictSame(probeEvent('startup', { result: 'warning', output: 'Probe terminated redirects, Response body: ' }), {
    reason: 'ProbeWarning',
    message: 'Startup probe warning: Probe terminated redirects, Response body: ',
  });
  t.strictSame(probeEvent('liveness', { result: 'success', output: 'ok' }), { reason: undefined, message: '' });
  t.equal(probeKillMessage('liveness', 'web'), 'Container web failed liveness probe, will be restarted');
});
