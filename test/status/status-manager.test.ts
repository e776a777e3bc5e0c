// The status owner end to end, without podman: desired pods made as the file source makes them
// (toDesiredPod), listings written by hand as the runtime would report them, in-memory
// supervision, a fake clock, and a real temporary state directory for status.json.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import winston from 'winston';
import { printedStatus } from '../../src/status/printers.js';
import { agentAlive, readStatusFile, staleness } from '../../src/cli/read-status.js';
import { MANIFEST_ERROR_ANNOTATION, MANIFEST_VALID_CONDITION } from '../../src/status/manifest-problem.js';
import type { Logger } from '../../src/log/logger.js';
import type { DesiredState } from '../../src/manifest/desired-state.js';
import { CONFIG_HASH_ANNOTATION, toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { PodSpec } from '../../src/manifest/pod-schema.js';
import { backoffKey } from '../../src/pods/backoff.js';
import { inMemorySupervision, type Supervision } from '../../src/pods/supervision.js';
import type { ObservedContainer, ObservedPod } from '../../src/runtime/types.js';
import { STATUS_FILE, STATUS_HEARTBEAT_MS, StatusManager, type ProbeStatusView, type StatusFile, type StatusPod } from '../../src/status/status-manager.js';
import { recordingLogger } from '../support/recording.js';

const NODE = 'node1';
const HOST_IP = '192.0.2.10';
const IMAGE = 'localhost/busybox:podvisor';
const BACKOFF = { initialMs: 10_000, maxMs: 300_000 };
const T0 = Date.parse('2025-01-01T00:00:00Z');

/** A fake clock: `now` is whatever the test last set. */
class FakeClock {
  now = T0;
  advance(ms: number): void {
    this.now += ms;
  }
  readonly read = (): number => this.now;
}

const silentLogger = winston.createLogger({ silent: true });


function desiredPod(name: string, spec: Partial<PodSpec> = {}, namespace?: string): DesiredPod {
  return toDesiredPod(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, ...(namespace ? { namespace } : {}), labels: { app: name } },
      spec: { containers: [{ name: 'app', image: IMAGE }], ...spec },
    },
    `/etc/podvisor/manifests.d/${name}.yaml`,
    NODE,
    new Date(T0),
  );
}

function desiredState(...pods: DesiredPod[]): DesiredState {
  return { pods: new Map(pods.map((pod) => [pod.key, pod])), erroredSources: new Set(), conflicts: [] };
}

/** One container as podman lists it. */
function container(name: string, state: ObservedContainer['state'], fields: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `ctr-${name}`,
    name,
    kind: 'app',
    state,
    exitCode: state === 'exited' ? 0 : undefined,
    startedAt: state === 'created' ? undefined : new Date(T0 + 1000),
    finishedAt: state === 'exited' ? new Date(T0 + 5000) : undefined,
    image: IMAGE,
    imageId: `img-${name}`,
    pid: state === 'running' ? 100 : undefined,
    ...fields,
  };
}

/** The pod podman runs for `pod` (its hash unless told), with `containers`. */
function observedPod(pod: DesiredPod, containers: ObservedContainer[], fields: Partial<ObservedPod> = {}): ObservedPod {
  return {
    id: `pod-${pod.name}`,
    podmanName: `${pod.namespace}_${pod.name}`,
    key: pod.key,
    name: pod.name,
    namespace: pod.namespace,
    uid: pod.uid,
    hash: pod.hash,
    source: pod.source,
    gracePeriodSeconds: 30,
    infraRunning: true,
    containers,
    ...fields,
  };
}

const listing = (...pods: ObservedPod[]) => ({ pods, foreignPods: 0 });

interface Setup {
  manager: StatusManager;
  supervision: Supervision;
  clock: FakeClock;
  stateDir: string;
}

