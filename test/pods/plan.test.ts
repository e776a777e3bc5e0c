// The planner's rules, one table row each: what the files ask for and what podman has go in, a
// plain list of actions (and the time to look again) comes out. Pure: no runtime, no clock.
import t from 'tap';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { PodManifest, PodSpec } from '../../src/manifest/pod-schema.js';
import { Backoff, backoffKey } from '../../src/pods/backoff.js';
import { planPods, shouldRestart, type BackoffView, type PlanInput, type PodAction } from '../../src/pods/plan.js';
import type { ObservedContainer, ObservedPod } from '../../src/runtime/types.js';

const NODE = 'node1';
const SOURCE = '/etc/podvisor/manifests.d/web.yaml';
const DELAY = 10_000;

/**
 * A fake back-off with one fixed delay for every container, as for containers that have all
 * crashed before (the real doubling back-off is tested in backoff.test.ts and below).
 */
const FIXED_BACKOFF: BackoffView = {
  verdict: (_key, finishedAt, now) =>
    finishedAt === undefined ? { waiting: false, until: now, delayMs: 0 } : { waiting: now < finishedAt + DELAY, until: finishedAt + DELAY, delayMs: DELAY },
};
const T0 = 1_700_000_000_123; // not on a whole second: podman's whole-second exit times are tested on their own

/** A desired pod from a small manifest: `web` with one `app` container unless `spec` says more. */
function desiredPod(spec: Partial<PodSpec> = {}, name = 'web', source = SOURCE): DesiredPod {
  const manifest: PodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'app', image: 'localhost/busybox:podvisor' }], ...spec },
  };
  return toDesiredPod(manifest, source, NODE, new Date(T0));
}

/** A container as a listing would show it; running unless `fields` say otherwise. */
function container(name: string, fields: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `ctr-${name}`,
    name,
    kind: 'app',
    state: 'running',
    exitCode: undefined,
    startedAt: new Date(T0 - 60_000),
    finishedAt: undefined,
    image: 'localhost/busybox:podvisor',
    imageId: '',
    pid: undefined,
    ...fields,
  };
}

/** An exited container that finished at `finishedAt`. */
function exited(name: string, exitCode: number, finishedAt: number, kind: 'app' | 'init' = 'app'): ObservedContainer {
  return container(name, { kind, state: 'exited', exitCode, finishedAt: new Date(finishedAt) });
}

/** The pod podman has for `desired` (same identity and hash), with the given containers. */
function observedPod(desired: DesiredPod, containers: ObservedContainer[], fields: Partial<ObservedPod> = {}): ObservedPod {
  return {
    id: `pod-${desired.name}`,
    podmanName: `${desired.namespace}_${desired.name}`,
    key: desired.key,
    name: desired.name,
    namespace: desired.namespace,
    uid: desired.uid,
    hash: desired.hash,
    source: desired.source,
    gracePeriodSeconds: 30,
    infraRunning: true,
    containers,
    ...fields,
  };
}

/** An action reduced to what identifies it, so rows compare whole lists exactly. */
function summary(action: PodAction): Record<string, unknown> {
  switch (action.kind) {
    case 'createPod': return { kind: action.kind, key: action.key, hash: action.desired.hash };
    case 'replacePod': return { kind: action.kind, key: action.key, pod: action.observed.id, hash: action.desired.hash };
    case 'removePod': return { kind: action.kind, key: action.key, pod: action.observed.id };
    case 'createContainers': return { kind: action.kind, key: action.key, pod: action.observed.id, names: action.names };
    case 'restartContainers': return { kind: action.kind, key: action.key, pod: action.observed.id, containers: action.containers.map((one) => one.id) };
    case 'stopPod': return { kind: action.kind, key: action.key, pod: action.observed.id };
    case 'stopContainer': return { kind: action.kind, key: action.key, pod: action.observed.id, container: action.kill.containerId };
  }
}

