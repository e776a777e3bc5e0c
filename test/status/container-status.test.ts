// One container's status in the kubelet's words, one table row per state a container can be in:
// what podman shows of it, the restart count, the back-off and the last failure to start it in;
// the exact ContainerStatus out.
import t from 'tap';
import type { Container } from '../../src/manifest/pod-schema.js';
import type { BackoffVerdict } from '../../src/pods/backoff.js';
import type { ObservedContainer } from '../../src/runtime/types.js';
import { containerStatus, type ContainerStatusInput } from '../../src/status/container-status.js';
import type { ContainerState, ContainerStatus } from '../../src/status/types.js';

const IMAGE = 'localhost/busybox:podvisor';
const UID = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
const POD_LABEL = `web-node1_default(${UID})`;
const CONTAINER_ID = '3f2a9c0d5e6b';
const IMAGE_ID = '8a7b6c5d4e3f';
// podman's times carry milliseconds; the API's carry whole seconds.
const STARTED = new Date('2025-01-01T00:00:01.750Z');
const STARTED_TEXT = '2025-01-01T00:00:01Z';
const FINISHED = new Date('2025-01-01T00:04:59.999Z');
const FINISHED_TEXT = '2025-01-01T00:04:59Z';

const NO_WAIT: BackoffVerdict = { waiting: false, until: 0, delayMs: 0 };
/** The kubelet's second crash-loop delay, still running. */
const WAIT_20S: BackoffVerdict = { waiting: true, until: FINISHED.getTime() + 20_000, delayMs: 20_000 };
const WAIT_5M: BackoffVerdict = { waiting: true, until: FINISHED.getTime() + 300_000, delayMs: 300_000 };

const PROBE = { exec: { command: ['true'] } };
const readinessProbe = { readinessProbe: PROBE };
const startupProbe = { startupProbe: PROBE };

/** What podman shows of a container in `state` (exited ones with `exitCode`). */
function observed(state: ObservedContainer['state'], exitCode?: number): ObservedContainer {
  const exited = state === 'exited';
  return {
    id: CONTAINER_ID,
    name: 'app',
    kind: 'app',
    state,
    exitCode: exited ? exitCode : undefined,
    startedAt: state === 'created' ? undefined : STARTED,
    finishedAt: exited ? FINISHED : undefined,
    image: IMAGE,
    imageId: IMAGE_ID,
    pid: state === 'running' ? 4242 : undefined,
  };
}

/** A previous run's end, as an earlier status kept it. */
const EARLIER_END: ContainerState = {
  terminated: { exitCode: 1, reason: 'Error', startedAt: '2024-12-31T23:59:00Z', finishedAt: '2024-12-31T23:59:30Z', containerID: 'podman://0ld' },
};

interface RowInput extends Partial<Omit<ContainerStatusInput, 'spec'>> {
  /** Fields of the container spec (name `app` unless told). */
  spec?: Partial<Container>;
}

interface Row {
  rule: string;
  input: RowInput;
  expected: ContainerStatus;
}

function inputFor(row: RowInput): ContainerStatusInput {
  const { spec, ...rest } = row;
  return {
    spec: { name: 'app', image: IMAGE, ...spec },
    kind: 'app',
    observed: undefined,
    restartCount: 0,
    restartPolicy: 'Always',
    backoff: NO_WAIT,
    failure: undefined,
    probe: undefined,
    podLabel: POD_LABEL,
    initializing: false,
    previous: undefined,
    ...rest,
  };
}

/** The status of a created container (`podman://ID`, `sha256:ID`), with `fields` over it. */
function created(fields: Partial<ContainerStatus> & Pick<ContainerStatus, 'state'>, name = 'app'): ContainerStatus {
  return { name, restartCount: 0, image: IMAGE, imageID: `sha256:${IMAGE_ID}`, containerID: `podman://${CONTAINER_ID}`, lastState: {}, ready: false, started: false, ...fields };
}

/** The status of a container podman does not have (yet). */
function absent(fields: Partial<ContainerStatus> & Pick<ContainerStatus, 'state'>, name = 'app'): ContainerStatus {
  return { name, restartCount: 0, image: IMAGE, imageID: '', lastState: {}, ready: false, started: false, ...fields };
}

