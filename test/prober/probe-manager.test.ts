// ProbeManager against real containers (exec probes, and httpGet through the pod's network
// namespace): failure thresholds and kills, startup gating, readiness. Then its bookkeeping (sync,
// restart, stop) with a recording fake runner, where only the calls matter. Periods are 1 s; exec
// timeouts are generous so that a busy machine does not turn a slow exec into a failure.
import t, { type Test } from 'tap';
import type { Probe } from '../../src/manifest/pod-schema.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { ProbeManager } from '../../src/prober/probe-manager.js';
import { PodProbeRunner, type ProbeRunner, type ProbeTarget } from '../../src/prober/probe-runner.js';
import type { ProbeSpec } from '../../src/prober/probe-spec.js';
import type { ProbedContainer, ProbeOutcome, ProbeUpdate } from '../../src/prober/types.js';
import { createPod, memoryLogger, podmanExec, requireImage, runContainer, waitFor, type TestContainer } from './fixtures/prober-fixtures.js';

const cli = new PodmanCli();
// The subtests wait on real seconds-long periods, each with its own pod: run them side by side.
t.jobs = 4;

t.before(async () => {
  await requireImage();
});

/** A manager on the real runner (made without a logger, as the agent makes it), stopped at teardown, recording its updates and log. */
function realManager(t: Test): { manager: ProbeManager; updates: ProbeUpdate[]; lines: string[]; results: string[] } {
  const updates: ProbeUpdate[] = [];
  const results: string[] = [];
  const { logger, lines } = memoryLogger();
  const manager = new ProbeManager({
    cli,
    logger,
    onChange: (update) => updates.push(update),
    onResult: (kind, result) => results.push(`${kind} ${result}`),
    runner: new PodProbeRunner({ cli }),
  });
  t.teardown(() => manager.stop());
  return { manager, updates, lines, results };
}

function probed(container: TestContainer, probes: Partial<ProbedContainer> = {}): ProbedContainer {
  return {
    containerId: container.id,
    podKey: 'default/prober-test',
    containerName: 'app',
    pid: container.pid,
    hostNetwork: false,
    ports: [],
    startedAt: container.startedAt,
    ...probes,
  };
}

const exec = (command: string, extra: Partial<Probe> = {}): Probe => ({ exec: { command: ['sh', '-c', command] }, periodSeconds: 1, timeoutSeconds: 10, ...extra });

const sleep = (ms: number) => new Promise((resolveDelay) => setTimeout(resolveDelay, ms));

t.test('liveness: one failure short of failureThreshold does not kill; reaching it does, once', async (t) => {
  const pod = await createPod(t);
  const app = await runContainer(pod, 'app', 'exec sleep 3600');
  const { manager, updates, lines, results } = realManager(t);
  // Runs 1 and 3 succeed, 2, 4 and 5 fail: the single failure (2) is forgiven, 4 and 5 kill.
  const counter = 'n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; [ $n -ne 2 ] && [ $n -lt 4 ]';
  manager.sync([probed(app, { livenessProbe: exec(counter, { failureThreshold: 2, terminationGracePeriodSeconds: 2 }) })]);

  await waitFor('the kill', () => updates.find((update) => update.action === 'kill'), 20_000);
  t.strictSame(
    updates.map((update) => [update.kind, update.result, update.changed, update.action ?? null]),
    [
      ['liveness', 'failure', false, null],
      ['liveness', 'failure', false, null],
      ['liveness', 'failure', true, 'kill'],
    ],
  );
  t.equal((await podmanExec(app.id, 'cat', '/tmp/n')).stdout, '5', 'the kill came at the fifth run');
  const kill = updates.at(-1);
  t.match(kill, { containerId: app.id, podKey: 'default/prober-test', containerName: 'app', reason: 'Unhealthy', message: 'Liveness probe failed: ', gracePeriodSeconds: 2 });
  t.strictSame(manager.status(app.id), { started: true, ready: true }, 'liveness does not decide readiness');

  await sleep(2500);
  t.equal((await podmanExec(app.id, 'cat', '/tmp/n')).stdout, '5', 'no probe runs on hold after the kill');
  t.equal(updates.length, 3);
  t.strictSame(results, ['liveness success', 'liveness failure', 'liveness success', 'liveness failure', 'liveness failure'], 'every run is told, changed or not (the metrics count them)');
  t.equal(lines.filter((line) => /exec probes (call crun|call runc|go through podman exec)/.test(line)).length, 1, "the runner said through the manager's logger which way exec probes go");
});