interface Row {
  name: string;
  desired?: DesiredPod[];
  observed?: ObservedPod[];
  erroredSources?: string[];
  busy?: string[];
  now?: number;
  actions: Record<string, unknown>[];
  kept?: string[];
  wakeAt?: number;
}

const web = desiredPod();
const webChanged = desiredPod({ terminationGracePeriodSeconds: 5 });
const always = desiredPod({ restartPolicy: 'Always' });
const onFailure = desiredPod({ restartPolicy: 'OnFailure' });
const never = desiredPod({ restartPolicy: 'Never' });
const twoContainers = desiredPod({ containers: [{ name: 'app', image: 'localhost/busybox:podvisor' }, { name: 'sidecar', image: 'localhost/busybox:podvisor' }] });
const withInit = (restartPolicy: 'Always' | 'OnFailure' | 'Never') => desiredPod({ restartPolicy, initContainers: [{ name: 'setup', image: 'localhost/busybox:podvisor' }] });
const other = desiredPod({}, 'db', '/etc/podvisor/manifests.d/db.yaml');
const KEY = 'default/web-node1';

const rows: Row[] = [
  {
    name: 'a new manifest is created',
    desired: [web],
    actions: [{ kind: 'createPod', key: KEY, hash: web.hash }],
  },
  {
    name: 'a pod with the same hash and running containers needs nothing',
    desired: [web],
    observed: [observedPod(web, [container('app')])],
    actions: [],
  },
  {
    name: 'a pod whose hash differs is replaced',
    desired: [webChanged],
    observed: [observedPod(web, [container('app')])],
    actions: [{ kind: 'replacePod', key: KEY, pod: 'pod-web-node1', hash: webChanged.hash }],
  },
  {
    name: 'a pod no manifest asks for is killed',
    desired: [other],
    observed: [observedPod(web, [container('app')]), observedPod(other, [container('app')])],
    actions: [{ kind: 'removePod', key: KEY, pod: 'pod-web-node1' }],
  },
  {
    name: 'a pod whose file has errors is kept, not killed',
    observed: [observedPod(web, [container('app')])],
    erroredSources: [SOURCE],
    actions: [],
    kept: [KEY],
  },
  {
    name: 'an errored file keeps only its own pods',
    observed: [observedPod(web, [container('app')]), observedPod(other, [container('app')])],
    erroredSources: ['/etc/podvisor/manifests.d/db.yaml'],
    actions: [{ kind: 'removePod', key: KEY, pod: 'pod-web-node1' }],
    kept: ['default/db-node1'],
  },
  {
    name: 'of two pods for one key, the one without the desired hash is killed',
    desired: [webChanged],
    observed: [
      observedPod(web, [container('app')], { id: 'pod-old' }),
      observedPod(webChanged, [container('app')], { id: 'pod-new' }),
    ],
    actions: [{ kind: 'removePod', key: KEY, pod: 'pod-old' }],
  },
  {
    name: 'two pods for a key no manifest asks for are both killed',
    observed: [
      observedPod(web, [container('app')], { id: 'pod-a' }),
      observedPod(web, [container('app')], { id: 'pod-b' }),
    ],
    actions: [{ kind: 'removePod', key: KEY, pod: 'pod-b' }, { kind: 'removePod', key: KEY, pod: 'pod-a' }],
  },
  {
    name: 'a busy key is not planned: no replace',
    desired: [webChanged],
    observed: [observedPod(web, [container('app')])],
    busy: [KEY],
    actions: [],
  },
  {
    name: 'a busy key is not planned: no create, no kill',
    desired: [web],
    observed: [observedPod(other, [container('app')])],
    busy: [KEY, 'default/db-node1'],
    actions: [],
  },
  {
    name: 'Always: an exited container is started once its delay has passed',
    desired: [always],
    observed: [observedPod(always, [exited('app', 0, T0 - DELAY)])],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] }],
  },
  {
    name: 'Always: an exited container waits for its delay, and says when',
    desired: [always],
    observed: [observedPod(always, [exited('app', 0, T0 - DELAY + 1)])],
    actions: [],
    wakeAt: T0 + 1,
  },
  {
    name: 'the default policy (Always) restarts a failed container too',
    desired: [web],
    observed: [observedPod(web, [exited('app', 137, T0 - 2 * DELAY)])],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] }],
  },
  {
    name: 'a created (never started) container is started at once',
    desired: [twoContainers],
    observed: [observedPod(twoContainers, [container('app'), container('sidecar', { state: 'created', startedAt: undefined })])],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-sidecar'] }],
  },
  {
    name: 'one container due now, one later: start the due one and wake for the other',
    desired: [twoContainers],
    observed: [observedPod(twoContainers, [exited('app', 1, T0 - DELAY - 5), exited('sidecar', 1, T0 - 3000)])],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] }],
    wakeAt: T0 - 3000 + DELAY,
  },
  {
    name: 'OnFailure: exit code 0 is not restarted',
    desired: [onFailure],
    observed: [observedPod(onFailure, [exited('app', 0, T0 - 2 * DELAY)])],
    actions: [],
  },
  {
    name: 'OnFailure: exit code 1 is restarted',
    desired: [onFailure],
    observed: [observedPod(onFailure, [exited('app', 1, T0 - 2 * DELAY)])],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] }],
  },
  {
    name: 'OnFailure: exit code 1 waits for the delay',
    desired: [onFailure],
    observed: [observedPod(onFailure, [exited('app', 1, T0)])],
    actions: [],
    wakeAt: T0 + DELAY,
  },
  {
    name: 'Never: a failed container stays exited',
    desired: [never],
    observed: [observedPod(never, [exited('app', 1, T0 - 2 * DELAY)])],
    actions: [],
  },
  {
    name: 'a missing app container is created',
    desired: [twoContainers],
    observed: [observedPod(twoContainers, [container('app')])],
    actions: [{ kind: 'createContainers', key: KEY, pod: 'pod-web-node1', names: ['sidecar'] }],
  },
  {
    name: 'all app containers missing: all created, in spec order',
    desired: [twoContainers],
    observed: [observedPod(twoContainers, [])],
    actions: [{ kind: 'createContainers', key: KEY, pod: 'pod-web-node1', names: ['app', 'sidecar'] }],
  },
  {
    name: 'Never: a failed init container is not retried',
    desired: [withInit('Never')],
    observed: [observedPod(withInit('Never'), [exited('setup', 1, T0 - 2 * DELAY, 'init')])],
    actions: [],
  },
  {
    name: 'Always: a failed init container is retried after the delay',
    desired: [withInit('Always')],
    observed: [observedPod(withInit('Always'), [exited('setup', 1, T0 - DELAY, 'init')])],
    actions: [{ kind: 'createContainers', key: KEY, pod: 'pod-web-node1', names: ['app'] }],
  },
  {
    name: 'Always: a failed init container waits for the delay',
    desired: [withInit('Always')],
    observed: [observedPod(withInit('Always'), [exited('setup', 1, T0 - 100, 'init')])],
    actions: [],
    wakeAt: T0 - 100 + DELAY,
  },
  {
    name: 'OnFailure: a failed init container is retried after the delay',
    desired: [withInit('OnFailure')],
    observed: [observedPod(withInit('OnFailure'), [exited('setup', 2, T0 - DELAY - 1, 'init')])],
    actions: [{ kind: 'createContainers', key: KEY, pod: 'pod-web-node1', names: ['app'] }],
  },
  {
    name: 'an init container that succeeded leaves the app containers running: nothing to do',
    desired: [withInit('Always')],
    observed: [observedPod(withInit('Always'), [exited('setup', 0, T0 - 100, 'init'), container('app')])],
    actions: [],
  },
  {
    name: 'infra not running and a container to restart: the pod is kept, the container backs off as usual',
    desired: [web],
    observed: [observedPod(web, [exited('app', 137, T0 - 100)], { infraRunning: false })],
    actions: [],
    wakeAt: T0 - 100 + DELAY,
  },
  {
    name: 'infra not running and a container never started: it is started (podman starts the infra with it)',
    desired: [web],
    observed: [observedPod(web, [container('app', { state: 'created', startedAt: undefined })], { infraRunning: false })],
    actions: [{ kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] }],
  },
  {
    name: 'infra not running and no container created (a failed image pull): created, the pod kept',
    desired: [web],
    observed: [observedPod(web, [], { infraRunning: false })],
    actions: [{ kind: 'createContainers', key: KEY, pod: 'pod-web-node1', names: ['app'] }],
  },
  {
    name: 'infra not running but a container runs: podman is between states, wait',
    desired: [web],
    observed: [observedPod(web, [container('app')], { infraRunning: false })],
    actions: [],
  },
  {
    name: 'infra not running and every container finished for good (Never): left alone',
    desired: [never],
    observed: [observedPod(never, [exited('app', 0, T0 - 100)], { infraRunning: false })],
    actions: [],
  },
  {
    name: 'infra not running, OnFailure and exit 0: finished for good, left alone',
    desired: [onFailure],
    observed: [observedPod(onFailure, [exited('app', 0, T0 - 100)], { infraRunning: false })],
    actions: [],
  },
  {
    name: 'pods are planned independently: create one, kill one, restart one',
    desired: [always, desiredPod({}, 'cache', '/m/cache.yaml')],
    observed: [observedPod(always, [exited('app', 1, T0 - DELAY)]), observedPod(other, [container('app')])],
    actions: [
      { kind: 'restartContainers', key: KEY, pod: 'pod-web-node1', containers: ['ctr-app'] },
      { kind: 'removePod', key: 'default/db-node1', pod: 'pod-db-node1' },
      { kind: 'createPod', key: 'default/cache-node1', hash: desiredPod({}, 'cache', '/m/cache.yaml').hash },
    ],
  },
];

