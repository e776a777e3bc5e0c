// The reconciler's wiring of planner and pod workers, against a hand-written fake runtime (the
// kubelet's fake_runtime): it records every call and holds podman's state as plain data, so
// these tests see how passes are triggered and coalesced, retried and drained. The real runtime
// is tested for real in test/runtime/podman-runtime.test.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { DesiredState } from '../../src/manifest/desired-state.js';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { PodSpec } from '../../src/manifest/pod-schema.js';
import { Reconciler, type ReconcilerOptions } from '../../src/pods/reconciler.js';
import { inMemorySupervision } from '../../src/pods/supervision.js';
import type { Observation, ObservedPod, PodRuntime } from '../../src/runtime/types.js';
import type { StatusManager } from '../../src/status/status-manager.js';
import { recordingLogger, untilWithin } from '../support/recording.js';

/** A promise with its resolve at hand, to hold a fake call until the test lets it go. */
class Gate {
  readonly promise: Promise<void>;
  open!: () => void;
  constructor() {
    this.promise = new Promise<void>((resolve) => { this.open = resolve; });
  }
}

interface Call {
  op: 'list' | 'createPod' | 'createContainers' | 'killPod' | 'startContainer';
  key?: string;
  at: number;
}

/** A fake PodRuntime: pods as plain data, every call recorded, each operation's behaviour set by the test. */
class FakeRuntime implements PodRuntime {
  pods: ObservedPod[] = [];
  readonly calls: Call[] = [];
  /** Held open by a test to keep list() in flight. */
  listGate: Gate | undefined;
  /** Rejects this many createPod calls before succeeding. */
  createFailures = 0;
  /** How long killPod takes (it honours the signal). */
  killDelayMs = 0;
  /** Held open by a test to keep killPod in flight. */
  killGate: Gate | undefined;
  createDelayMs = 0;
  concurrentCreates = 0;
  maxConcurrentCreates = 0;
  readonly failedAt: number[] = [];
  readonly finished: string[] = [];

  count(op: Call['op']): number {
    return this.calls.filter((call) => call.op === op).length;
  }

  async list(): Promise<Observation> {
    this.calls.push({ op: 'list', at: Date.now() });
    if (this.listGate) await this.listGate.promise;
    return { pods: this.pods.map((pod) => ({ ...pod })), foreignPods: 0 };
  }

  /** The uids each pass asked to keep when removing orphaned volumes. */
  readonly keptUids: string[][] = [];

  /** Containers stopped on their own (a probe kill) and pods stopped without removal (a deadline). */
  readonly stops: string[] = [];

  async stopContainer(observed: ObservedPod, containerId: string): Promise<void> {
    this.calls.push({ op: 'killPod', key: observed.key, at: Date.now() });
    this.stops.push(`container ${containerId}`);
    this.#exit(observed.id, (container) => container.id === containerId);
  }

  async stopPod(observed: ObservedPod): Promise<void> {
    this.calls.push({ op: 'killPod', key: observed.key, at: Date.now() });
    this.stops.push(`pod ${observed.key}`);
    this.#exit(observed.id, () => true);
  }