t.test('startup holds liveness and readiness back; once started, readiness runs at once', async (t) => {
  const pod = await createPod(t);
  const app = await runContainer(pod, 'app', 'exec sleep 3600');
  const { manager, updates } = realManager(t);
  manager.sync([
    probed(app, {
      startupProbe: { exec: { command: ['test', '-f', '/tmp/started'] }, periodSeconds: 1, timeoutSeconds: 10, failureThreshold: 60 },
      livenessProbe: exec('echo run >> /tmp/liveness-runs'),
      // A long period: readiness right after the start can only come from the trigger.
      readinessProbe: exec('true', { periodSeconds: 30 }),
    }),
  ]);

  await waitFor('two startup failures', () => updates.filter((update) => update.kind === 'startup').length >= 2);
  t.strictSame(manager.status(app.id), { started: false, ready: false });
  t.ok(updates.every((update) => update.kind === 'startup' && update.result === 'failure' && !update.changed && update.action === undefined), 'only startup ran');
  t.match(updates[0], { reason: 'Unhealthy', message: 'Startup probe failed: ' });
  t.not((await podmanExec(app.id, 'test', '-f', '/tmp/liveness-runs')).exitCode, 0, 'liveness never ran before the start');

  await podmanExec(app.id, 'touch', '/tmp/started');
  const started = await waitFor('the start', () => updates.find((update) => update.kind === 'startup' && update.changed));
  t.match(started, { result: 'success', reason: undefined, message: '', status: { started: true, ready: false } });
  const startedAt = Date.now();
  const ready = await waitFor('readiness', () => updates.find((update) => update.kind === 'readiness' && update.changed), 10_000);
  t.ok(Date.now() - startedAt < 10_000, 'readiness came long before its 30 s period');
  t.match(ready, { result: 'success', status: { started: true, ready: true } });
  t.strictSame(manager.status(app.id), { started: true, ready: true });
  await waitFor('a liveness run', async () => (await podmanExec(app.id, 'cat', '/tmp/liveness-runs')).stdout.includes('run'));
});

t.test('startup: reaching failureThreshold kills, with the probe grace period', async (t) => {
  const pod = await createPod(t);
  const app = await runContainer(pod, 'app', 'exec sleep 3600');
  const { manager, updates } = realManager(t);
  manager.sync([
    probed(app, {
      startupProbe: { exec: { command: ['false'] }, periodSeconds: 1, timeoutSeconds: 10, failureThreshold: 2, terminationGracePeriodSeconds: 3 },
      livenessProbe: exec('echo run >> /tmp/liveness-runs'),
    }),
  ]);
  const kill = await waitFor('the kill', () => updates.find((update) => update.action === 'kill'));
  t.match(kill, { kind: 'startup', result: 'failure', changed: true, gracePeriodSeconds: 3, message: 'Startup probe failed: ', status: { started: false, ready: false } });
  t.equal(updates.length, 2, 'the first failure did not kill');
  t.not((await podmanExec(app.id, 'test', '-f', '/tmp/liveness-runs')).exitCode, 0, 'liveness never ran');
});

t.test('readiness over httpGet in the pod network namespace follows the served file; no kill', async (t) => {
  const pod = await createPod(t);
  const web = await runContainer(pod, 'web', 'mkdir -p /www && exec httpd -f -p 8080 -h /www');
  const { manager, updates } = realManager(t);
  manager.sync([
    probed(web, {
      containerName: 'web',
      ports: [{ name: 'http', containerPort: 8080 }],
      readinessProbe: { httpGet: { port: 'http', path: '/ready.html' }, periodSeconds: 1, failureThreshold: 1 },
    }),
  ]);
  const failed = await waitFor('a failed readiness run', () => updates.find((update) => update.result === 'failure'));
  t.match(failed, { kind: 'readiness', changed: false, action: undefined, reason: 'Unhealthy' });
  t.match(failed.message, /^Readiness probe failed: (HTTP probe failed with statuscode: 404|Get "http:\/\/127\.0\.0\.1:8080\/ready\.html": .*)$/);
  t.strictSame(manager.status(web.id), { started: true, ready: false });

  await podmanExec(web.id, 'sh', '-c', 'echo yes > /www/ready.html');
  await waitFor('ready', () => manager.status(web.id).ready);
  t.match(updates.find((update) => update.changed), { kind: 'readiness', result: 'success', status: { ready: true } });

  await podmanExec(web.id, 'rm', '/www/ready.html');
  await waitFor('not ready', () => !manager.status(web.id).ready);
  t.match(updates.at(-1), { kind: 'readiness', result: 'failure', changed: true, message: 'Readiness probe failed: HTTP probe failed with statuscode: 404' });
  t.ok(updates.every((update) => update.action === undefined), 'readiness never kills');
});

/** A recording fake runner: answers from `answer`, records each call and its signal. */
class FakeRunner implements ProbeRunner {
  readonly calls: Array<{ target: ProbeTarget; spec: ProbeSpec; signal: AbortSignal }> = [];
  constructor(readonly answer: (target: ProbeTarget, spec: ProbeSpec, signal: AbortSignal) => Promise<ProbeOutcome>) {}

  run(target: ProbeTarget, spec: ProbeSpec, signal: AbortSignal): Promise<ProbeOutcome> {
    this.calls.push({ target, spec, signal });
    return this.answer(target, spec, signal);
  }
}

