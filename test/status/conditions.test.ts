// The kubelet-owned pod conditions, one table row per rule of generate.go and the status
// manager's transition times: spec, phase and statuses in, the exact condition out.
import t from 'tap';
import type { Container, PodSpec } from '../../src/manifest/pod-schema.js';
import { apiTime, podConditions, type PodConditionsInput } from '../../src/status/conditions.js';
import type { ContainerState, ContainerStatus, PodCondition, PodConditionType } from '../../src/status/types.js';

const IMAGE = 'localhost/busybox:podvisor';
const AT = '2025-01-01T00:00:00Z';
const NOW = new Date('2025-01-01T00:05:00.750Z');
const NOW_TEXT = '2025-01-01T00:05:00Z';
const BEFORE = '2025-01-01T00:01:00Z';

interface SpecShape {
  init?: string[];
  sidecars?: string[];
  app?: string[];
}

/** A pod spec with the named containers (one app container `app` unless told). */
function spec({ init = [], sidecars = [], app = ['app'] }: SpecShape): PodSpec {
  const container = (name: string): Container => ({ name, image: IMAGE });
  const initContainers = [...init.map(container), ...sidecars.map((name) => ({ ...container(name), restartPolicy: 'Always' as const }))];
  return { containers: app.map(container), ...(initContainers.length > 0 ? { initContainers } : {}) };
}

function status(name: string, state: ContainerState, fields: Partial<ContainerStatus> = {}): ContainerStatus {
  return { name, state, lastState: {}, ready: false, restartCount: 0, image: IMAGE, imageID: '', ...fields };
}

const ready = (name: string): ContainerStatus => status(name, { running: { startedAt: AT } }, { ready: true, started: true });
/** Running and started, but failing its readiness probe. */
const unready = (name: string): ContainerStatus => status(name, { running: { startedAt: AT } }, { ready: false, started: true });
/** Running, not yet past its startup probe. */
const notStarted = (name: string): ContainerStatus => status(name, { running: { startedAt: AT } }, { ready: false, started: false });
/** A regular init container that completed: the kubelet marks it ready. */
const completed = (name: string): ContainerStatus => status(name, { terminated: { exitCode: 0, reason: 'Completed' } }, { ready: true, started: false });
const failed = (name: string): ContainerStatus => status(name, { terminated: { exitCode: 1, reason: 'Error' } }, { started: false });
const waiting = (name: string, reason = 'ContainerCreating'): ContainerStatus => status(name, { waiting: { reason } });

interface Row {
  rule: string;
  type: PodConditionType;
  input: Partial<PodConditionsInput> & { shape?: SpecShape };
  expected: Pick<PodCondition, 'status' | 'reason' | 'message'>;
}

