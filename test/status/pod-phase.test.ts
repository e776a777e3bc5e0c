// The pod phase, one table row per rule of the kubelet's getPhase and its terminal-phase guard:
// container statuses (and the phase served before) in, the exact phase out.
import t from 'tap';
import type { Container, PodSpec } from '../../src/manifest/pod-schema.js';
import { hasAnyRegularContainerStarted, isTerminalPhase, podPhase } from '../../src/status/pod-phase.js';
import type { ContainerState, ContainerStatus, PodPhase } from '../../src/status/types.js';

const IMAGE = 'localhost/busybox:podvisor';
const AT = '2025-01-01T00:00:00Z';

interface SpecShape {
  restartPolicy?: PodSpec['restartPolicy'];
  /** Regular init containers, in order. */
  init?: string[];
  /** Sidecars: init containers with restartPolicy Always. */
  sidecars?: string[];
  app?: string[];
}

/** A pod spec with the named containers (one app container `app` unless told). */
function spec({ restartPolicy, init = [], sidecars = [], app = ['app'] }: SpecShape): PodSpec {
  const container = (name: string): Container => ({ name, image: IMAGE });
  const initContainers = [...init.map(container), ...sidecars.map((name) => ({ ...container(name), restartPolicy: 'Always' as const }))];
  return {
    containers: app.map(container),
    ...(initContainers.length > 0 ? { initContainers } : {}),
    ...(restartPolicy ? { restartPolicy } : {}),
  };
}

function status(name: string, state: ContainerState, fields: Partial<ContainerStatus> = {}): ContainerStatus {
  return { name, state, lastState: {}, ready: false, restartCount: 0, image: IMAGE, imageID: '', ...fields };
}

/** Running; `started` as the startup probe left it (true unless told). */
const running = (name: string, started = true): ContainerStatus => status(name, { running: { startedAt: AT } }, { started, ready: started });
/** Running, with no started flag reported (the API's nil). */
const runningUnflagged = (name: string): ContainerStatus => status(name, { running: { startedAt: AT } });
/** Exited with `exitCode`, not (yet) started again. */
const exited = (name: string, exitCode: number): ContainerStatus =>
  status(name, { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: AT, finishedAt: AT } }, { started: false });
/** Waiting for its first run. */
const waiting = (name: string, reason = 'ContainerCreating'): ContainerStatus => status(name, { waiting: { reason } });
/** Waiting to be started again after a run that exited with `lastExit`. */
const restarting = (name: string, lastExit: number): ContainerStatus =>
  status(name, { waiting: { reason: 'CrashLoopBackOff' } }, { lastState: { terminated: { exitCode: lastExit, startedAt: AT, finishedAt: AT } }, restartCount: 1 });
/** A status whose state the runtime could not tell (no waiting, running or terminated). */
const stateless = (name: string): ContainerStatus => status(name, {});

interface Row {
  rule: string;
  spec: SpecShape;
  init?: ContainerStatus[];
  app: ContainerStatus[];
  previous?: PodPhase;
  expected: PodPhase;
}