  /** What podman would list after a stop: the containers exited (SIGTERM, 143). */
  #exit(podId: string, which: (container: ObservedPod['containers'][number]) => boolean): void {
    this.pods = this.pods.map((pod) => (pod.id !== podId ? pod : {
      ...pod,
      containers: pod.containers.map((container) => (which(container) && container.state === 'running' ? { ...container, state: 'exited' as const, exitCode: 143, finishedAt: new Date() } : container)),
    }));
  }

  async removeOrphanVolumes(keep: ReadonlySet<string>): Promise<void> {
    this.keptUids.push([...keep].sort());
  }

  async createPod(pod: DesiredPod, signal?: AbortSignal): Promise<string[]> {
    this.calls.push({ op: 'createPod', key: pod.key, at: Date.now() });
    this.concurrentCreates++;
    this.maxConcurrentCreates = Math.max(this.maxConcurrentCreates, this.concurrentCreates);
    try {
      if (this.createDelayMs > 0) await sleep(this.createDelayMs, undefined, { signal });
      if (this.createFailures > 0) {
        this.createFailures--;
        this.failedAt.push(Date.now());
        throw new Error('fake: create failed');
      }
      this.pods.push(observedOf(pod));
      this.finished.push(`createPod ${pod.key}`);
      return pod.pod.spec.containers.map((container) => container.name);
    } finally {
      this.concurrentCreates--;
    }
  }

  async createContainers(observed: ObservedPod, _pod: DesiredPod, names: string[]): Promise<string[]> {
    this.calls.push({ op: 'createContainers', key: `${observed.key} ${names.join(',')}`, at: Date.now() });
    return names;
  }

  concurrentKills = 0;
  maxConcurrentKills = 0;

  async killPod(observed: ObservedPod, _grace: number, signal?: AbortSignal): Promise<void> {
    this.calls.push({ op: 'killPod', key: observed.key, at: Date.now() });
    this.concurrentKills++;
    this.maxConcurrentKills = Math.max(this.maxConcurrentKills, this.concurrentKills);
    try {
      if (this.killGate) await this.killGate.promise;
      if (this.killDelayMs > 0) await sleep(this.killDelayMs, undefined, { signal });
    } finally {
      this.concurrentKills--;
    }
    this.pods = this.pods.filter((pod) => pod.id !== observed.id);
    this.finished.push(`killPod ${observed.key}`);
  }

  async startContainer(observed: ObservedPod, containerId: string): Promise<void> {
    this.calls.push({ op: 'startContainer', key: `${observed.key} ${containerId}`, at: Date.now() });
    // Running again, as podman would list it.
    this.pods = this.pods.map((pod) => (pod.id !== observed.id ? pod : {
      ...pod,
      containers: pod.containers.map((container) => (container.id === containerId ? { ...container, state: 'running' as const, exitCode: undefined, finishedAt: undefined } : container)),
    }));
  }
}

const NODE = 'node1';

function desiredPod(name: string, spec: Partial<PodSpec> = {}): DesiredPod {
  return toDesiredPod(
    { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'app', image: 'localhost/busybox:podvisor' }], ...spec } },
    `/m/${name}.yaml`,
    NODE,
    new Date(0),
  );
}

/** What podman would list for a pod the fake created: infra and every container running. */
function observedOf(pod: DesiredPod): ObservedPod {
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
    containers: pod.pod.spec.containers.map((container) => ({
      id: `ctr-${pod.name}-${pod.hash}-${container.name}`, // a new pod, new container ids
      name: container.name,
      kind: 'app' as const,
      state: 'running' as const,
      exitCode: undefined,
      imageId: '',
      pid: undefined,
      startedAt: new Date(0),
      finishedAt: undefined,
      image: container.image,
    })),
  };
}

function state(pods: DesiredPod[], erroredSources: string[] = []): DesiredState {
  return { pods: new Map(pods.map((pod) => [pod.key, pod])), erroredSources: new Set(erroredSources), conflicts: [] };
}


const until = untilWithin(3000);

function reconciler(t: Test, runtime: FakeRuntime, options: Partial<ReconcilerOptions> = {}): { reconciler: Reconciler; lines: string[] } {
  const { logger, lines } = recordingLogger();
  const made = new Reconciler({ runtime, logger, relistIntervalMs: 3_600_000, restartDelayMs: 10_000, ...options });
  t.teardown(async () => {
    made.abort();
    await made.stop(0);
  });
  return { reconciler: made, lines };
}

t.test('nothing is listed or planned before the first desired state', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = [observedOf(desiredPod('orphan'))];
  const { reconciler: rec } = reconciler(t, runtime, { relistIntervalMs: 10 });
  rec.start();
  rec.trigger();
  await sleep(80);
  t.equal(rec.passes, 0, 'no pass');
  t.strictSame(runtime.calls, [], 'no runtime call, so nothing was killed');

  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1, 'the orphan to be killed');
  t.ok(rec.passes >= 1);
  t.equal(runtime.calls[0]?.op, 'list', 'the first call is a listing');
  t.equal(runtime.calls.find((call) => call.op === 'killPod')?.key, 'default/orphan-node1');
});

t.test('passes are coalesced: many triggers while one runs make at most one more', async (t) => {
  const runtime = new FakeRuntime();
  const gate = new Gate();
  runtime.listGate = gate;
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([]));
  await until(() => runtime.count('list') === 1, 'the first listing');
  for (let index = 0; index < 20; index++) rec.trigger();
  rec.setDesired(state([]));
  t.equal(runtime.count('list'), 1, 'still one listing in flight');
  runtime.listGate = undefined;
  gate.open();
  await until(() => runtime.count('list') === 2, 'the queued pass');
  await sleep(100);
  t.equal(runtime.count('list'), 2, 'exactly one more pass ran');
  t.equal(rec.passes, 2);
});