function setup(stateDir: string, options: { supervision?: Supervision; probes?: ProbeStatusView; clock?: FakeClock; logger?: Logger; writeIntervalMs?: number } = {}): Setup {
  const supervision = options.supervision ?? inMemorySupervision(BACKOFF);
  const clock = options.clock ?? new FakeClock();
  const manager = new StatusManager({
    stateDir,
    logger: options.logger ?? silentLogger,
    supervision,
    hostIP: HOST_IP,
    now: clock.read,
    ...(options.probes ? { probes: options.probes } : {}),
    ...(options.writeIntervalMs ? { writeIntervalMs: options.writeIntervalMs } : {}),
  });
  return { manager, supervision, clock, stateDir };
}

function only(manager: StatusManager, key?: string): StatusPod {
  const pods = manager.pods();
  const pod = key === undefined ? pods[0] : pods.find((one) => `${one.metadata.namespace}/${one.metadata.name}` === key);
  if (!pod) throw new Error(`no pod ${key ?? ''} in ${pods.map((one) => one.metadata.name).join(', ')}`);
  return pod;
}

const conditionsOf = (pod: StatusPod) => Object.fromEntries(pod.status.conditions.map((condition) => [condition.type, condition.status]));
const waitingReasons = (pod: StatusPod) => pod.status.containerStatuses.map((status) => status.state.waiting?.reason);

t.test('observe: one pod per desired pod, with metadata, spec and status', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  const db = desiredPod('db', {}, 'infra');
  manager.observe(desiredState(web, db), listing(observedPod(web, [container('app', 'running')])));

  const pods = manager.pods();
  t.strictSame(pods.map((pod) => `${pod.metadata.namespace}/${pod.metadata.name}`), ['default/web-node1', 'infra/db-node1'], 'sorted by namespace and name');

  const running = only(manager, 'default/web-node1');
  t.match(running, { apiVersion: 'v1', kind: 'Pod' });
  t.match(running.metadata, { name: 'web-node1', namespace: 'default', uid: web.uid, labels: { app: 'web' } });
  t.equal(running.metadata.annotations?.[CONFIG_HASH_ANNOTATION], web.hash);
  t.equal(running.metadata.creationTimestamp, '2025-01-01T00:00:00Z', 'created when first seen running');
  t.strictSame(running.spec, web.pod.spec, 'the defaulted spec');
  t.match(running.status, { phase: 'Running', hostIP: HOST_IP, hostIPs: [{ ip: HOST_IP }], startTime: '2025-01-01T00:00:00Z', qosClass: 'BestEffort', initContainerStatuses: [] });
  t.notOk('podIP' in running.status, 'no pod IP without hostNetwork (podman\'s bridge address is not known here)');
  t.strictSame(conditionsOf(running), { PodReadyToStartContainers: 'True', Initialized: 'True', Ready: 'True', ContainersReady: 'True', PodScheduled: 'True' });
  t.strictSame(running.status.containerStatuses, [
    {
      name: 'app',
      restartCount: 0,
      image: IMAGE,
      imageID: 'sha256:img-app',
      containerID: 'podman://ctr-app',
      state: { running: { startedAt: '2025-01-01T00:00:01Z' } },
      lastState: {},
      ready: true,
      started: true,
    },
  ]);

  const pending = only(manager, 'infra/db-node1');
  t.equal(pending.status.phase, 'Pending');
  t.notOk(pending.status.startTime, 'no start time before podman has the pod');
  t.strictSame(waitingReasons(pending), ['ContainerCreating']);
  t.match(pending.status.conditions.find((condition) => condition.type === 'Ready'), { status: 'False', reason: 'UnknownContainerStatuses' });
  t.match(pending.status.conditions.find((condition) => condition.type === 'PodReadyToStartContainers'), { status: 'False' });
});

t.test('a pod no desired state names is no longer served', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  manager.observe(desiredState(web), listing());
  t.equal(manager.pods().length, 1);
  manager.observe(desiredState(), listing(observedPod(web, [container('app', 'running')])));
  t.strictSame(manager.pods(), []);
});

t.test('a hostNetwork pod has the host\'s IP as its own', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web', { hostNetwork: true });
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  t.match(only(manager).status, { podIP: HOST_IP, podIPs: [{ ip: HOST_IP }] });
});