const rows: Row[] = [
  // PodScheduled.
  { rule: 'PodScheduled is True for a static pod, even before anything is reported', type: 'PodScheduled', input: { initContainerStatuses: undefined, containerStatuses: undefined, sandboxReady: false }, expected: { status: 'True' } },

  // PodReadyToStartContainers.
  { rule: 'PodReadyToStartContainers is True once the sandbox has its network', type: 'PodReadyToStartContainers', input: { sandboxReady: true }, expected: { status: 'True' } },
  { rule: 'PodReadyToStartContainers is False while the sandbox is missing', type: 'PodReadyToStartContainers', input: { sandboxReady: false }, expected: { status: 'False' } },

  // Initialized.
  { rule: 'Initialized is True with no init containers', type: 'Initialized', input: { containerStatuses: [waiting('app')] }, expected: { status: 'True' } },
  { rule: 'Initialized is True with no init containers even before anything is reported', type: 'Initialized', input: { initContainerStatuses: undefined, containerStatuses: undefined }, expected: { status: 'True' } },
  { rule: 'Initialized says UnknownContainerStatuses when init containers exist and nothing is reported', type: 'Initialized', input: { shape: { init: ['setup'] }, initContainerStatuses: undefined, containerStatuses: undefined }, expected: { status: 'False', reason: 'UnknownContainerStatuses' } },
  { rule: 'Initialized names the init containers that have not completed, in spec order', type: 'Initialized', input: { shape: { init: ['a', 'b'] }, initContainerStatuses: [unready('a'), waiting('b')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [a b]' } },
  { rule: 'Initialized counts a failed init container as incomplete', type: 'Initialized', input: { shape: { init: ['a'] }, initContainerStatuses: [failed('a')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [a]' } },
  { rule: 'Initialized names init containers without a status as unknown', type: 'Initialized', input: { shape: { init: ['a', 'b'] }, initContainerStatuses: [completed('a')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with unknown status: [b]' } },
  { rule: 'Initialized lists unknown before incomplete, joined by a comma', type: 'Initialized', input: { shape: { init: ['a', 'b'] }, initContainerStatuses: [waiting('a')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with unknown status: [b], containers with incomplete status: [a]' } },
  { rule: 'Initialized is True once every regular init container is ready (completed)', type: 'Initialized', input: { shape: { init: ['a', 'b'] }, initContainerStatuses: [completed('a'), completed('b')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'True' } },
  { rule: 'Initialized wants a sidecar started, not ready', type: 'Initialized', input: { shape: { sidecars: ['proxy'] }, initContainerStatuses: [unready('proxy')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'True' } },
  { rule: 'Initialized counts a sidecar not yet started as incomplete', type: 'Initialized', input: { shape: { sidecars: ['proxy'] }, initContainerStatuses: [notStarted('proxy')], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [proxy]' } },
  { rule: 'Initialized counts a sidecar with no started flag as incomplete', type: 'Initialized', input: { shape: { sidecars: ['proxy'] }, initContainerStatuses: [status('proxy', { running: {} }, { ready: true })], containerStatuses: [waiting('app', 'PodInitializing')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [proxy]' } },
  { rule: 'Initialized stays True while a sidecar restarts after an app container has run', type: 'Initialized', input: { shape: { sidecars: ['proxy'] }, initContainerStatuses: [notStarted('proxy')], containerStatuses: [ready('app')] }, expected: { status: 'True' } },
  { rule: 'Initialized says PodCompleted for a Succeeded pod whose init containers are all known', type: 'Initialized', input: { phase: 'Succeeded', shape: { init: ['a'] }, initContainerStatuses: [failed('a')], containerStatuses: [waiting('app')] }, expected: { status: 'True', reason: 'PodCompleted' } },
  { rule: 'Initialized does not say PodCompleted for a Succeeded pod with an unknown init container', type: 'Initialized', input: { phase: 'Succeeded', shape: { init: ['a'] }, initContainerStatuses: [], containerStatuses: [waiting('app')] }, expected: { status: 'False', reason: 'ContainersNotInitialized', message: 'containers with unknown status: [a]' } },

  // ContainersReady.
  { rule: 'ContainersReady says UnknownContainerStatuses when nothing is reported, whatever the phase', type: 'ContainersReady', input: { phase: 'Succeeded', initContainerStatuses: undefined, containerStatuses: undefined }, expected: { status: 'False', reason: 'UnknownContainerStatuses' } },
  { rule: 'ContainersReady is True when every app container is ready', type: 'ContainersReady', input: { shape: { app: ['app', 'log'] }, containerStatuses: [ready('app'), ready('log')] }, expected: { status: 'True' } },
  { rule: 'ContainersReady names the unready app containers', type: 'ContainersReady', input: { shape: { app: ['app', 'log'] }, containerStatuses: [unready('app'), ready('log')] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' } },
  { rule: 'ContainersReady names app containers without a status as unknown', type: 'ContainersReady', input: { shape: { app: ['app', 'log'] }, containerStatuses: [ready('app')] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unknown status: [log]' } },
  { rule: 'ContainersReady lists unknown before unready', type: 'ContainersReady', input: { shape: { app: ['app', 'log'] }, containerStatuses: [waiting('app')] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unknown status: [log], containers with unready status: [app]' } },
  { rule: 'ContainersReady counts sidecars, before the app containers', type: 'ContainersReady', input: { shape: { sidecars: ['proxy'] }, initContainerStatuses: [notStarted('proxy')], containerStatuses: [unready('app')] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [proxy app]' } },
  { rule: 'ContainersReady ignores regular init containers', type: 'ContainersReady', input: { shape: { init: ['setup'] }, initContainerStatuses: [failed('setup')], containerStatuses: [ready('app')] }, expected: { status: 'True' } },
  { rule: 'ContainersReady says PodCompleted for a Succeeded pod whose containers are all known', type: 'ContainersReady', input: { phase: 'Succeeded', containerStatuses: [status('app', { terminated: { exitCode: 0 } })] }, expected: { status: 'False', reason: 'PodCompleted' } },
  { rule: 'ContainersReady does not say PodCompleted for a Succeeded pod with an unknown container', type: 'ContainersReady', input: { phase: 'Succeeded', shape: { app: ['app', 'log'] }, containerStatuses: [status('app', { terminated: { exitCode: 0 } })] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unknown status: [log], containers with unready status: [app]' } },
  { rule: 'ContainersReady says PodFailed for a Failed pod, even with ready containers', type: 'ContainersReady', input: { phase: 'Failed', containerStatuses: [ready('app')] }, expected: { status: 'False', reason: 'PodFailed' } },

  // Ready.
  { rule: 'Ready is True when the containers are ready', type: 'Ready', input: { containerStatuses: [ready('app')] }, expected: { status: 'True' } },
  { rule: 'Ready repeats ContainersNotReady and its message', type: 'Ready', input: { shape: { app: ['app', 'log'] }, containerStatuses: [unready('app'), ready('log')] }, expected: { status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' } },
  { rule: 'Ready says PodCompleted for a Succeeded pod', type: 'Ready', input: { phase: 'Succeeded', containerStatuses: [status('app', { terminated: { exitCode: 0 } })] }, expected: { status: 'False', reason: 'PodCompleted' } },
  { rule: 'Ready says PodFailed for a Failed pod', type: 'Ready', input: { phase: 'Failed', containerStatuses: [status('app', { terminated: { exitCode: 1 } })] }, expected: { status: 'False', reason: 'PodFailed' } },
  { rule: 'Ready says UnknownContainerStatuses when nothing is reported', type: 'Ready', input: { initContainerStatuses: undefined, containerStatuses: undefined }, expected: { status: 'False', reason: 'UnknownContainerStatuses' } },
];

/** The input for a row: a running pod whose single app container is ready, unless the row says otherwise. */
function inputFor(row: Row['input']): PodConditionsInput {
  const { shape, ...rest } = row;
  const base: PodConditionsInput = { spec: spec(shape ?? {}), phase: 'Running', initContainerStatuses: [], containerStatuses: [ready('app')], sandboxReady: true, now: NOW };
  return { ...base, ...rest };
}

t.test('podConditions: one rule per row', async (t) => {
  t.equal(new Set(rows.map((row) => row.rule)).size, rows.length, 'every rule is named once');
  for (const row of rows) {
    const condition = podConditions(inputFor(row.input)).find((item) => item.type === row.type);
    t.strictSame(condition, { type: row.type, ...row.expected, lastProbeTime: null, lastTransitionTime: NOW_TEXT }, row.rule);
  }
});

t.test('the five conditions, in the order the kubelet writes them', async (t) => {
  const conditions = podConditions(inputFor({}));
  t.strictSame(
    conditions.map((condition) => condition.type),
    ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'],
  );
});

const since = (type: PodConditionType, status: PodCondition['status'], extra: Partial<PodCondition> = {}): PodCondition => ({
  type,
  status,
  lastProbeTime: null,
  lastTransitionTime: BEFORE,
  ...extra,
});

const transitionRows: { rule: string; input: Row['input']; previous: PodCondition[]; expected: string }[] = [
  { rule: 'with no previous condition the transition is now', input: {}, previous: [], expected: NOW_TEXT },
  { rule: 'an unchanged status keeps the previous transition time', input: {}, previous: [since('Ready', 'True')], expected: BEFORE },
  {
    rule: 'only the status counts: a new reason or message keeps the transition time',
    input: { shape: { app: ['app', 'log'] }, containerStatuses: [unready('app'), ready('log')] },
    previous: [since('Ready', 'False', { reason: 'ContainersNotReady', message: 'containers with unready status: [log]' })],
    expected: BEFORE,
  },
  { rule: 'a changed status transitions now', input: {}, previous: [since('Ready', 'False', { reason: 'ContainersNotReady' })], expected: NOW_TEXT },
  { rule: 'a previous condition of another type does not count', input: {}, previous: [since('ContainersReady', 'True')], expected: NOW_TEXT },
];

t.test('lastTransitionTime, by the status manager\'s updateLastTransitionTime (checked on Ready)', async (t) => {
  for (const row of transitionRows) {
    const ready = podConditions({ ...inputFor(row.input), previous: row.previous }).find((item) => item.type === 'Ready');
    t.equal(ready?.lastTransitionTime, row.expected, row.rule);
  }
});

t.test('every condition keeps or takes its own transition time', async (t) => {
  const previous = [since('PodScheduled', 'True'), since('Initialized', 'True'), since('ContainersReady', 'False'), since('Ready', 'False')];
  const conditions = podConditions({ ...inputFor({}), previous });
  t.strictSame(
    Object.fromEntries(conditions.map((condition) => [condition.type, condition.lastTransitionTime])),
    { PodReadyToStartContainers: NOW_TEXT, Initialized: BEFORE, Ready: NOW_TEXT, ContainersReady: NOW_TEXT, PodScheduled: BEFORE },
  );
});

t.test('apiTime: RFC 3339 in UTC, whole seconds', async (t) => {
  t.equal(apiTime(new Date('2025-03-04T05:06:07.999Z')), '2025-03-04T05:06:07Z');
  t.equal(apiTime(new Date('2025-03-04T05:06:07Z')), '2025-03-04T05:06:07Z');
});