t.test('a desired state that arrives while podman lists is the one that pass plans', async (t) => {
  const runtime = new FakeRuntime();
  const gate = new Gate();
  runtime.listGate = gate;
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([desiredPod('a')]));
  await until(() => runtime.count('list') === 1, 'the first listing');
  rec.setDesired(state([desiredPod('b')]));
  runtime.listGate = undefined;
  gate.open();
  await until(() => runtime.finished.length === 1, 'a create');
  await sleep(80);
  t.strictSame(runtime.calls.filter((call) => call.op !== 'list').map((call) => `${call.op} ${call.key}`), ['createPod default/b-node1'], 'only b, the newest, was ever created');
  t.strictSame(runtime.pods.map((pod) => pod.key), ['default/b-node1']);
});

t.test('a changed manifest is acted on at once, against the last listing', async (t) => {
  const runtime = new FakeRuntime();
  const v1 = desiredPod('web');
  runtime.pods = [observedOf(v1)];
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([v1]));
  await until(() => rec.passes === 1 && runtime.count('list') === 1, 'the first pass');
  await sleep(20);
  const before = runtime.calls.length;
  const v2 = desiredPod('web', { terminationGracePeriodSeconds: 5 });
  t.not(v2.hash, v1.hash);
  rec.setDesired(state([v2]));
  await until(() => runtime.count('killPod') === 1, 'the kill');
  t.equal(runtime.calls.slice(before)[0]?.op, 'killPod', 'the replace starts at once, with no listing in front of it');
  await until(() => runtime.finished.includes('createPod default/web-node1'), 'the new pod');
  await sleep(50);
  t.equal(runtime.count('killPod'), 1, 'replaced once, not again by the pass that followed');
  t.equal(runtime.count('createPod'), 1);
  t.strictSame(runtime.pods.map((pod) => pod.hash), [v2.hash]);
});

t.test('a manifest changed while its pod is being killed is acted on when the worker finishes, without a relist', async (t) => {
  const runtime = new FakeRuntime();
  const v1 = desiredPod('web');
  runtime.pods = [observedOf(v1)];
  runtime.killDelayMs = 200;
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1, 'the kill');
  // A kill in flight is never cancelled; the new manifest waits for it.
  rec.setDesired(state([v1]));
  // No relist timer runs (interval one hour): only the pass the worker triggers when it goes idle
  // can see that the pod is gone and must be created again.
  await until(() => runtime.count('createPod') === 1, 'the pod to be created again', 1500).catch((error: unknown) => t.fail(String(error)));
  t.strictSame(runtime.calls.filter((call) => call.op !== 'list').map((call) => call.op), ['killPod', 'createPod']);
});

t.test('a pod whose create fails is not retried before restartDelayMs, then is', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createFailures = 1;
  const delay = 300;
  const { reconciler: rec, lines } = reconciler(t, runtime, { relistIntervalMs: 20, restartDelayMs: delay });
  rec.start();
  rec.setDesired(state([desiredPod('web')]));
  await until(() => runtime.count('createPod') === 2, 'the retry', 3000);
  const creates = runtime.calls.filter((call) => call.op === 'createPod');
  const failedAt = runtime.failedAt[0] ?? 0;
  const retriedAt = creates[1]?.at ?? 0;
  t.ok(retriedAt - failedAt >= delay, `retried ${retriedAt - failedAt} ms after the failure (at least ${delay})`);
  t.ok(retriedAt - failedAt < delay + 1500, `retried ${retriedAt - failedAt} ms after the failure (soon after ${delay})`);
  const listsBetween = runtime.calls.filter((call) => call.op === 'list' && call.at > failedAt && call.at < retriedAt).length;
  t.ok(listsBetween >= 3, `passes ran in between (${listsBetween}) without creating`);
  t.ok(lines.includes('error: createPod failed: fake: create failed'), 'the failure is logged');
  await sleep(150);
  t.equal(runtime.count('createPod'), 2, 'no create after the one that worked');
  t.strictSame(runtime.pods.map((pod) => pod.key), ['default/web-node1']);
});