t.test('an observed pod of another hash is not this pod: Pending, ContainerCreating', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')], { hash: '0123456789abcdef' })));
  const pod = only(manager);
  t.equal(pod.status.phase, 'Pending');
  t.strictSame(pod.status.containerStatuses.map((status) => status.state), [{ waiting: { reason: 'ContainerCreating' } }]);
  t.notOk(pod.status.containerStatuses[0]?.containerID, 'the old pod\'s container is not this pod\'s');
  t.match(pod.status.conditions.find((condition) => condition.type === 'PodReadyToStartContainers'), { status: 'False' });
});

t.test('containerFailed shows the failure; containerStarted clears it', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  manager.observe(desiredState(web), listing(observedPod(web, [])));
  manager.containerFailed(web, 'app', { reason: 'ErrImageNeverPull', message: `Container image "${IMAGE}" is not present with pull policy of Never` });
  t.strictSame(only(manager).status.containerStatuses[0]?.state, { waiting: { reason: 'ErrImageNeverPull', message: `Container image "${IMAGE}" is not present with pull policy of Never` } });
  t.equal(printedStatus(only(manager)).status, 'ErrImageNeverPull');
  manager.containerStarted(web, 'app');
  t.strictSame(only(manager).status.containerStatuses[0]?.state, { waiting: { reason: 'ContainerCreating' } });
});

t.test('an image pull failure in back-off is ImagePullBackOff', async (t) => {
  const { manager, supervision, clock } = setup(t.testdir());
  const web = desiredPod('web');
  supervision.recordFailure(backoffKey(web.uid, 'app'), clock.now);
  clock.advance(2000);
  manager.observe(desiredState(web), listing(observedPod(web, [])));
  manager.containerFailed(web, 'app', { reason: 'ErrImagePull', message: 'manifest unknown' });
  t.strictSame(only(manager).status.containerStatuses[0]?.state, { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${IMAGE}"` } });
});

t.test('a crash loop: the kubelet\'s back-off message names the container and the pod', async (t) => {
  const { manager, supervision, clock } = setup(t.testdir());
  const web = desiredPod('web');
  const key = backoffKey(web.uid, 'app');
  supervision.recordRestart(key, T0);
  supervision.recordRestart(key, T0 + 3000);
  clock.advance(6000); // 1s after the exit at T0 + 5s: the 20s back-off runs
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 1 })])));
  const status = only(manager).status.containerStatuses[0];
  t.strictSame(status?.state, { waiting: { reason: 'CrashLoopBackOff', message: `back-off 20s restarting failed container=app pod=web-node1_default(${web.uid})` } });
  t.match(status, { restartCount: 2, lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: '2025-01-01T00:00:05Z' } } });
  clock.advance(30_000);
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 1 })])));
  t.strictSame(only(manager).status.containerStatuses[0]?.state, { waiting: { reason: 'ContainerCreating' } }, 'the back-off is over: about to start');
});

t.test('probe results decide started and ready', async (t) => {
  const results = new Map<string, { started: boolean; ready: boolean }>();
  const fakeProbes: ProbeStatusView = { status: (id) => results.get(id) };
  const { manager } = setup(t.testdir(), { probes: fakeProbes });
  const web = desiredPod('web', { containers: [{ name: 'app', image: IMAGE, readinessProbe: { exec: { command: ['true'] } } }] });
  const listed = listing(observedPod(web, [container('app', 'running')]));
  manager.observe(desiredState(web), listed);
  t.match(only(manager).status.containerStatuses[0], { ready: false, started: true }, 'no result yet: not ready');
  results.set('ctr-app', { started: true, ready: true });
  manager.observe(desiredState(web), listed);
  t.match(only(manager).status.containerStatuses[0], { ready: true, started: true });
  t.equal(conditionsOf(only(manager)).Ready, 'True');
});

t.test('the status changes the resourceVersion; an unchanged one does not', async (t) => {
  const { manager, clock, stateDir } = setup(t.testdir());
  const web = desiredPod('web');
  const version = async () => {
    await manager.flush();
    return (JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as StatusFile).metadata.resourceVersion;
  };
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  const first = await version();
  clock.advance(10_000);
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  t.equal(await version(), first, 'the same status at a later time');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 1 })])));
  t.not(await version(), first);
});