// Each row is built so that its rule alone decides: without the rule the phase would differ.
const rows: Row[] = [
  // Regular init containers. They block the pod whatever the app containers say (after a sandbox
  // is recreated the init containers run again while the old app statuses remain).
  { rule: 'an init container without a status keeps the pod Pending', spec: { init: ['setup'] }, init: [], app: [running('app')], expected: 'Pending' },
  { rule: 'a running init container keeps the pod Pending', spec: { init: ['setup'] }, init: [running('setup')], app: [running('app')], expected: 'Pending' },
  { rule: 'an init container waiting for its first run keeps the pod Pending', spec: { init: ['setup'] }, init: [waiting('setup')], app: [running('app')], expected: 'Pending' },
  { rule: 'an init container in no known state keeps the pod Pending', spec: { init: ['setup'] }, init: [stateless('setup')], app: [running('app')], expected: 'Pending' },
  { rule: 'an init container that exited non-zero with restartPolicy Never fails the pod', spec: { init: ['setup'], restartPolicy: 'Never' }, init: [exited('setup', 1)], app: [waiting('app', 'PodInitializing')], expected: 'Failed' },
  { rule: 'an init container waiting after a non-zero exit with restartPolicy Never fails the pod', spec: { init: ['setup'], restartPolicy: 'Never' }, init: [restarting('setup', 2)], app: [waiting('app', 'PodInitializing')], expected: 'Failed' },
  { rule: 'a failed init container beats a pending one with restartPolicy Never', spec: { init: ['setup', 'migrate'], restartPolicy: 'Never' }, init: [exited('setup', 1), waiting('migrate')], app: [waiting('app', 'PodInitializing')], expected: 'Failed' },
  { rule: 'an init container that failed with OnFailure is retried: Pending', spec: { init: ['setup'], restartPolicy: 'OnFailure' }, init: [restarting('setup', 1)], app: [waiting('app', 'PodInitializing')], expected: 'Pending' },
  { rule: 'an init container that failed with Always is retried: Pending', spec: { init: ['setup'], restartPolicy: 'Always' }, init: [exited('setup', 1)], app: [waiting('app', 'PodInitializing')], expected: 'Pending' },
  { rule: 'init containers that exited 0 no longer block: the running app makes the pod Running', spec: { init: ['setup', 'migrate'] }, init: [exited('setup', 0), exited('migrate', 0)], app: [running('app')], expected: 'Running' },
  { rule: 'an init container waiting after an exit 0 no longer blocks the pod', spec: { init: ['setup'] }, init: [restarting('setup', 0)], app: [running('app')], expected: 'Running' },

  // Sidecars (init containers with restartPolicy Always). Before an app container has run, a
  // sidecar that is not started holds the pod in Pending; here the app waits to restart after a
  // crash, which would otherwise leave the pod Running.
  { rule: 'a running sidecar that has not started holds an uninitialized pod in Pending', spec: { sidecars: ['proxy'] }, init: [running('proxy', false)], app: [restarting('app', 1)], expected: 'Pending' },
  { rule: 'a running sidecar with no started flag holds an uninitialized pod in Pending', spec: { sidecars: ['proxy'] }, init: [runningUnflagged('proxy')], app: [restarting('app', 1)], expected: 'Pending' },
  { rule: 'a running sidecar that has started lets the pod be Running', spec: { sidecars: ['proxy'] }, init: [running('proxy')], app: [restarting('app', 1)], expected: 'Running' },
  { rule: 'a sidecar waiting for its first run holds an uninitialized pod in Pending', spec: { sidecars: ['proxy'] }, init: [waiting('proxy')], app: [restarting('app', 1)], expected: 'Pending' },
  { rule: 'a sidecar waiting for its first run keeps even an initialized pod Pending', spec: { sidecars: ['proxy'] }, init: [waiting('proxy')], app: [running('app')], expected: 'Pending' },
  { rule: 'a sidecar restarted (not yet started) after the app ran does not send the pod back to Pending', spec: { sidecars: ['proxy'] }, init: [running('proxy', false)], app: [running('app')], expected: 'Running' },
  { rule: 'a sidecar waiting to restart after a run does not count: the app decides', spec: { sidecars: ['proxy'] }, init: [restarting('proxy', 137)], app: [running('app')], expected: 'Running' },
  { rule: 'a sidecar without a status is unknown: the running app cannot make the pod Running', spec: { sidecars: ['proxy'] }, init: [], app: [running('app')], expected: 'Pending' },
  { rule: 'a sidecar in no known state is unknown: the app exiting 0 with Never cannot make the pod Succeeded', spec: { sidecars: ['proxy'], restartPolicy: 'Never' }, init: [stateless('proxy')], app: [exited('app', 0)], expected: 'Pending' },
  { rule: 'a sidecar that exited non-zero does not fail the pod: the app exited 0 with Never is Succeeded', spec: { sidecars: ['proxy'], restartPolicy: 'Never' }, init: [exited('proxy', 137)], app: [exited('app', 0)], expected: 'Succeeded' },
  { rule: 'a sidecar that exited 0 does not complete the pod: the app failed with Never is Failed', spec: { sidecars: ['proxy'], restartPolicy: 'Never' }, init: [exited('proxy', 0)], app: [exited('app', 3)], expected: 'Failed' },
  { rule: 'a sidecar still running keeps the pod Running after the app exited 0 with Never', spec: { sidecars: ['proxy'], restartPolicy: 'Never' }, init: [running('proxy')], app: [exited('app', 0)], expected: 'Running' },

  // App containers.
  { rule: 'an app container waiting for its first run keeps the pod Pending', spec: { app: ['app', 'log'] }, app: [running('app'), waiting('log')], expected: 'Pending' },
  { rule: 'an app container without a status keeps the pod Pending', spec: { app: ['app', 'log'] }, app: [running('app')], expected: 'Pending' },
  { rule: 'an app container in no known state keeps the pod Pending', spec: { app: ['app', 'log'] }, app: [running('app'), stateless('log')], expected: 'Pending' },
  { rule: 'an exited app container beside an unreported one: Pending', spec: { app: ['app', 'log'], restartPolicy: 'Never' }, app: [exited('app', 0)], expected: 'Pending' },
  { rule: 'no container reported at all: Pending', spec: {}, app: [], expected: 'Pending' },
  { rule: 'one running app container makes the pod Running', spec: {}, app: [running('app')], expected: 'Running' },
  { rule: 'one running and one failed app container with Never: Running until all have stopped', spec: { app: ['app', 'log'], restartPolicy: 'Never' }, app: [running('app'), exited('log', 1)], expected: 'Running' },
  { rule: 'all exited 0 with Always: Running while being restarted', spec: { app: ['app', 'log'], restartPolicy: 'Always' }, app: [exited('app', 0), exited('log', 0)], expected: 'Running' },
  { rule: 'all exited non-zero with Always: Running while being restarted', spec: { restartPolicy: 'Always' }, app: [exited('app', 1)], expected: 'Running' },
  { rule: 'restartPolicy left out is Always: all exited 0 is Running', spec: {}, app: [exited('app', 0)], expected: 'Running' },
  { rule: 'all exited 0 with Never: Succeeded', spec: { app: ['app', 'log'], restartPolicy: 'Never' }, app: [exited('app', 0), exited('log', 0)], expected: 'Succeeded' },
  { rule: 'one exited non-zero with Never: Failed', spec: { app: ['app', 'log'], restartPolicy: 'Never' }, app: [exited('app', 0), exited('log', 1)], expected: 'Failed' },
  { rule: 'all exited 0 with OnFailure: Succeeded', spec: { app: ['app', 'log'], restartPolicy: 'OnFailure' }, app: [exited('app', 0), exited('log', 0)], expected: 'Succeeded' },
  { rule: 'one exited non-zero with OnFailure: Running while it is restarted', spec: { app: ['app', 'log'], restartPolicy: 'OnFailure' }, app: [exited('app', 0), exited('log', 1)], expected: 'Running' },
  { rule: 'an app container waiting to restart after a failure counts as stopped: OnFailure is Running', spec: { restartPolicy: 'OnFailure' }, app: [restarting('app', 1)], expected: 'Running' },
  { rule: 'an app container waiting after a run never counts as succeeded: Never is Failed', spec: { restartPolicy: 'Never' }, app: [restarting('app', 0)], expected: 'Failed' },

  // The phase served before.
  { rule: 'a previous Succeeded is kept though a container runs again', spec: {}, app: [running('app')], previous: 'Succeeded', expected: 'Succeeded' },
  { rule: 'a previous Failed is kept though the containers now say Succeeded', spec: { restartPolicy: 'Never' }, app: [exited('app', 0)], previous: 'Failed', expected: 'Failed' },
  { rule: 'a previous Succeeded is kept though the containers now say Failed', spec: { restartPolicy: 'Never' }, app: [exited('app', 1)], previous: 'Succeeded', expected: 'Succeeded' },
  { rule: 'a previous Running is not kept: the containers decide', spec: { restartPolicy: 'Never' }, app: [exited('app', 0)], previous: 'Running', expected: 'Succeeded' },
  { rule: 'a previous Pending is not kept: the containers decide', spec: {}, app: [running('app')], previous: 'Pending', expected: 'Running' },
  { rule: 'a previous Unknown is not terminal: the containers decide', spec: {}, app: [running('app')], previous: 'Unknown', expected: 'Running' },
];