t.test('the retry comes from the wake timer even without relisting', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createFailures = 1;
  const { reconciler: rec } = reconciler(t, runtime, { restartDelayMs: 150 });
  rec.setDesired(state([desiredPod('web')]));
  await until(() => runtime.count('createPod') === 2, 'the retry', 2000);
  t.ok((runtime.calls.filter((call) => call.op === 'createPod')[1]?.at ?? 0) - (runtime.failedAt[0] ?? 0) >= 150);
});

t.test('a busy pod (slow kill) is not planned twice', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = [observedOf(desiredPod('orphan'))];
  const gate = new Gate();
  runtime.killGate = gate;
  const { reconciler: rec } = reconciler(t, runtime, { relistIntervalMs: 10 });
  rec.start();
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1, 'the kill');
  const listsBefore = runtime.count('list');
  await until(() => runtime.count('list') >= listsBefore + 5, 'more passes while the kill runs');
  for (let index = 0; index < 5; index++) rec.trigger();
  await sleep(30);
  t.equal(runtime.count('killPod'), 1, 'one kill while the worker is busy');
  gate.open();
  await until(() => runtime.finished.includes('killPod default/orphan-node1'), 'the kill to finish');
  await sleep(60);
  t.equal(runtime.count('killPod'), 1, 'and none after it, the pod being gone');
  t.strictSame(runtime.pods, []);
});

t.test('at most maxConcurrentStarts pods start at once', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createDelayMs = 60;
  const { reconciler: rec } = reconciler(t, runtime, { maxConcurrentStarts: 2 });
  rec.setDesired(state(['a', 'b', 'c', 'd', 'e'].map((name) => desiredPod(name))));
  await until(() => runtime.finished.length === 5, 'all five creates');
  t.equal(runtime.maxConcurrentCreates, 2);
  t.equal(runtime.count('createPod'), 5);
});

t.test('at most maxConcurrentStops pods stop at once, replaces and removals alike', async (t) => {
  const runtime = new FakeRuntime();
  const old = ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => desiredPod(name));
  runtime.pods = old.map(observedOf);
  runtime.killDelayMs = 60;
  const { reconciler: rec } = reconciler(t, runtime, { maxConcurrentStops: 2 });
  // Three edited (replaced), three gone (removed).
  rec.setDesired(state(['a', 'b', 'c'].map((name) => desiredPod(name, { hostname: 'edited' }))));
  await until(() => runtime.finished.filter((one) => one.startsWith('killPod')).length === 6 && runtime.count('createPod') === 3, 'six stops and three creates');
  t.equal(runtime.maxConcurrentKills, 2, 'two stops at a time');
  t.equal(runtime.count('killPod'), 6, 'each pod stopped once');
});

t.test('a stop that outlasts its slot\'s hold limit (a long grace period) lets the next one begin', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = ['slow', 'next'].map((name) => observedOf(desiredPod(name)));
  const gate = new Gate();
  runtime.killGate = gate;
  const { reconciler: rec } = reconciler(t, runtime, { maxConcurrentStops: 1, stopSlotHoldMs: 50 });
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 2, 'the second stop to begin while the first still runs');
  t.equal(runtime.maxConcurrentKills, 2, 'both in flight: the first gave its slot back at the hold limit');
  gate.open();
  await until(() => runtime.pods.length === 0, 'both gone');
});

t.test('a stop waiting for a slot is cancelled by the agent stopping, without waiting its turn', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = ['first', 'queued'].map((name) => observedOf(desiredPod(name)));
  runtime.killDelayMs = 10_000;
  const { reconciler: rec, lines } = reconciler(t, runtime, { maxConcurrentStops: 1, stopSlotHoldMs: 60_000 });
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1 && rec.passes >= 1, 'the first stop');
  const started = Date.now();
  await rec.stop(100);
  t.ok(Date.now() - started < 1000, `stop took ${Date.now() - started} ms`);
  t.equal(runtime.count('killPod'), 1, 'the queued stop never began');
  t.equal(lines.filter((line) => line.startsWith('info: removePod cancelled:')).length, 2, 'both removals are logged as cancelled');
});