t.test('flush writes status.json, a PodList with the events', async (t) => {
  const { manager, stateDir } = setup(t.testdir());
  const web = desiredPod('web');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  manager.event(web, 'Normal', 'Started', 'Started container app', { name: 'app', kind: 'app' });
  await manager.flush();

  const file = await readStatusFile(stateDir);
  t.match(file, { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String } });
  t.strictSame(file.items, manager.pods(), 'the pods as served');
  t.equal(file.items[0]?.status.phase, 'Running');
  t.match(file.events, [{ reason: 'Started', count: 1, involvedObject: { kind: 'Pod', name: 'web-node1', uid: web.uid, fieldPath: 'spec.containers{app}' } }]);
  t.equal(file.writtenAt, new Date(T0).toISOString());
});

t.test('load: a terminal phase and the events survive a restart of the agent', async (t) => {
  const stateDir = t.testdir();
  const web = desiredPod('web', { restartPolicy: 'Never' });
  const before = setup(stateDir);
  before.manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 0 })])));
  t.equal(only(before.manager).status.phase, 'Succeeded');
  before.manager.event(web, 'Normal', 'Completed', 'Container app completed', { name: 'app', kind: 'app' });
  await before.manager.flush();
  const scheduledAt = only(before.manager).status.conditions.find((condition) => condition.type === 'PodScheduled')?.lastTransitionTime;

  const clock = new FakeClock();
  clock.advance(3_600_000);
  const after = setup(stateDir, { clock });
  await after.manager.load();
  t.equal(only(after.manager).status.phase, 'Succeeded', 'served from the file before any listing');
  t.match(after.manager.events.list(web.uid), [{ reason: 'Completed' }]);

  // Whatever podman shows now (say the pod was started again by hand), Succeeded stays.
  after.manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  const pod = only(after.manager);
  t.equal(pod.status.phase, 'Succeeded');
  t.equal(pod.status.conditions.find((condition) => condition.type === 'PodScheduled')?.lastTransitionTime, scheduledAt, 'an unchanged condition keeps its transition time');
});

t.test('load: a pod of the same name but new content starts afresh', async (t) => {
  const stateDir = t.testdir();
  const old = desiredPod('web', { restartPolicy: 'Never' });
  const before = setup(stateDir);
  before.manager.observe(desiredState(old), listing(observedPod(old, [container('app', 'exited', { exitCode: 0 })])));
  await before.manager.flush();

  const after = setup(stateDir);
  await after.manager.load();
  const edited = desiredPod('web', { restartPolicy: 'Never', containers: [{ name: 'app', image: IMAGE, args: ['--new'] }] });
  t.not(edited.uid, old.uid);
  after.manager.observe(desiredState(edited), listing(observedPod(edited, [container('app', 'running')])));
  t.equal(only(after.manager).status.phase, 'Running');
});

t.test('load: no file, or not a status file, is no state', async (t) => {
  const empty = setup(t.testdir());
  await empty.manager.load();
  t.strictSame(empty.manager.pods(), []);
  const other = setup(t.testdir({ [STATUS_FILE]: JSON.stringify({ kind: 'Something' }) }));
  await other.manager.load();
  t.strictSame(other.manager.pods(), []);
  const { logger, lines } = recordingLogger();
  const corrupt = setup(t.testdir({ [STATUS_FILE]: '{ not json' }), { logger });
  await corrupt.manager.load();
  t.strictSame(corrupt.manager.pods(), [], 'a corrupt file is ignored');
  t.match(lines, [/^warn: state file .*status\.json is corrupt \(.*not valid JSON.*\); set aside as status\.json\.corrupt-/]);
});