t.test('planPods', async (t) => {
  for (const row of rows) {
    const input: PlanInput = {
      desired: new Map((row.desired ?? []).map((pod) => [pod.key, pod])),
      observed: row.observed ?? [],
      erroredSources: new Set(row.erroredSources ?? []),
      busy: new Set(row.busy ?? []),
      now: row.now ?? T0,
      backoff: FIXED_BACKOFF,
    };
    const plan = planPods(input);
    t.strictSame(plan.actions.map(summary), row.actions, `${row.name}: actions`);
    t.strictSame(plan.kept.map((pod) => pod.key), row.kept ?? [], `${row.name}: kept`);
    t.equal(plan.wakeAt, row.wakeAt, `${row.name}: wakeAt`);
  }
});

t.test('the earliest wake time wins across pods', async (t) => {
  const db = desiredPod({}, 'db', '/m/db.yaml');
  const plan = planPods({
    desired: new Map([[web.key, web], [db.key, db]]),
    observed: [observedPod(web, [exited('app', 1, T0 - 100)]), observedPod(db, [exited('app', 1, T0 - 900)])],
    erroredSources: new Set(),
    busy: new Set(),
    now: T0,
    backoff: FIXED_BACKOFF,
  });
  t.strictSame(plan.actions, []);
  t.equal(plan.wakeAt, T0 - 900 + DELAY);
});