t.test('a container restarted since the last listing is restarted again on its next exit without waiting for a listing', async (t) => {
  const runtime = new FakeRuntime();
  const pod = desiredPod('loop', { containers: [{ name: 'app', image: 'localhost/busybox:podvisor' }, { name: 'side', image: 'localhost/busybox:podvisor' }] });
  runtime.pods = [observedOf(pod)];
  const [app, side] = runtime.pods[0]!.containers.map((container) => container.id) as [string, string];
  const { reconciler: rec, lines } = reconciler(t, runtime, { restartDelayMs: 0 });
  rec.setDesired(state([pod]));
  await until(() => rec.passes === 1 && runtime.count('list') === 1, 'the first pass');
  // Every listing from here on hangs, as a busy podman's would.
  const gate = new Gate();
  runtime.listGate = gate;
  rec.containerExited(app, 1, new Date());
  await until(() => runtime.count('startContainer') === 1, 'the first restart, from the last listing');
  await until(() => runtime.count('list') === 2, 'the pass the restart asked for, listing');
  rec.containerExited(app, 1, new Date());
  await until(() => runtime.count('startContainer') === 2, 'the second restart');
  t.equal(runtime.count('list'), 2, 'the second restart did not wait for a listing: only app was acted on since');
  // Another container of the pod: the last listing is older than app's restarts, and a listing
  // older than what was done to the pod is trusted only for the container restarted alone.
  rec.containerExited(side, 1, new Date());
  await sleep(100);
  t.equal(runtime.count('startContainer'), 2, 'side\'s exit waits for a listing');
  t.ok(lines.some((line) => line.includes('container exit: planned by a pass')), 'and says so in the debug log');
  runtime.pods = [{ ...runtime.pods[0]!, containers: runtime.pods[0]!.containers.map((container) => (container.id === side ? { ...container, state: 'exited' as const, exitCode: 1, finishedAt: new Date() } : container)) }];
  gate.open();
  await until(() => runtime.calls.some((call) => call.op === 'startContainer' && call.key?.endsWith(side)), 'side restarted once the listing came');
});

t.test('stop(deadline) waits for work in flight', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = [observedOf(desiredPod('orphan'))];
  runtime.killDelayMs = 200;
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1, 'the kill');
  const started = Date.now();
  await rec.stop(5000);
  const took = Date.now() - started;
  t.strictSame(runtime.finished, ['killPod default/orphan-node1'], 'the kill finished before stop returned');
  t.ok(took >= 150 && took < 2000, `stop took ${took} ms`);
  const passes = rec.passes;
  rec.trigger();
  rec.setDesired(state([desiredPod('late')]));
  await sleep(50);
  t.equal(rec.passes, passes, 'no pass after stop');
  t.equal(runtime.count('createPod'), 0);
});

t.test('stop(deadline) cancels work that outlives the deadline', async (t) => {
  const runtime = new FakeRuntime();
  runtime.pods = [observedOf(desiredPod('orphan'))];
  runtime.killDelayMs = 10_000;
  const { reconciler: rec, lines } = reconciler(t, runtime);
  rec.setDesired(state([]));
  await until(() => runtime.count('killPod') === 1, 'the kill');
  const started = Date.now();
  await rec.stop(100);
  const took = Date.now() - started;
  t.ok(took >= 90 && took < 1000, `stop took ${took} ms`);
  t.strictSame(runtime.finished, [], 'the kill was cancelled, not finished');
  t.ok(lines.some((line) => line.startsWith('info: removePod cancelled:')), 'the cancelled removal is logged, as a cancel');
});

t.test('each pass keeps the volumes of every listed and every desired pod, and only those', async (t) => {
  const runtime = new FakeRuntime();
  const listed = desiredPod('listed');
  const wanted = desiredPod('wanted');
  runtime.pods = [observedOf(listed)];
  runtime.createDelayMs = 200; // `wanted` is still being created during the first pass
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([listed, wanted]));
  await until(() => runtime.keptUids.length >= 1, 'a pass to finish');
  t.strictSame(runtime.keptUids[0], [listed.uid, wanted.uid].sort(), 'a pod being created keeps its volumes');
  rec.setDesired(state([wanted]));
  const passesBefore = runtime.keptUids.length;
  await until(() => runtime.count('killPod') === 1 && runtime.keptUids.length > passesBefore && runtime.count('createPod') === 1 && runtime.finished.length >= 2, 'the removal and a pass after it', 5000);
  rec.trigger();
  await until(() => runtime.keptUids.length > passesBefore + 1, 'one more pass');
  t.strictSame(runtime.keptUids.at(-1), [wanted.uid], 'a removed pod keeps nothing');
});