const RUNNING: ContainerState = { running: { startedAt: STARTED_TEXT } };
const ended = (exitCode: number, reason: string, extra: { signal?: number } = {}): ContainerState => ({
  terminated: { exitCode, ...extra, reason, startedAt: STARTED_TEXT, finishedAt: FINISHED_TEXT, containerID: `podman://${CONTAINER_ID}` },
});
const crashLoop = (delay: string, name = 'app'): ContainerState => ({
  waiting: { reason: 'CrashLoopBackOff', message: `back-off ${delay} restarting failed container=${name} pod=${POD_LABEL}` },
});

const rows: Row[] = [
  // Running: started by the startup probe, ready by the readiness probe; each true without its probe.
  { rule: 'running without probes is started and ready', input: { observed: observed('running') }, expected: created({ state: RUNNING, ready: true, started: true }) },
  { rule: 'running with a readiness probe not yet reported is not ready', input: { spec: readinessProbe, observed: observed('running') }, expected: created({ state: RUNNING, ready: false, started: true }) },
  { rule: 'running with a readiness probe that passes is ready', input: { spec: readinessProbe, observed: observed('running'), probe: { started: true, ready: true } }, expected: created({ state: RUNNING, ready: true, started: true }) },
  { rule: 'running with a readiness probe that fails is not ready', input: { spec: readinessProbe, observed: observed('running'), probe: { started: true, ready: false } }, expected: created({ state: RUNNING, ready: false, started: true }) },
  { rule: 'running with a startup probe not yet reported is neither started nor ready', input: { spec: startupProbe, observed: observed('running') }, expected: created({ state: RUNNING, ready: false, started: false }) },
  { rule: 'running with a startup probe that has not passed is neither started nor ready', input: { spec: startupProbe, observed: observed('running'), probe: { started: false, ready: true } }, expected: created({ state: RUNNING, ready: false, started: false }) },
  { rule: 'running past its startup probe, with no readiness probe, is ready', input: { spec: startupProbe, observed: observed('running'), probe: { started: true, ready: false } }, expected: created({ state: RUNNING, ready: true, started: true }) },
  { rule: 'running past both probes is started and ready', input: { spec: { ...startupProbe, ...readinessProbe }, observed: observed('running'), probe: { started: true, ready: true } }, expected: created({ state: RUNNING, ready: true, started: true }) },
  { rule: 'a readiness pass does not count before the startup probe passes', input: { spec: { ...startupProbe, ...readinessProbe }, observed: observed('running'), probe: { started: false, ready: true } }, expected: created({ state: RUNNING, ready: false, started: false }) },
  { rule: 'a paused container counts as running', input: { observed: observed('paused') }, expected: created({ state: RUNNING, ready: true, started: true }) },
  { rule: 'a running regular init container is started but not ready (ready means completed)', input: { kind: 'init', spec: { name: 'init' }, observed: { ...observed('running'), name: 'init', kind: 'init' } }, expected: created({ state: RUNNING, ready: false, started: true }, 'init') },
  { rule: 'a running sidecar is ready as an app container is', input: { kind: 'init', spec: { name: 'proxy', restartPolicy: 'Always' }, observed: { ...observed('running'), name: 'proxy', kind: 'init' } }, expected: created({ state: RUNNING, ready: true, started: true }, 'proxy') },
  { rule: 'a sidecar waits for its readiness probe too', input: { kind: 'init', spec: { name: 'proxy', restartPolicy: 'Always', ...readinessProbe }, observed: { ...observed('running'), name: 'proxy', kind: 'init' }, probe: { started: true, ready: false } }, expected: created({ state: RUNNING, ready: false, started: true }, 'proxy') },
  { rule: 'running again after restarts keeps the previous run\'s end as lastState', input: { observed: observed('running'), restartCount: 2, previous: absent({ state: crashLoop('20s'), lastState: EARLIER_END, restartCount: 2 }) }, expected: created({ state: RUNNING, lastState: EARLIER_END, ready: true, started: true, restartCount: 2 }) },
  { rule: 'with no restart there is no lastState, whatever was served before', input: { observed: observed('running'), previous: absent({ state: RUNNING, lastState: EARLIER_END }) }, expected: created({ state: RUNNING, ready: true, started: true }) },

  // Exited and not to be restarted: terminated, Completed for 0 and Error otherwise.
  { rule: 'exit 0 under Never is terminated Completed', input: { restartPolicy: 'Never', observed: observed('exited', 0) }, expected: created({ state: ended(0, 'Completed') }) },
  { rule: 'exit 1 under Never is terminated Error', input: { restartPolicy: 'Never', observed: observed('exited', 1) }, expected: created({ state: ended(1, 'Error') }) },
  { rule: 'exit 137 under Never is terminated Error with signal 9', input: { restartPolicy: 'Never', observed: observed('exited', 137) }, expected: created({ state: ended(137, 'Error', { signal: 9 }) }) },
  { rule: 'an exit podman marks as OOM-killed is terminated OOMKilled', input: { restartPolicy: 'Never', observed: { ...observed('exited', 137), oomKilled: true } }, expected: created({ state: ended(137, 'OOMKilled', { signal: 9 }) }) },
  { rule: 'exit 143 is signal 15', input: { restartPolicy: 'Never', observed: observed('exited', 143) }, expected: created({ state: ended(143, 'Error', { signal: 15 }) }) },
  { rule: 'exit 0 under OnFailure is not restarted', input: { restartPolicy: 'OnFailure', observed: observed('exited', 0) }, expected: created({ state: ended(0, 'Completed') }) },
  { rule: 'a regular init container that exited 0 is terminated and ready, whatever the policy', input: { kind: 'init', spec: { name: 'init' }, restartPolicy: 'Always', observed: { ...observed('exited', 0), name: 'init', kind: 'init' } }, expected: created({ state: ended(0, 'Completed'), ready: true }, 'init') },
  { rule: 'a regular init container that failed under Never is terminated Error, not ready', input: { kind: 'init', spec: { name: 'init' }, restartPolicy: 'Never', observed: { ...observed('exited', 1), name: 'init', kind: 'init' } }, expected: created({ state: ended(1, 'Error') }, 'init') },
  { rule: 'a terminated container keeps the lastState of earlier restarts', input: { restartPolicy: 'Never', restartCount: 1, observed: observed('exited', 1), previous: absent({ state: RUNNING, lastState: EARLIER_END, restartCount: 1 }) }, expected: created({ state: ended(1, 'Error'), lastState: EARLIER_END, restartCount: 1 }) },

  // Exited and to be restarted, in back-off: CrashLoopBackOff, with the exit as lastState.
  { rule: 'exit 1 under Always in back-off is CrashLoopBackOff with the kubelet\'s message', input: { observed: observed('exited', 1), restartCount: 2, backoff: WAIT_20S }, expected: created({ state: crashLoop('20s'), lastState: ended(1, 'Error'), restartCount: 2 }) },
  { rule: 'exit 0 under Always in back-off is CrashLoopBackOff too', input: { observed: observed('exited', 0), restartCount: 5, backoff: WAIT_5M }, expected: created({ state: crashLoop('5m0s'), lastState: ended(0, 'Completed'), restartCount: 5 }) },
  { rule: 'exit 1 under OnFailure in back-off is CrashLoopBackOff', input: { restartPolicy: 'OnFailure', observed: observed('exited', 1), backoff: WAIT_20S }, expected: created({ state: crashLoop('20s'), lastState: ended(1, 'Error') }) },
  { rule: 'a failed regular init container under OnFailure is in CrashLoopBackOff, named in the message', input: { kind: 'init', spec: { name: 'init' }, restartPolicy: 'OnFailure', observed: { ...observed('exited', 1), name: 'init', kind: 'init' }, backoff: WAIT_20S }, expected: created({ state: crashLoop('20s', 'init'), lastState: ended(1, 'Error') }, 'init') },

  // Exited and to be restarted, not in back-off: about to be started again.
  { rule: 'exit 1 under Always out of back-off is ContainerCreating, with the exit as lastState', input: { observed: observed('exited', 1), restartCount: 1 }, expected: created({ state: { waiting: { reason: 'ContainerCreating' } }, lastState: ended(1, 'Error'), restartCount: 1 }) },

  // A sidecar is restarted whatever the pod's policy and exit code.
  { rule: 'a sidecar that exited 0 under Never is restarted', input: { kind: 'init', spec: { name: 'proxy', restartPolicy: 'Always' }, restartPolicy: 'Never', observed: { ...observed('exited', 0), name: 'proxy', kind: 'init' } }, expected: created({ state: { waiting: { reason: 'ContainerCreating' } }, lastState: ended(0, 'Completed') }, 'proxy') },
  { rule: 'a sidecar that exited 0 under Never in back-off is in CrashLoopBackOff', input: { kind: 'init', spec: { name: 'proxy', restartPolicy: 'Always' }, restartPolicy: 'Never', observed: { ...observed('exited', 0), name: 'proxy', kind: 'init' }, backoff: WAIT_20S }, expected: created({ state: crashLoop('20s', 'proxy'), lastState: ended(0, 'Completed') }, 'proxy') },

  // Never created, or created and never started.
  { rule: 'a container podman does not have is ContainerCreating, with no containerID and an empty imageID', input: {}, expected: absent({ state: { waiting: { reason: 'ContainerCreating' } } }) },
  { rule: 'a created, never started container is waiting with its containerID', input: { observed: observed('created') }, expected: created({ state: { waiting: { reason: 'ContainerCreating' } } }) },
  { rule: 'in a pod with init containers, an app container not created yet waits with PodInitializing', input: { initializing: true }, expected: absent({ state: { waiting: { reason: 'PodInitializing' } } }) },
  { rule: 'in a pod with init containers, an init container not created yet waits with PodInitializing too', input: { kind: 'init', spec: { name: 'init' }, initializing: true }, expected: absent({ state: { waiting: { reason: 'PodInitializing' } } }, 'init') },
  { rule: 'a failure to start is shown with its reason and message', input: { failure: { reason: 'ErrImageNeverPull', message: `Container image "${IMAGE}" is not present with pull policy of Never` } }, expected: absent({ state: { waiting: { reason: 'ErrImageNeverPull', message: `Container image "${IMAGE}" is not present with pull policy of Never` } } }) },
  { rule: 'ErrImageNeverPull keeps its words in back-off', input: { failure: { reason: 'ErrImageNeverPull', message: 'not present' }, backoff: WAIT_20S }, expected: absent({ state: { waiting: { reason: 'ErrImageNeverPull', message: 'not present' } } }) },
  { rule: 'ErrImagePull out of back-off is shown as it is', input: { failure: { reason: 'ErrImagePull', message: 'manifest unknown' } }, expected: absent({ state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } } }) },
  { rule: 'ErrImagePull in back-off is ImagePullBackOff, in the kubelet\'s words', input: { failure: { reason: 'ErrImagePull', message: 'manifest unknown' }, backoff: WAIT_20S }, expected: absent({ state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${IMAGE}"` } } }) },
  { rule: 'a sandbox that could not be made shows ContainerCreating, as the kubelet does, with the cause', input: { failure: { reason: 'CreatePodSandboxError', message: 'Failed to create pod sandbox: cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use' }, backoff: WAIT_20S }, expected: absent({ state: { waiting: { reason: 'ContainerCreating', message: 'Failed to create pod sandbox: cannot listen on the TCP port: listen tcp4 127.0.0.1:8080: bind: address already in use' } } }) },
  { rule: 'a failure to start wins over PodInitializing', input: { initializing: true, failure: { reason: 'CreateContainerError', message: 'no such volume' } }, expected: absent({ state: { waiting: { reason: 'CreateContainerError', message: 'no such volume' } } }) },
  { rule: 'a waiting container keeps the lastState of earlier restarts', input: { restartCount: 3, previous: absent({ state: crashLoop('40s'), lastState: EARLIER_END, restartCount: 3 }) }, expected: absent({ state: { waiting: { reason: 'ContainerCreating' } }, lastState: EARLIER_END, restartCount: 3 }) },
];

t.test('containerStatus: one state per row', async (t) => {
  t.equal(new Set(rows.map((row) => row.rule)).size, rows.length, 'every rule is named once');
  for (const row of rows) t.strictSame(containerStatus(inputFor(row.input)), row.expected, row.rule);
});

t.test('the back-off message is exactly the kubelet\'s', async (t) => {
  const status = containerStatus(inputFor({ observed: observed('exited', 1), backoff: WAIT_20S }));
  t.equal(status.state.waiting?.message, `back-off 20s restarting failed container=app pod=web-node1_default(${UID})`);
});

t.test('ids and times in the API\'s spelling', async (t) => {
  const status = containerStatus(inputFor({ restartPolicy: 'Never', observed: observed('exited', 0) }));
  t.equal(status.containerID, `podman://${CONTAINER_ID}`);
  t.equal(status.imageID, `sha256:${IMAGE_ID}`);
  t.equal(status.state.terminated?.containerID, `podman://${CONTAINER_ID}`);
  for (const time of [status.state.terminated?.startedAt, status.state.terminated?.finishedAt]) {
    t.match(time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, `${time} is RFC 3339 with whole seconds`);
  }
  t.equal(status.state.terminated?.finishedAt, FINISHED_TEXT, 'seconds are truncated, never rounded up');
});

t.test('a container without times has none in its state', async (t) => {
  const bare = { ...observed('exited', 2), startedAt: undefined, finishedAt: undefined };
  const status = containerStatus(inputFor({ restartPolicy: 'Never', observed: bare }));
  t.strictSame(status.state, { terminated: { exitCode: 2, reason: 'Error', containerID: `podman://${CONTAINER_ID}` } });
  const running = containerStatus(inputFor({ observed: { ...observed('running'), startedAt: undefined } }));
  t.strictSame(running.state, { running: {} });
});

t.test('a run that ended and restarted between two listings still becomes lastState', async (t) => {
  // The status served run 1 running; the exit watcher saw it end with 3; the listing now shows run 2.
  const served = created({ state: { running: { startedAt: '2025-01-01T00:00:00Z' } }, restartCount: 0, ready: true, started: true });
  const run2 = { ...observed('running'), startedAt: new Date('2025-01-01T00:00:31.500Z') };
  const lastExit = { exitCode: 3, at: new Date('2025-01-01T00:00:30.700Z') };
  const status = containerStatus(inputFor({ observed: run2, restartCount: 1, previous: served, lastExit }));
  t.strictSame(status.lastState, {
    terminated: { exitCode: 3, reason: 'Error', startedAt: '2025-01-01T00:00:00Z', finishedAt: '2025-01-01T00:00:30Z', containerID: `podman://${CONTAINER_ID}` },
  }, 'the ended run: its start as served, its end and code from the exit watcher');
  const next = containerStatus(inputFor({ observed: run2, restartCount: 1, previous: status, lastExit }));
  t.strictSame(next.lastState, status.lastState, 'kept on the next recompute');
  const unrelated = containerStatus(inputFor({ observed: run2, restartCount: 1, previous: served, lastExit: { exitCode: 3, at: new Date('2025-01-01T00:00:40Z') } }));
  t.strictSame(unrelated.lastState, {}, 'an exit after this run started is not the run before it');
});

t.test('a run restarted within the second it ended: podman lists the new start in whole seconds', async (t) => {
  // Run 1 served running; kill -9 at 47.2 s, restarted at once at 47.6 s: `podman ps` says 47 s.
  const served = created({ state: { running: { startedAt: '2025-01-01T00:00:00Z' } }, restartCount: 0, ready: true, started: true });
  const lastStateFor = (exitAt: string) => containerStatus(inputFor({ observed: { ...observed('running'), startedAt: new Date('2025-01-01T00:00:47Z') }, restartCount: 1, previous: served, lastExit: { exitCode: 137, at: new Date(exitAt) } })).lastState;
  t.match(lastStateFor('2025-01-01T00:00:47.200Z'), { terminated: { exitCode: 137, signal: 9, startedAt: '2025-01-01T00:00:00Z', finishedAt: '2025-01-01T00:00:47Z' } });
  t.strictSame(lastStateFor('2025-01-01T00:00:48.100Z'), {}, 'an exit in a later second than the listed start is still not the run before it');
});