t.test('start writes the file on its period while the status changes; stop writes it once more', async (t) => {
  const { manager, stateDir } = setup(t.testdir(), { writeIntervalMs: 10 });
  const web = desiredPod('web');
  const path = join(stateDir, STATUS_FILE);
  manager.start();
  t.teardown(() => manager.stop());
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  let file: StatusFile | undefined;
  for (let attempt = 0; attempt < 100 && !file; attempt++) {
    await sleep(10);
    file = await readStatusFile(stateDir).catch(() => undefined);
  }
  t.equal(file?.items[0]?.status.phase, 'Running', 'written by the timer');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 1 })])));
  await manager.stop();
  const last = JSON.parse(await readFile(path, 'utf8')) as StatusFile;
  t.strictSame(last.items[0]?.status.containerStatuses[0]?.state.waiting, { reason: 'ContainerCreating' }, 'the last status is on disk after stop');
});

t.test('the restart counts a status shows are saved before the status is written', async (t) => {
  const stateDir = t.testdir();
  const order: string[] = [];
  const supervision: Supervision = {
    ...inMemorySupervision(BACKOFF),
    flush: async () => {
      // What is on disk when the supervision state is saved: the status must not be there yet with the new count.
      const status = await readFile(join(stateDir, STATUS_FILE), 'utf8').catch(() => '');
      order.push(`supervision saved (status on disk: ${status.includes('"restartCount":1') ? 'shows 1' : 'not with 1'})`);
    },
  };
  const { manager } = setup(stateDir, { supervision });
  const web = desiredPod('web');
  supervision.recordRestart(backoffKey(web.uid, 'app'), T0);
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  await manager.flush();
  order.push('status written');
  t.same(order, ['supervision saved (status on disk: not with 1)', 'status written']);
  t.equal((JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as StatusFile).items[0]?.status.containerStatuses[0]?.restartCount, 1);
});

t.test('a status file that cannot be written is logged, never thrown', async (t) => {
  const { logger, lines } = recordingLogger();
  const dir = t.testdir({ 'not-a-directory': 'a file' });
  const { manager } = setup(join(dir, 'not-a-directory'), { logger });
  manager.observe(desiredState(desiredPod('web')), listing());
  await manager.flush();
  t.match(lines, [/^error: writing .*status\.json failed: /]);
  await manager.flush();
  t.match(lines, [/^error: /, /^debug: writing .*status\.json failed again/], 'the next write is tried again, and not reported as an error again');
});

t.test('activeDeadlineSeconds past: Failed with DeadlineExceeded, nothing restarted', async (t) => {
  const stateDir = t.testdir();
  const { manager, supervision, clock } = setup(stateDir);
  const web = desiredPod('web', { activeDeadlineSeconds: 60 });
  supervision.setPodStartTime(web.uid, '2024-12-31T23:00:00Z');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  let pod = only(manager);
  t.match(pod.status, { phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', startTime: '2024-12-31T23:00:00Z' });
  t.match(pod.status.conditions.find((condition) => condition.type === 'Ready'), { status: 'False', reason: 'PodFailed' });
  t.equal(printedStatus(pod).status, 'DeadlineExceeded');

  clock.advance(30_000);
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 137 })])));
  pod = only(manager);
  t.equal(pod.status.phase, 'Failed');
  t.match(pod.status.containerStatuses[0]?.state, { terminated: { exitCode: 137, signal: 9, reason: 'Error' } }, 'stopped for good, not waiting to restart');
  await manager.flush();

  const after = setup(stateDir); // a new agent whose supervision has no start time
  await after.manager.load();
  after.manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'exited', { exitCode: 137 })])));
  t.match(only(after.manager).status, { phase: 'Failed', reason: 'DeadlineExceeded' }, 'the deadline verdict is kept');
});

t.test('within activeDeadlineSeconds the pod runs as usual', async (t) => {
  const { manager, supervision } = setup(t.testdir());
  const web = desiredPod('web', { activeDeadlineSeconds: 3600 });
  supervision.setPodStartTime(web.uid, '2024-12-31T23:30:00Z');
  manager.observe(desiredState(web), listing(observedPod(web, [container('app', 'running')])));
  t.equal(only(manager).status.phase, 'Running');
  t.notOk(only(manager).status.reason);
});