t.test('podPhase', async (t) => {
  t.ok(rows.length >= 25, 'at least 25 rules');
  t.equal(new Set(rows.map((row) => row.rule)).size, rows.length, 'every rule is named once');
  for (const row of rows) {
    const options = row.previous ? { previous: row.previous } : undefined;
    t.equal(podPhase(spec(row.spec), row.init ?? [], row.app, options), row.expected, row.rule);
  }
});

t.test('isTerminalPhase: only Succeeded and Failed', async (t) => {
  const table: [PodPhase | undefined, boolean][] = [
    ['Pending', false],
    ['Running', false],
    ['Succeeded', true],
    ['Failed', true],
    ['Unknown', false],
    [undefined, false],
  ];
  for (const [phase, expected] of table) t.equal(isTerminalPhase(phase), expected, String(phase));
});

t.test('hasAnyRegularContainerStarted: an app container that runs or has run, never an init container', async (t) => {
  const table: [string, ContainerStatus[], boolean][] = [
    ['no statuses', [], false],
    ['app waiting', [waiting('app')], false],
    ['app running', [running('app')], true],
    ['app exited', [exited('app', 1)], true],
    ['app waiting after a run', [restarting('app', 1)], false],
    ['only an init container by that status list runs', [running('setup')], false],
  ];
  const podSpec = spec({ init: ['setup'] });
  for (const [rule, statuses, expected] of table) t.equal(hasAnyRegularContainerStarted(podSpec, statuses), expected, rule);
});