t.test('stop() cancels a listing in flight', async (t) => {
  const runtime = new FakeRuntime();
  let aborted = false;
  runtime.list = async (signal?: AbortSignal) => {
    runtime.calls.push({ op: 'list', at: Date.now() });
    await new Promise<void>((resolve) => signal?.addEventListener('abort', () => { aborted = true; resolve(); }));
    throw new Error('fake: listing cancelled');
  };
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([]));
  await until(() => runtime.count('list') === 1, 'the listing');
  await rec.stop(1000);
  t.equal(aborted, true, 'the listing saw the stop');
});

t.test('a burst of new pods does not list podman after every pod', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createDelayMs = 30;
  const { reconciler: rec } = reconciler(t, runtime, { maxConcurrentStarts: 2 });
  rec.setDesired(state([]));
  await until(() => rec.passes === 1, 'the first pass');
  const pods = Array.from({ length: 10 }, (_, index) => desiredPod(`web${index}`));
  rec.setDesired(state(pods));
  await until(() => runtime.finished.length === 10, 'all ten pods');
  await until(() => runtime.count('list') >= 2, 'the pass after the burst');
  await sleep(100);
  // One listing before, one when the burst is over: not one per finished pod.
  t.equal(runtime.count('list'), 2, 'listings');
  t.equal(runtime.count('createPod'), 10);
});

t.test('a changed manifest cancels the old spec\'s start in flight, and the new spec starts without a retry delay', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createDelayMs = 5000; // an init container that would run for a long time
  const { reconciler: rec, lines } = reconciler(t, runtime, { restartDelayMs: 60_000 });
  rec.setDesired(state([]));
  await until(() => rec.passes === 1, 'the first pass');
  const v1 = desiredPod('web');
  rec.setDesired(state([v1]));
  await until(() => runtime.count('createPod') === 1, 'the first create');
  runtime.createDelayMs = 0;
  const v2 = desiredPod('web', { terminationGracePeriodSeconds: 5 });
  rec.setDesired(state([v2]));
  await until(() => runtime.finished.includes('createPod default/web-node1'), 'the new spec to be created', 2000);
  t.equal(runtime.count('createPod'), 2, 'created twice: the cancelled v1, then v2');
  t.strictSame(runtime.pods.map((pod) => pod.hash), [v2.hash], 'only v2 runs');
  t.ok(lines.some((line) => line.includes('cancelling work for a superseded spec')));
  t.notOk(lines.some((line) => line.startsWith('error: create failed')), 'a cancel is not logged as a failure');
});

// Interleavings through the real workers (the kubelet's pod worker cases): whatever arrives while
// a pod's work is in flight is serialised behind it or supersedes it; a pod waiting in init holds
// nothing.

/** The observed pod of `pod` waiting in its init container `init` (no app container yet). */
function waitingInInit(pod: DesiredPod, init = 'wait'): ObservedPod {
  return {
    ...observedOf(pod),
    containers: [{ id: `ctr-${pod.name}-${init}`, name: init, kind: 'init', state: 'running', exitCode: undefined, imageId: '', pid: undefined, startedAt: new Date(), finishedAt: undefined, image: 'localhost/busybox:podvisor' }],
  };
}

const INIT: Partial<PodSpec> = { initContainers: [{ name: 'wait', image: 'localhost/busybox:podvisor', command: ['sleep', '3600'] }] };

t.test('interleaving: a replace arriving during a start supersedes it', async (t) => {
  const runtime = new FakeRuntime();
  runtime.createDelayMs = 300;
  const { reconciler: rec, lines } = reconciler(t, runtime);
  const v1 = desiredPod('web');
  const v2 = desiredPod('web', { terminationGracePeriodSeconds: 5 });
  rec.setDesired(state([v1]));
  await until(() => runtime.count('createPod') === 1, 'the first start');
  rec.setDesired(state([v2]));
  await until(() => runtime.pods.length === 1 && runtime.pods[0]?.hash === v2.hash, 'the new spec running');
  t.ok(lines.some((line) => line.includes('cancelling work for a superseded spec')), 'the start of the old spec was cancelled');
  t.notOk(runtime.finished.some((entry) => entry === 'createPod default/web-node1' && runtime.pods[0]?.hash === v1.hash), 'the old spec never ran');
  t.equal(runtime.pods.length, 1, 'one pod');
});