// The terminal-phase guard wins over a deadline that passes after the pod ended: the kubelet never
// lets a pod leave Succeeded (generateAPIPodStatus). (Found failing; fixed in 95f90a2.)
t.test('a Succeeded pod stays Succeeded when its deadline passes later', async (t) => {
  const { manager, supervision, clock } = setup(t.testdir());
  const job = desiredPod('job', { restartPolicy: 'Never', activeDeadlineSeconds: 60 });
  supervision.setPodStartTime(job.uid, '2025-01-01T00:00:00Z');
  clock.advance(10_000);
  const done = listing(observedPod(job, [container('app', 'exited', { exitCode: 0 })]));
  manager.observe(desiredState(job), done);
  t.equal(only(manager).status.phase, 'Succeeded');
  clock.advance(120_000);
  manager.observe(desiredState(job), done);
  t.match(only(manager).status, { phase: 'Succeeded' });
  t.notOk(only(manager).status.reason, 'no DeadlineExceeded on a pod that completed in time');
});

// With two podman pods for one key (a replace in flight, or the planner's "duplicate pod for the
// same manifest"), the one whose hash matches the desired pod is described, whatever the listing
// order. (Found failing; fixed in 95f90a2.)
t.test('of two observed pods for one key, the one with the desired hash is the pod', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  const current = observedPod(web, [container('app', 'running')]);
  const stale = observedPod(web, [container('app', 'running', { id: 'ctr-old' })], { id: 'pod-old', hash: '0123456789abcdef' });
  manager.observe(desiredState(web), listing(current, stale));
  t.equal(only(manager).status.phase, 'Running');
  t.equal(only(manager).status.containerStatuses[0]?.containerID, 'podman://ctr-app');
});

// The kubelet's default waiting state is PodInitializing for every container, init containers
// included, whenever the pod has init containers (kubelet_pods.go convertToAPIContainerStatuses,
// defaultWaitingState): kubectl's column reads "Init:0/2", never "Init:ContainerCreating".
// (Found failing; fixed in 95f90a2.)
t.test('a pod with init containers, before podman has it, reads Init:0/2', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web', { initContainers: [{ name: 'migrate', image: IMAGE }, { name: 'seed', image: IMAGE }] });
  manager.observe(desiredState(web), listing());
  const pod = only(manager);
  t.strictSame(pod.status.initContainerStatuses.map((status) => status.state.waiting?.reason), ['PodInitializing', 'PodInitializing']);
  t.strictSame(waitingReasons(pod), ['PodInitializing']);
  t.equal(printedStatus(pod).status, 'Init:0/2');
});

t.test('in a pod with init containers, app containers wait with PodInitializing until created', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web', { initContainers: [{ name: 'migrate', image: IMAGE }, { name: 'proxy', image: IMAGE, restartPolicy: 'Always' }] });
  const init = (name: string, state: ObservedContainer['state'], fields: Partial<ObservedContainer> = {}) => container(name, state, { kind: 'init', ...fields });
  manager.observe(desiredState(web), listing(observedPod(web, [init('migrate', 'running')])));
  let pod = only(manager);
  t.equal(pod.status.phase, 'Pending');
  t.strictSame(waitingReasons(pod), ['PodInitializing']);
  t.equal(printedStatus(pod).status, 'Init:0/2');

  manager.observe(desiredState(web), listing(observedPod(web, [init('migrate', 'exited', { exitCode: 0 }), init('proxy', 'running')])));
  pod = only(manager);
  t.equal(pod.status.phase, 'Pending');
  t.strictSame(waitingReasons(pod), ['PodInitializing'], 'init done, the app container not created yet: still the kubelet\'s default');
  t.match(pod.status.initContainerStatuses, [{ name: 'migrate', ready: true, state: { terminated: { reason: 'Completed' } } }, { name: 'proxy', ready: true, started: true }]);

  manager.observe(desiredState(web), listing(observedPod(web, [init('migrate', 'exited', { exitCode: 0 }), init('proxy', 'running'), container('app', 'running')])));
  pod = only(manager);
  t.equal(pod.status.phase, 'Running');
  t.strictSame(printedStatus(pod), { status: 'Running', ready: '2/2', restarts: '0' });
});