function fakeManager(t: Test, runner: FakeRunner): { manager: ProbeManager; updates: ProbeUpdate[] } {
  const updates: ProbeUpdate[] = [];
  const manager = new ProbeManager({ cli, logger: memoryLogger().logger, onChange: (update) => updates.push(update), runner });
  t.teardown(() => manager.stop());
  return { manager, updates };
}

const fakeContainer = (id: string, extra: Partial<ProbedContainer> = {}): ProbedContainer => ({
  containerId: id,
  podKey: 'default/fake',
  containerName: id,
  pid: 4242,
  hostNetwork: false,
  ports: [],
  startedAt: new Date(),
  ...extra,
});

t.test('status: unknown containers are neither started nor ready; one without probes is both', async (t) => {
  const { manager } = fakeManager(t, new FakeRunner(async () => ({ result: 'success', output: '' })));
  t.strictSame(manager.status('nope'), { started: false, ready: false });
  manager.sync([fakeContainer('plain')]);
  t.strictSame(manager.status('plain'), { started: true, ready: true });
  manager.sync([]);
  t.strictSame(manager.status('plain'), { started: false, ready: false }, 'forgotten once gone');
});

t.test('sync: a container left out stops being probed; a restarted one is probed afresh', async (t) => {
  const runner = new FakeRunner(async () => ({ result: 'failure', output: 'no' }));
  const { manager, updates } = fakeManager(t, runner);
  const first = fakeContainer('c1', { livenessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1, failureThreshold: 1 } });
  manager.sync([first]);
  await waitFor('the kill', () => updates.find((update) => update.action === 'kill'));
  const calls = runner.calls.length;
  manager.sync([first]); // the same instance: still on hold
  await sleep(1500);
  t.equal(runner.calls.length, calls, 'on hold until a new instance');

  manager.sync([{ ...first, startedAt: new Date(Date.now() + 1), pid: 4343 }]);
  await waitFor('a second kill', () => updates.filter((update) => update.action === 'kill').length === 2);
  t.equal(runner.calls.at(-1)?.target.pid, 4343, 'the new instance is probed');

  manager.sync([]);
  const after = runner.calls.length;
  await sleep(1500);
  t.equal(runner.calls.length, after, 'no probes once left out');
});

t.test('stop() cancels a probe in flight and resolves', async (t) => {
  const runner = new FakeRunner(
    (_target, _spec, signal) => new Promise((resolveRun) => signal.addEventListener('abort', () => resolveRun({ result: 'unknown', output: 'cancelled' }))),
  );
  const { manager, updates } = fakeManager(t, runner);
  manager.sync([fakeContainer('slow', { readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 } })]);
  await waitFor('a probe in flight', () => runner.calls.length === 1);
  await manager.stop();
  t.ok(runner.calls[0]?.signal.aborted, 'its signal was aborted');
  t.strictSame(updates, [], 'a cancelled run is not reported');
  manager.sync([fakeContainer('later', { readinessProbe: { exec: { command: ['true'] } } })]);
  t.strictSame(manager.status('later'), { started: false, ready: false }, 'sync after stop does nothing');
});

t.test('the first run waits for initialDelaySeconds after the start, then runs every period', async (t) => {
  const times: number[] = [];
  const runner = new FakeRunner(async () => {
    times.push(Date.now());
    return { result: 'success', output: '' };
  });
  const { manager } = fakeManager(t, runner);
  const startedAt = Date.now() + 50; // started after the manager: no jitter
  manager.sync([fakeContainer('late', { startedAt: new Date(startedAt), readinessProbe: { exec: { command: ['true'] }, initialDelaySeconds: 2, periodSeconds: 1 } })]);
  await waitFor('two runs', () => times.length >= 2, 10_000);
  t.ok((times[0] ?? 0) >= startedAt + 2000, `not before the delay (${(times[0] ?? 0) - startedAt} ms)`);
  t.ok((times[0] ?? 0) < startedAt + 2900, 'but as soon as it is over, not a period later');
  t.ok((times[1] ?? 0) - (times[0] ?? 0) >= 990, 'then one period apart');
  t.strictSame(manager.status('late'), { started: true, ready: true });
});

t.test('a run that could not be made is reported as errored and not counted', async (t) => {
  const runner = new FakeRunner(async () => ({ result: 'unknown', output: 'port web not found' }));
  const { manager, updates } = fakeManager(t, runner);
  manager.sync([fakeContainer('c', { livenessProbe: { httpGet: { port: 'web' }, periodSeconds: 1, failureThreshold: 1 } })]);
  await waitFor('two runs', () => updates.length >= 2);
  t.match(updates[0], { kind: 'liveness', result: 'unknown', reason: 'Unhealthy', message: 'Liveness probe errored: port web not found', changed: false });
  t.ok(updates.every((update) => update.action === undefined), 'errors never kill');
});