t.test('actions carry a reason a person can read', async (t) => {
  const plan = planPods({
    desired: new Map([[webChanged.key, webChanged]]),
    observed: [observedPod(web, [container('app')])],
    erroredSources: new Set(),
    busy: new Set(),
    now: T0,
    backoff: FIXED_BACKOFF,
  });
  t.equal(plan.actions[0]?.reason, `config hash changed from ${web.hash} to ${webChanged.hash}`);
  const restart = planPods({
    desired: new Map([[onFailure.key, onFailure]]),
    observed: [observedPod(onFailure, [exited('app', 3, T0 - DELAY)])],
    erroredSources: new Set(),
    busy: new Set(),
    now: T0,
    backoff: FIXED_BACKOFF,
  });
  t.equal(restart.actions[0]?.reason, 'restartPolicy OnFailure: restarting app (exit code 3)');
});

t.test('shouldRestart', async (t) => {
  const table: [string | undefined, number | undefined, boolean][] = [
    ['Always', 0, true],
    ['Always', 1, true],
    [undefined, 0, true],
    [undefined, 137, true],
    ['OnFailure', 0, false],
    ['OnFailure', 1, true],
    ['OnFailure', 137, true],
    ['Never', 0, false],
    ['Never', 1, false],
  ];
  for (const [policy, exitCode, expected] of table) {
    t.equal(shouldRestart(policy, exitCode), expected, `${policy ?? '(default)'} with exit code ${exitCode}`);
  }
});

