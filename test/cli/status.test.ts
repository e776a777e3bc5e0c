// `podvisor status`: the READY, STATUS and RESTARTS columns by kubectl's printPod
// (pkg/printers/internalversion/printers.go), and ages by apimachinery's duration.HumanDuration.
// Pods are written by hand as the status manager serves them; "now" is a fake clock.
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { stdoutOf } from '../support/recording.js';
import { statusCommand } from '../../src/cli/status.js';
import { humanDuration, printedStatus } from '../../src/status/printers.js';
import { readStatusFile } from '../../src/cli/read-status.js';
import type { Container } from '../../src/manifest/pod-schema.js';
import { STATUS_FILE, type StatusFile, type StatusPod } from '../../src/status/status-manager.js';
import type { ConditionStatus, ContainerState, ContainerStatus, PodConditionType, PodPhase } from '../../src/status/types.js';

const IMAGE = 'localhost/busybox:podvisor';
const NOW = Date.parse('2025-01-01T12:00:00Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Replaces Date.now with a fake clock at NOW for one test; printedStatus ages restarts from it. */
function fakeNow(t: Test): void {
  const realNow = Date.now;
  Date.now = () => NOW;
  t.teardown(() => {
    Date.now = realNow;
  });
}

const ago = (ms: number) => new Date(NOW - ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function status(name: string, state: ContainerState, fields: Partial<ContainerStatus> = {}): ContainerStatus {
  return { name, state, lastState: {}, ready: false, started: false, restartCount: 0, image: IMAGE, imageID: '', ...fields };
}
const running = (name: string, fields: Partial<ContainerStatus> = {}) => status(name, { running: { startedAt: ago(HOUR) } }, { ready: true, started: true, ...fields });
const waiting = (name: string, reason: string, fields: Partial<ContainerStatus> = {}) => status(name, { waiting: { reason } }, fields);
const terminated = (name: string, exitCode: number, reason?: string, extra: { signal?: number } = {}) =>
  status(name, { terminated: { exitCode, ...extra, ...(reason ? { reason } : {}), finishedAt: ago(MINUTE) } });
/** A run that ended `msAgo` before now, as lastState. */
const endedAgo = (msAgo: number): ContainerState => ({ terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(msAgo) } });

interface PodShape {
  init?: string[];
  sidecars?: string[];
  app?: string[];
  phase?: PodPhase;
  reason?: string;
  initStatuses?: ContainerStatus[];
  statuses: ContainerStatus[];
  conditions?: Partial<Record<PodConditionType, ConditionStatus>>;
}

/** A served pod with these containers and statuses. */
function pod(shape: PodShape): StatusPod {
  const container = (name: string): Container => ({ name, image: IMAGE });
  const initContainers = [...(shape.init ?? []).map(container), ...(shape.sidecars ?? []).map((name) => ({ ...container(name), restartPolicy: 'Always' as const }))];
  const conditions = Object.entries(shape.conditions ?? {}).map(([type, value]) => ({ type: type as PodConditionType, status: value, lastProbeTime: null, lastTransitionTime: ago(HOUR) }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-node1', namespace: 'default', uid: 'uid-1' },
    spec: { containers: (shape.app ?? ['app']).map(container), ...(initContainers.length > 0 ? { initContainers } : {}) },
    status: {
      phase: shape.phase ?? 'Running',
      ...(shape.reason ? { reason: shape.reason } : {}),
      conditions,
      qosClass: 'BestEffort',
      initContainerStatuses: shape.initStatuses ?? [],
      containerStatuses: shape.statuses,
    },
  };
}

interface Row {
  rule: string;
  pod: PodShape;
  expected: { status: string; ready: string; restarts: string };
}

const rows: Row[] = [
  { rule: 'one running ready container: Running 1/1', pod: { statuses: [running('app')], conditions: { Ready: 'True' } }, expected: { status: 'Running', ready: '1/1', restarts: '0' } },
  { rule: 'a running container failing readiness is not counted ready', pod: { statuses: [running('app', { ready: false })] }, expected: { status: 'Running', ready: '0/1', restarts: '0' } },
  { rule: 'ContainerCreating before anything runs', pod: { phase: 'Pending', statuses: [waiting('app', 'ContainerCreating')] }, expected: { status: 'ContainerCreating', ready: '0/1', restarts: '0' } },
  {
    rule: 'a crash loop shows CrashLoopBackOff and the restarts with the last one\'s age',
    pod: { statuses: [waiting('app', 'CrashLoopBackOff', { restartCount: 3, lastState: endedAgo(45 * SECOND) })] },
    expected: { status: 'CrashLoopBackOff', ready: '0/1', restarts: '3 (45s ago)' },
  },
  {
    rule: 'restarts add up over containers; the age is the latest restart\'s',
    pod: { app: ['app', 'log'], statuses: [running('app', { restartCount: 2, lastState: endedAgo(20 * MINUTE) }), running('log', { restartCount: 1, lastState: endedAgo(3 * MINUTE + 12 * SECOND) })] },
    expected: { status: 'Running', ready: '2/2', restarts: '3 (3m12s ago)' },
  },
  { rule: 'restarts with no known end have no age', pod: { statuses: [running('app', { restartCount: 4 })] }, expected: { status: 'Running', ready: '1/1', restarts: '4' } },
  { rule: 'the pod\'s reason wins while containers run', pod: { phase: 'Failed', reason: 'DeadlineExceeded', statuses: [running('app', { ready: false })] }, expected: { status: 'DeadlineExceeded', ready: '0/1', restarts: '0' } },

  // Init containers: the first that blocks decides.
  { rule: 'the first init container running: Init:0/2', pod: { phase: 'Pending', init: ['migrate', 'seed'], initStatuses: [running('migrate', { ready: false }), waiting('seed', 'PodInitializing')], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:0/2', ready: '0/1', restarts: '0' } },
  { rule: 'the second init container running: Init:1/2', pod: { phase: 'Pending', init: ['migrate', 'seed'], initStatuses: [terminated('migrate', 0, 'Completed'), running('seed', { ready: false })], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:1/2', ready: '0/1', restarts: '0' } },
  { rule: 'an init container that failed: Init:Error', pod: { phase: 'Failed', init: ['migrate', 'seed'], initStatuses: [terminated('migrate', 1, 'Error'), waiting('seed', 'PodInitializing')], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:Error', ready: '0/1', restarts: '0' } },
  { rule: 'an init container terminated by a signal, no reason: Init:Signal:9', pod: { phase: 'Failed', init: ['migrate'], initStatuses: [terminated('migrate', 137, undefined, { signal: 9 })], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:Signal:9', ready: '0/1', restarts: '0' } },
  { rule: 'an init container with only an exit code: Init:ExitCode:2', pod: { phase: 'Failed', init: ['migrate'], initStatuses: [terminated('migrate', 2)], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:ExitCode:2', ready: '0/1', restarts: '0' } },
  {
    rule: 'an init container in a crash loop: Init:CrashLoopBackOff, its restarts counted',
    pod: { phase: 'Pending', init: ['migrate'], initStatuses: [waiting('migrate', 'CrashLoopBackOff', { restartCount: 2, lastState: endedAgo(10 * SECOND) })], statuses: [waiting('app', 'PodInitializing')] },
    expected: { status: 'Init:CrashLoopBackOff', ready: '0/1', restarts: '2 (10s ago)' },
  },
  { rule: 'an init container waiting on an image: Init:ErrImagePull', pod: { phase: 'Pending', init: ['migrate'], initStatuses: [waiting('migrate', 'ErrImagePull')], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:ErrImagePull', ready: '0/1', restarts: '0' } },

  // Run-to-completion pods.
  { rule: 'every container done: Completed', pod: { phase: 'Succeeded', statuses: [terminated('app', 0, 'Completed')] }, expected: { status: 'Completed', ready: '0/1', restarts: '0' } },
  { rule: 'a container failed: Error', pod: { phase: 'Failed', statuses: [terminated('app', 1, 'Error')] }, expected: { status: 'Error', ready: '0/1', restarts: '0' } },
  { rule: 'a container killed, no reason: Signal:9', pod: { phase: 'Failed', statuses: [terminated('app', 137, undefined, { signal: 9 })] }, expected: { status: 'Signal:9', ready: '0/1', restarts: '0' } },
  { rule: 'a container exited, no reason: ExitCode:3', pod: { phase: 'Failed', statuses: [terminated('app', 3)] }, expected: { status: 'ExitCode:3', ready: '0/1', restarts: '0' } },
  { rule: 'one completed, one running, pod Ready: Running', pod: { app: ['job', 'web'], statuses: [terminated('job', 0, 'Completed'), running('web')], conditions: { Ready: 'True' } }, expected: { status: 'Running', ready: '1/2', restarts: '0' } },
  { rule: 'one completed, one running, pod not Ready: NotReady', pod: { app: ['job', 'web'], statuses: [terminated('job', 0, 'Completed'), running('web')], conditions: { Ready: 'False' } }, expected: { status: 'NotReady', ready: '1/2', restarts: '0' } },
  { rule: 'the first container\'s state is the one printed (kubectl walks them in reverse)', pod: { app: ['a', 'b'], statuses: [waiting('a', 'CrashLoopBackOff'), terminated('b', 1, 'Error')] }, expected: { status: 'CrashLoopBackOff', ready: '0/2', restarts: '0' } },

  // Sidecars count in READY; once started they do not block.
  { rule: 'a started, ready sidecar counts in READY', pod: { sidecars: ['proxy'], initStatuses: [running('proxy')], statuses: [running('app')], conditions: { Ready: 'True' } }, expected: { status: 'Running', ready: '2/2', restarts: '0' } },
  { rule: 'a started sidecar failing readiness is not ready but does not block', pod: { sidecars: ['proxy'], initStatuses: [running('proxy', { ready: false })], statuses: [running('app')] }, expected: { status: 'Running', ready: '1/2', restarts: '0' } },
  { rule: 'a sidecar not yet started blocks: Init:0/1', pod: { phase: 'Pending', sidecars: ['proxy'], initStatuses: [running('proxy', { ready: false, started: false })], statuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'Init:0/1', ready: '0/2', restarts: '0' } },
  {
    rule: 'a regular init container then a sidecar, both through: the app\'s state',
    pod: { init: ['migrate'], sidecars: ['proxy'], initStatuses: [terminated('migrate', 0, 'Completed'), running('proxy')], statuses: [running('app')], conditions: { Ready: 'True' } },
    expected: { status: 'Running', ready: '2/2', restarts: '0' },
  },
  {
    rule: 'sidecar restarts count',
    pod: { sidecars: ['proxy'], initStatuses: [running('proxy', { restartCount: 1, lastState: endedAgo(5 * HOUR) })], statuses: [running('app')] },
    expected: { status: 'Running', ready: '2/2', restarts: '1 (5h ago)' },
  },
];

t.test('printedStatus: one rule per row', async (t) => {
  fakeNow(t);
  t.equal(new Set(rows.map((row) => row.rule)).size, rows.length, 'every rule is named once');
  for (const row of rows) t.strictSame(printedStatus(pod(row.pod)), row.expected, row.rule);
});

// BUG (src/cli/status.ts, printedStatus): once the pod is initialized kubectl counts only sidecar and
// app container restarts (`restarts = restartableInitContainerRestarts`); podvisor keeps adding
// those of the regular init containers, with their age.
t.test('restarts of completed regular init containers are not counted once initialized', async (t) => {
  fakeNow(t);
  const initialized = pod({
    init: ['migrate'],
    initStatuses: [status('migrate', { terminated: { exitCode: 0, reason: 'Completed', finishedAt: ago(HOUR) } }, { ready: true, restartCount: 2, lastState: endedAgo(2 * HOUR) })],
    statuses: [running('app')],
    conditions: { Initialized: 'True', Ready: 'True' },
  });
  t.strictSame(printedStatus(initialized), { status: 'Running', ready: '1/1', restarts: '0' });
});

// BUG (src/cli/status.ts, printedStatus): kubectl walks the app containers whenever the Initialized
// condition is True (`!initializing || isPodInitializedConditionTrue`), so a sidecar restarting
// after the pod started still lets the app containers' restarts count.
t.test('a sidecar restarting in an initialized pod: the app containers still count', async (t) => {
  fakeNow(t);
  const restarting = pod({
    sidecars: ['proxy'],
    initStatuses: [waiting('proxy', 'CrashLoopBackOff', { restartCount: 1, lastState: endedAgo(2 * MINUTE) })],
    statuses: [running('app', { restartCount: 2, lastState: endedAgo(10 * MINUTE) })],
    conditions: { Initialized: 'True', Ready: 'False' },
  });
  t.strictSame(printedStatus(restarting), { status: 'Init:CrashLoopBackOff', ready: '1/2', restarts: '3 (2m ago)' });
});

const s = (seconds: number) => seconds * SECOND;
const durations: [number, string][] = [
  [0, '0s'],
  [999, '0s'],
  [s(45), '45s'],
  [s(45) + 999, '45s'],
  [s(119), '119s'],
  [s(120), '2m'],
  [s(192), '3m12s'],
  [9 * MINUTE + s(59), '9m59s'],
  [10 * MINUTE, '10m'],
  [10 * MINUTE + s(30), '10m'],
  [179 * MINUTE, '179m'],
  [3 * HOUR, '3h'],
  [3 * HOUR + 25 * MINUTE, '3h25m'],
  [5 * HOUR, '5h'],
  [7 * HOUR + 59 * MINUTE, '7h59m'],
  [8 * HOUR + 30 * MINUTE, '8h'],
  [47 * HOUR, '47h'],
  [48 * HOUR, '2d'],
  [2 * DAY + 3 * HOUR, '2d3h'],
  [7 * DAY + 23 * HOUR, '7d23h'],
  [8 * DAY + 5 * HOUR, '8d'],
  [400 * DAY, '400d'],
  [729 * DAY, '729d'],
  [-s(1), '0s'], // kubectl allows a second of clock skew
];

t.test('humanDuration: kubectl\'s ages (duration.HumanDuration)', async (t) => {
  for (const [ms, text] of durations) t.equal(humanDuration(ms), text, `${ms}ms is ${text}`);
});

// BUG (src/cli/read-status.ts, humanDuration): apimachinery's HumanDuration goes on to years from
// two years (24*365*2 hours): "2y", "2y70d", then whole years from eight years; podvisor stays in days.
t.test('humanDuration: two years and more are written in years, as kubectl does', async (t) => {
  t.equal(humanDuration(730 * DAY), '2y');
  t.equal(humanDuration(800 * DAY), '2y70d');
  t.equal(humanDuration(3000 * DAY), '8y');
});

// BUG (src/cli/read-status.ts, humanDuration): HumanDuration answers "<invalid>" for a time more
// than a second in the future (clock skew); podvisor says "0s".
t.test('humanDuration: a time well in the future is <invalid>, as kubectl says', async (t) => {
  t.equal(humanDuration(-s(5)), '<invalid>');
});

function statusFile(items: StatusPod[]): string {
  const file: StatusFile = { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '7' }, items, events: [], writtenAt: new Date(NOW).toISOString() };
  return JSON.stringify(file);
}

t.test('statusCommand: kubectl\'s table, one pod a row', async (t) => {
  fakeNow(t);
  const web = pod({ statuses: [waiting('app', 'CrashLoopBackOff', { restartCount: 3, lastState: endedAgo(45 * SECOND) })] });
  web.status.startTime = ago(2 * DAY + 3 * HOUR);
  const db: StatusPod = { ...pod({ statuses: [running('app')] }), metadata: { name: 'db-node1', namespace: 'infra', uid: 'uid-2' } };
  const stateDir = t.testdir({ [STATUS_FILE]: statusFile([db, web]) });
  const { code, text } = await stdoutOf(() => statusCommand({ stateDir }));
  t.equal(code, 0);
  const rows = text.trimEnd().split('\n').map((line) => line.split(/\s{2,}/));
  t.strictSame(rows, [
    ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
    ['infra', 'db-node1', '1/1', 'Running', '0', '<unknown>'],
    ['default', 'web-node1', '0/1', 'CrashLoopBackOff', '3 (45s ago)', '2d3h'],
  ]);
  const header = text.split('\n')[0] ?? '';
  t.equal(text.split('\n')[1]?.indexOf('db-node1'), header.search(/\bNAME\b/), 'columns are aligned');
});

t.test('statusCommand: no pods found', async (t) => {
  const stateDir = t.testdir({ [STATUS_FILE]: statusFile([]) });
  t.strictSame(await stdoutOf(() => statusCommand({ stateDir })), { code: 0, text: 'No pods found.\n' });
});

t.test('statusCommand -o json: a v1 PodList of the pods as served', async (t) => {
  const web = pod({ statuses: [running('app')] });
  const stateDir = t.testdir({ [STATUS_FILE]: statusFile([web]) });
  const { code, text } = await stdoutOf(() => statusCommand({ stateDir, output: 'json' }));
  t.equal(code, 0);
  t.strictSame(JSON.parse(text), { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '7' }, items: [web] });
});

t.test('statusCommand -o wide: kubectl\'s wide columns, IP and NODE', async (t) => {
  fakeNow(t);
  const web = pod({ statuses: [running('app')] });
  web.status.podIP = '10.88.0.7';
  web.spec.nodeName = 'node1';
  const stateDir = t.testdir({ [STATUS_FILE]: statusFile([web]) });
  const { code, text } = await stdoutOf(() => statusCommand({ stateDir, output: 'wide' }));
  t.equal(code, 0);
  const rows = text.trimEnd().split('\n').map((line) => line.split(/\s{2,}/));
  t.strictSame(rows[0], ['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE']);
  t.strictSame(rows[1]?.slice(-2), ['10.88.0.7', 'node1']);
});

t.test('statusCommand -o yaml: the same PodList as -o json', async (t) => {
  const web = pod({ statuses: [running('app')] });
  const stateDir = t.testdir({ [STATUS_FILE]: statusFile([web]) });
  const yaml = await stdoutOf(() => statusCommand({ stateDir, output: 'yaml' }));
  const json = await stdoutOf(() => statusCommand({ stateDir, output: 'json' }));
  t.equal(yaml.code, 0);
  t.match(yaml.text, /^apiVersion: v1\nkind: PodList\n/);
  t.strictSame(parse(yaml.text), JSON.parse(json.text));
});

t.test('readStatusFile: a clear error without a status file, or with another file', async (t) => {
  const missing = t.testdir();
  await t.rejects(readStatusFile(missing), { code: 'E_CONFIG', message: /no status at .*status\.json: is the agent running with --state-dir/ });
  const other = t.testdir({ [STATUS_FILE]: JSON.stringify({ kind: 'Pod' }) });
  await t.rejects(readStatusFile(other), { code: 'E_CONFIG', message: /is not a podvisor status file/ });
});