t.test('interleaving: a delete during an init container removes the pod at once', async (t) => {
  const runtime = new FakeRuntime();
  const pod = desiredPod('web', INIT);
  runtime.pods = [waitingInInit(pod)];
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([pod]));
  await until(() => rec.passes >= 1, 'a pass');
  await sleep(50);
  t.strictSame(runtime.calls.filter((call) => call.op !== 'list').map((call) => call.op), [], 'nothing to do while the init container runs');
  rec.setDesired(state([]));
  await until(() => runtime.pods.length === 0, 'the pod removed');
  t.equal(runtime.count('killPod'), 1);
});

t.test('interleaving: a deadline during an init container stops the pod', async (t) => {
  const runtime = new FakeRuntime();
  const pod = desiredPod('web', { ...INIT, activeDeadlineSeconds: 1 });
  runtime.pods = [waitingInInit(pod)];
  const supervision = inMemorySupervision({ initialMs: 10_000, maxMs: 300_000 });
  supervision.setPodStartTime(pod.uid, new Date(Date.now() - 5000).toISOString());
  const { reconciler: rec } = reconciler(t, runtime, { supervision });
  rec.setDesired(state([pod]));
  await until(() => runtime.stops.includes(`pod ${pod.key}`), 'the deadline stop');
  t.strictSame(runtime.stops, [`pod ${pod.key}`]);
});

t.test('interleaving: a probe kill waits for a replace in flight, and is dropped when its container is gone', async (t) => {
  const runtime = new FakeRuntime();
  const v1 = desiredPod('web');
  const v2 = desiredPod('web', { terminationGracePeriodSeconds: 5 });
  runtime.pods = [observedOf(v1)];
  const { reconciler: rec } = reconciler(t, runtime);
  rec.setDesired(state([v1]));
  await until(() => rec.passes >= 1, 'a pass');
  const gate = new Gate();
  runtime.killGate = gate;
  rec.setDesired(state([v2]));
  await until(() => runtime.count('killPod') === 1, 'the replace in flight');
  const v1Container = runtime.pods[0]?.containers[0]?.id ?? '';
  t.ok(v1Container, 'the running container');
  rec.killContainer(v1.key, { containerId: v1Container, containerName: 'app', gracePeriodSeconds: 30, message: 'Container app failed liveness probe, will be restarted' });
  await sleep(100);
  t.strictSame(runtime.stops, [], 'not stopped beside the replace');
  runtime.killGate = undefined;
  gate.open();
  await until(() => runtime.pods[0]?.hash === v2.hash, 'the replace done');
  await rec.stop(1000);
  t.strictSame(runtime.stops, [], 'never stopped: the replace took its container away');
});

t.test('interleaving: a probe kill on an idle pod is carried out by its worker', async (t) => {
  const runtime = new FakeRuntime();
  const pod = desiredPod('web');
  runtime.pods = [observedOf(pod)];
  const { reconciler: rec, lines } = reconciler(t, runtime);
  rec.setDesired(state([pod]));
  await until(() => rec.passes >= 1, 'a pass');
  const id = runtime.pods[0]?.containers[0]?.id ?? '';
  rec.killContainer(pod.key, { containerId: id, containerName: 'app', gracePeriodSeconds: 30, message: 'Container app failed liveness probe, will be restarted' });
  await until(() => runtime.stops.length === 1, 'the stop');
  t.strictSame(runtime.stops, [`container ${id}`]);
  t.ok(lines.some((line) => line.includes('killing container: Container app failed liveness probe')), 'logged by the worker');
  await sleep(100);
  t.equal(runtime.stops.length, 1, 'once');
});

t.test('the prober learns of each listing before the status is computed from it', async (t) => {
  // A container restarted in place keeps its id: a status computed first would read the previous
  // run's probe results and show the new run Ready before its startup probe passed (etcd did).
  const runtime = new FakeRuntime();
  const order: string[] = [];
  const status = { observe: () => order.push('status') } as unknown as StatusManager;
  const { reconciler: rec } = reconciler(t, runtime, { status, onObservation: () => order.push('probes') });
  rec.start();
  rec.setDesired(state([]));
  await until(() => order.length >= 2, 'one pass');
  t.strictSame(order.slice(0, 2), ['probes', 'status']);
});