t.test('a sidecar is restarted whatever the pod restartPolicy; it never counts as a failed init', async (t) => {
  const sidecarSpec = { name: 'proxy', image: 'localhost/busybox:podvisor', restartPolicy: 'Always' as const };
  const desired = desiredPod({ restartPolicy: 'Never', initContainers: [sidecarSpec] });
  const plan = (containers: ObservedContainer[], now: number) => planPods({
    desired: new Map([[desired.key, desired]]),
    observed: [observedPod(desired, containers)],
    erroredSources: new Set(),
    busy: new Set(),
    now,
    backoff: FIXED_BACKOFF,
  });
  const sidecarExited = exited('proxy', 1, T0, 'init');
  const due = plan([sidecarExited, container('app')], T0 + DELAY);
  t.strictSame(due.actions.map(summary), [{ kind: 'restartContainers', key: desired.key, pod: `pod-${desired.name}`, containers: ['ctr-proxy'] }]);
  const early = plan([sidecarExited, container('app')], T0 + 1);
  t.strictSame(early.actions, []);
  t.equal(early.wakeAt, T0 + DELAY);
  // With the app container missing, the exited sidecar is no failed init: the app is created.
  const missing = plan([sidecarExited], T0 + 1);
  t.strictSame(missing.actions.map(summary), [{ kind: 'createContainers', key: desired.key, pod: `pod-${desired.name}`, names: ['app'] }]);
});

t.test('with the real back-off, the first restart is immediate and the next waits the delay', async (t) => {
  const backoff = new Backoff({ initialMs: DELAY, maxMs: 300_000 });
  const plan = (finishedAt: number, now: number) => planPods({
    desired: new Map([[always.key, always]]),
    observed: [observedPod(always, [exited('app', 1, finishedAt)])],
    erroredSources: new Set(),
    busy: new Set(),
    now,
    backoff,
  });
  t.strictSame(plan(T0, T0 + 1).actions.map((action) => action.kind), ['restartContainers'], 'first exit: restarted at once');
  backoff.next(backoffKey(always.uid, 'app'), T0); // what the worker records when it restarts it
  const second = plan(T0 + 5000, T0 + 5001);
  t.strictSame(second.actions, [], 'second exit: waits');
  t.equal(second.wakeAt, T0 + 5000 + DELAY);
  t.strictSame(plan(T0 + 5000, T0 + 5000 + DELAY).actions.map((action) => action.kind), ['restartContainers']);
});

t.test('a container that failed to be created waits its back-off before the next attempt', async (t) => {
  const backoff = new Backoff({ initialMs: DELAY, maxMs: 300_000 });
  backoff.next(backoffKey(web.uid, 'app'), T0); // the worker recorded a failed create at T0
  const plan = (now: number) => planPods({
    desired: new Map([[web.key, web]]),
    observed: [observedPod(web, [], { infraRunning: false })],
    erroredSources: new Set(),
    busy: new Set(),
    now,
    backoff,
  });
  const early = plan(T0 + 1);
  t.strictSame(early.actions, []);
  t.equal(early.wakeAt, T0 + DELAY);
  t.strictSame(plan(T0 + DELAY).actions.map((action) => action.kind), ['createContainers']);
});