t.test('entering a crash-loop back-off records one BackOff event, not one per recompute', async (t) => {
  const { manager, supervision, clock } = setup(t.testdir());
  const web = desiredPod('web');
  supervision.recordRestart(backoffKey(web.uid, 'app'), T0);
  clock.advance(6000);
  const crashed = listing(observedPod(web, [container('app', 'exited', { exitCode: 1 })]));
  manager.observe(desiredState(web), crashed);
  manager.observe(desiredState(web), crashed);
  manager.refresh();
  const backOff = manager.events.list(web.uid).filter((event) => event.reason === 'BackOff');
  t.equal(backOff.length, 1);
  t.match(backOff[0], { type: 'Warning', count: 1, message: `Back-off restarting failed container app in pod web-node1_default(${web.uid})`, involvedObject: { fieldPath: 'spec.containers{app}' } });
});

t.test('podIP is the pod\'s address from the listing; hostNetwork pods have the host\'s', async (t) => {
  const { manager } = setup(t.testdir());
  const web = desiredPod('web');
  const host = desiredPod('host', { hostNetwork: true });
  manager.observe(desiredState(web, host), listing(observedPod(web, [container('app', 'running')], { podIP: '10.88.0.7' }), observedPod(host, [container('app', 'running')])));
  t.match(only(manager, web.key).status, { podIP: '10.88.0.7', podIPs: [{ ip: '10.88.0.7' }] });
  t.match(only(manager, host.key).status, { podIP: HOST_IP, podIPs: [{ ip: HOST_IP }] });
});

t.test('a manifest problem is part of the status: annotation, ManifestValid=False, in status.json', async (t) => {
  const { manager, stateDir } = setup(t.testdir());
  const pod = desiredPod('web');
  manager.observe(desiredState(pod), { pods: [observedPod(pod, [container('app', 'running')])], foreignPods: 0 });
  manager.setManifestProblems(new Map([[pod.key, { message: 'web.yaml:7:9: spec.containers[0].image: Required', since: '2025-03-01T10:00:00Z' }]]));
  const served = only(manager);
  t.equal(served.metadata.annotations?.[MANIFEST_ERROR_ANNOTATION], 'web.yaml:7:9: spec.containers[0].image: Required');
  t.match(served.status.conditions.at(-1), { type: MANIFEST_VALID_CONDITION, status: 'False', reason: 'ManifestInvalid', message: 'web.yaml:7:9: spec.containers[0].image: Required; running the last good spec', lastTransitionTime: '2025-03-01T10:00:00Z' });
  t.equal(conditionsOf(served).Ready, 'True', 'the kubelet\'s conditions are all still there');
  await manager.flush();
  const file = await readStatusFile(stateDir);
  t.equal(file.items[0]?.status.conditions.at(-1)?.type, MANIFEST_VALID_CONDITION, 'status.json carries it');
  t.equal(file.agent?.pid, process.pid, 'and names the agent that wrote it');
  manager.setManifestProblems(new Map());
  t.equal(only(manager).status.conditions.some((condition) => condition.type === MANIFEST_VALID_CONDITION), false, 'gone once the file is good again');
  t.equal(only(manager).metadata.annotations?.[MANIFEST_ERROR_ANNOTATION], undefined);
});

t.test('staleness: a stopped agent or a status not written for three heartbeats is said so', async (t) => {
  const file: StatusFile = { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items: [], events: [], writtenAt: new Date(T0).toISOString(), agent: { pid: 4242, startedAt: new Date(T0).toISOString() } };
  t.equal(staleness(file, T0 + 1000, () => true), undefined, 'fresh and alive');
  t.match(staleness(file, T0 + 1000, () => false), /the agent is not running \(pid 4242 is gone\): this is what it last wrote, 1s ago/);
  t.match(staleness(file, T0 + 3 * STATUS_HEARTBEAT_MS + 1000, () => true), /last written 9\ds ago: the agent may be stuck/);
  t.equal(agentAlive(2 ** 22 + 1), false, 'a pid no process has');
});