t.test('a pod whose sandbox could not be made (its name taken) waits its back-off before it is created again', async (t) => {
  const backoff = new Backoff({ initialMs: DELAY, maxMs: 300_000 });
  const plan = (now: number) => planPods({ desired: new Map([[web.key, web]]), observed: [], erroredSources: new Set(), busy: new Set(), now, backoff });
  t.strictSame(plan(T0).actions.map((action) => action.kind), ['createPod'], 'first: created at once');
  backoff.next(backoffKey(web.uid, 'app'), T0); // the runtime's SandboxStartError, recorded against the first app container
  const early = plan(T0 + 1);
  t.strictSame(early.actions, [], 'then no attempt within the delay');
  t.equal(early.wakeAt, T0 + DELAY, 'but a wake-up when it ends');
  t.strictSame(plan(T0 + DELAY).actions.map((action) => action.kind), ['createPod']);
  backoff.next(backoffKey(web.uid, 'app'), T0 + DELAY); // failed again: the delay doubles
  t.equal(plan(T0 + DELAY + 1).wakeAt, T0 + 3 * DELAY, 'the next wait is twice as long');
});

t.test('activeDeadlineSeconds: a pod active longer is stopped once, then left alone', async (t) => {
  const limited = desiredPod({ activeDeadlineSeconds: 30 });
  const plan = (containers: ObservedContainer[], now: number) => planPods({
    desired: new Map([[limited.key, limited]]),
    observed: [observedPod(limited, containers)],
    erroredSources: new Set(),
    busy: new Set(),
    now,
    backoff: FIXED_BACKOFF,
    startTime: (uid) => (uid === limited.uid ? T0 : undefined),
  });
  const before = plan([container('app')], T0 + 29_000);
  t.strictSame(before.actions, []);
  t.equal(before.wakeAt, T0 + 30_000, 'planned again when the deadline passes');
  t.strictSame(plan([container('app')], T0 + 30_000).actions.map(summary), [{ kind: 'stopPod', key: limited.key, pod: `pod-${limited.name}` }]);
  t.strictSame(plan([exited('app', 143, T0 + 31_000)], T0 + 60_000).actions, [], 'stopped: not restarted');
});

t.test('a pod being killed carries the spec it was made from (for preStop and stop order)', async (t) => {
  const plan = planPods({
    desired: new Map(),
    observed: [observedPod(web, [container('app')])],
    erroredSources: new Set(),
    busy: new Set(),
    now: T0,
    backoff: FIXED_BACKOFF,
    known: new Map([[web.uid, web]]),
  });
  const kill = plan.actions[0];
  t.equal(kill?.kind, 'removePod');
  t.equal(kill?.kind === 'removePod' ? kill.running : undefined, web);
});

t.test('an exit time on a whole second (podman lists whole seconds) counts from the end of that second', async (t) => {
  const wholeSecond = 1_700_000_000_000;
  const plan = (now: number) => planPods({
    desired: new Map([[always.key, always]]),
    observed: [observedPod(always, [exited('app', 1, wholeSecond)])],
    erroredSources: new Set(),
    busy: new Set(),
    now,
    backoff: FIXED_BACKOFF,
  });
  t.strictSame(plan(wholeSecond + DELAY).actions, [], 'not yet: the exit may have been late in that second');
  t.equal(plan(wholeSecond + DELAY).wakeAt, wholeSecond + 999 + DELAY);
  t.strictSame(plan(wholeSecond + 999 + DELAY).actions.map((action) => action.kind), ['restartContainers']);
});
