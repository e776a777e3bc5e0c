// The rollout guard's rules, as a table of what the files ask for and what the status says, then
// the guard itself with its state file (a fake clock: the windows are what is tested).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/log/logger.js';
import type { DesiredState } from '../../src/manifest/desired-state.js';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { PodManifest } from '../../src/manifest/pod-schema.js';
import { decide, effectivePods, nextDeadline, PROVEN_AFTER_MS, ROLLBACK_AFTER_ANNOTATION, ROLLOUT_FILE, RolloutGuard, runningSpecs, type ObservedStatus, type RolloutRecord } from '../../src/rollout/rollout-guard.js';

const T0 = new Date('2026-12-04T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

/** The pod `web` with image `tag`; `window` as its annotation when given. */
function spec(tag: string, window?: string): DesiredPod {
  const manifest: PodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', ...(window === undefined ? {} : { annotations: { [ROLLBACK_AFTER_ANNOTATION]: window } }) },
    spec: { containers: [{ name: 'app', image: `localhost/app:${tag}` }] },
  };
  return toDesiredPod(manifest, '/etc/pods.d/web.yaml', 'node1', T0);
}

/** The status of `pod` as the status owner serves it: Ready or not, a container waiting for a reason, a phase. */
function status(pod: DesiredPod, options: { ready?: boolean; waiting?: string; phase?: string } = {}): ObservedStatus {
  return {
    metadata: { name: pod.name, namespace: pod.namespace, annotations: pod.pod.metadata.annotations },
    status: {
      phase: (options.phase ?? 'Running') as 'Running',
      conditions: [{ type: 'Ready', status: options.ready ? 'True' : 'False' }],
      initContainerStatuses: [],
      containerStatuses: [{
        name: 'app', ready: options.ready ?? false, restartCount: 0, image: '', imageID: '', started: options.ready ?? false,
        state: options.waiting ? { waiting: { reason: options.waiting } } : { running: { startedAt: T0.toISOString() } },
        lastState: {},
      }],
    } as unknown as ObservedStatus['status'],
  };
}

const v1 = spec('1');
const v2 = spec('2');
const proven: RolloutRecord = { ready: { hash: v1.hash, pod: v1, at: T0.toISOString() } };

t.test('effectivePods: which spec runs, and when a trial starts', async (t) => {
  const one = (pod: DesiredPod, record: RolloutRecord | undefined, defaultSeconds = 120) =>
    effectivePods(new Map([[pod.key, pod]]), new Map(record ? [[pod.key, record]] : []), defaultSeconds, T0);

  let result = one(v1, undefined);
  t.equal(result.pods.get(v1.key)?.hash, v1.hash, 'a new pod runs its file');
  t.equal(result.records.get(v1.key)?.trial, undefined, 'and is on no trial: there is nothing to go back to');

  result = one(v2, proven);
  t.equal(result.pods.get(v2.key)?.hash, v2.hash, 'an edit of a proven pod runs the new spec');
  t.same(result.records.get(v2.key)?.trial, { hash: v2.hash, since: T0.toISOString() }, 'on trial from now');

  const trialFrom = { ...proven, trial: { hash: v2.hash, since: at(-50).toISOString() } };
  t.same(one(v2, trialFrom).records.get(v2.key)?.trial?.since, at(-50).toISOString(), 'the same edit again (a rescan) keeps its trial\'s start');

  result = one(v2, proven, 0);
  t.equal(result.records.get(v2.key)?.trial, undefined, 'rollback off (0): no trial');
  t.equal(one(spec('2', '0'), proven).records.get(v2.key)?.trial, undefined, 'the annotation 0 turns it off for one pod');

  const failed: RolloutRecord = { ...proven, failed: { hash: v2.hash, reason: 'CrashLoopBackOff', message: 'x', at: T0.toISOString() } };
  result = one(v2, failed);
  t.equal(result.pods.get(v2.key)?.hash, v1.hash, 'a failed spec is not tried again: the last Ready spec runs');
  t.ok(result.records.get(v2.key)?.failed, 'and the failure is remembered');

  const v3 = spec('3');
  result = one(v3, failed);
  t.equal(result.pods.get(v3.key)?.hash, v3.hash, 'the file changed again: its new spec is tried');
  t.equal(result.records.get(v3.key)?.failed, undefined, 'the old failure is forgotten');
  t.equal(result.records.get(v3.key)?.trial?.hash, v3.hash, 'on trial');

  result = effectivePods(new Map(), new Map([[v1.key, proven]]), 120, T0);
  t.equal(result.records.size, 0, 'a pod no file asks for is forgotten');
});

t.test('decide: proven, rolled back, or still on trial', async (t) => {
  // Begun at once: podman went to work on the new spec when it was asked for.
  const onTrial: RolloutRecord = { ...proven, trial: { hash: v2.hash, since: T0.toISOString(), startedAt: T0.toISOString() } };

  let result = decide({}, v1, status(v1, { ready: true }), 120, T0);
  t.equal(result.record.ready?.hash, v1.hash, 'a pod on no trial that is Ready: its spec is the one to go back to');
  t.equal(decide({}, v1, status(v1, { ready: false }), 120, T0).record.ready, undefined, 'not Ready: nothing recorded');

  result = decide(onTrial, v2, status(v2, { waiting: 'CrashLoopBackOff' }), 120, at(15));
  t.equal(result.rollback?.reason, 'CrashLoopBackOff', 'a crash loop during the trial: rollback');
  t.match(result.rollback?.message, /container app is in CrashLoopBackOff 15 s after the replace began/);
  t.equal(result.record.failed?.hash, v2.hash, 'the failed spec remembered');
  t.equal(result.record.ready?.hash, v1.hash, 'the spec to go back to kept');

  t.equal(decide(onTrial, v2, status(v2, { phase: 'Failed' }), 120, at(5)).rollback?.reason, 'Failed', 'the pod failed: rollback');
  t.equal(decide(onTrial, v2, status(v2), 120, at(119)).rollback, undefined, 'not Ready yet, window not over: wait');
  result = decide(onTrial, v2, status(v2), 120, at(120));
  t.equal(result.rollback?.reason, 'NotReady', 'not Ready when the window ends: rollback');
  t.match(result.rollback?.message, /not Ready within 120 s/);
  const v2in30 = spec('2', '30');
  const onTrial30: RolloutRecord = { ...proven, trial: { hash: v2in30.hash, since: T0.toISOString(), startedAt: T0.toISOString() } };
  t.equal(decide(onTrial30, v2in30, status(v2in30), 120, at(29)).rollback, undefined);
  t.equal(decide(onTrial30, v2in30, status(v2in30), 120, at(30)).rollback?.reason, 'NotReady', 'the annotation sets the window');

  result = decide(onTrial, v2, status(v2, { ready: true }), 120, at(5));
  t.equal(result.rollback, undefined, 'Ready: no rollback');
  t.equal(result.record.trial?.readySince, at(5).toISOString(), 'Ready since now: not proven yet');
  t.equal(result.record.ready?.hash, v1.hash, 'the old spec is still the one to go back to');
  result = decide(result.record, v2, status(v2, { waiting: 'CrashLoopBackOff' }), 120, at(8));
  t.equal(result.rollback?.reason, 'CrashLoopBackOff', 'Ready for 3 s, then a crash loop: rollback');

  const readyAt5 = decide(onTrial, v2, status(v2, { ready: true }), 120, at(5)).record;
  result = decide(readyAt5, v2, status(v2, { ready: true }), 120, at(5 + PROVEN_AFTER_MS / 1000));
  t.equal(result.record.ready?.hash, v2.hash, `Ready for ${PROVEN_AFTER_MS / 1000} s: proven, the new spec is the one to go back to`);
  t.equal(result.record.trial, undefined, 'the trial is over');
  t.equal(decide(readyAt5, v2, status(v2), 120, at(7)).record.trial?.readySince, undefined, 'Ready, then not: the proving starts over');

  t.same(decide(onTrial, v2, status(v1, { waiting: 'CrashLoopBackOff' }), 120, at(15)), { record: onTrial }, 'a status of another spec (the old pod, still being replaced) decides nothing');
});

t.test('the window counts from when podman began the new spec, not from the edit', async (t) => {
  // 200 pods edited at once wait minutes for 3 start slots: a queued replace must not run out its window.
  const asked: RolloutRecord = { ...proven, trial: { hash: v2.hash, since: T0.toISOString() } };
  const queued: ObservedStatus = { ...status(v2, { waiting: 'ContainerCreating' }) };
  let result = decide(asked, v2, queued, 120, at(300));
  t.equal(result.rollback, undefined, 'queued for 300 s, no sandbox: no rollback');
  t.equal(result.record.trial?.startedAt, undefined, 'and the window has not begun');
  const sandbox: ObservedStatus = { ...queued, status: { ...queued.status, startTime: at(300).toISOString() } };
  result = decide(asked, v2, sandbox, 120, at(300));
  t.equal(result.record.trial?.startedAt, at(300).toISOString(), 'its sandbox seen: the window begins');
  t.equal(decide(result.record, v2, sandbox, 120, at(419)).rollback, undefined, '119 s later: still within it');
  t.equal(decide(result.record, v2, sandbox, 120, at(420)).rollback?.reason, 'NotReady', '120 s after it began: rollback');
  const cannot: ObservedStatus = { ...queued, status: { ...queued.status, containerStatuses: queued.status.containerStatuses.map((one) => ({ ...one, state: { waiting: { reason: 'ErrImageNeverPull', message: 'no image' } } })) } };
  t.equal(decide(asked, v2, cannot, 120, at(300)).record.trial?.startedAt, at(300).toISOString(), 'a container that cannot be made begins it too');
});

t.test('nextDeadline: the end of a window, or of a proving', async (t) => {
  const specs = new Map([[v2.key, v2]]);
  t.equal(nextDeadline(new Map([[v2.key, { ...proven, trial: { hash: v2.hash, since: T0.toISOString(), startedAt: at(30).toISOString() } }]]), specs, 120), at(150).getTime(), 'the window counts from the start');
  t.equal(nextDeadline(new Map([[v2.key, { ...proven, trial: { hash: v2.hash, since: T0.toISOString() } }]]), specs, 120), undefined, 'a replace not begun has no deadline');
  t.equal(nextDeadline(new Map([[v2.key, { ...proven, trial: { hash: v2.hash, since: T0.toISOString(), readySince: at(3).toISOString() } }]]), specs, 120), at(3).getTime() + PROVEN_AFTER_MS);
  t.equal(nextDeadline(new Map([[v2.key, proven]]), specs, 120), undefined, 'no trial: no timer');
});

t.test('the guard: a crash-looping edit is rolled back, remembered across a restart, and retried when the file changes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-rollout-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const logger = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });
  let now = T0;
  let statuses: ObservedStatus[] = [];
  const handedOn: DesiredState[] = [];
  const rollbacks: string[] = [];
  const make = () => new RolloutGuard({
    stateDir: dir, logger, defaultSeconds: 120, now: () => now, statuses: () => statuses,
    onChange: (state) => handedOn.push(state),
    onRollback: (pod, failed, to) => rollbacks.push(`${failed.hash}:${failed.reason}->${to} on ${pod.hash}`),
  });
  const state = (pod: DesiredPod): DesiredState => ({ pods: new Map([[pod.key, pod]]), erroredSources: new Set(), conflicts: [] });

  let guard = make();
  await guard.load();
  t.equal(guard.apply(state(v1)).pods.get(v1.key)?.hash, v1.hash);
  guard.observe([status(v1, { ready: true })]);
  t.equal(guard.apply(state(v2)).pods.get(v2.key)?.hash, v2.hash, 'the edit is handed on');
  now = at(20);
  guard.observe([status(v2, { waiting: 'CrashLoopBackOff' })]);
  t.same(rollbacks, [`${v2.hash}:CrashLoopBackOff->${v1.hash} on ${v1.hash}`], 'rolled back once, told on the pod rolled back to');
  t.equal(handedOn.at(-1)?.pods.get(v1.key)?.hash, v1.hash, 'the last Ready spec handed on to the reconciler');
  t.same([...guard.rolledBack().values()].map((one) => one.failed.hash), [v2.hash], 'the status can say so');
  guard.stop();
  await guard.flush();
  const saved = JSON.parse(await readFile(join(dir, ROLLOUT_FILE), 'utf8')) as { pods: Record<string, RolloutRecord> };
  t.equal(saved.pods[v1.key]?.failed?.hash, v2.hash, 'written to the state directory');

  guard = make();
  await guard.load();
  t.equal(guard.apply(state(v2)).pods.get(v2.key)?.hash, v1.hash, 'after a restart the failed spec is still not tried');
  const v3 = spec('3');
  t.equal(guard.apply(state(v3)).pods.get(v3.key)?.hash, v3.hash, 'a new edit is tried');
  guard.stop();

  await writeFile(join(dir, ROLLOUT_FILE), '{"pods": ');
  guard = make();
  await guard.load();
  t.equal(guard.apply(state(v2)).pods.get(v2.key)?.hash, v2.hash, 'a corrupt state file is set aside: the file\'s spec runs');
  guard.stop();
});

t.test('update locks: a held replace keeps the running spec; creation is never held', async (t) => {
  const running = new Map([[v1.key, v1]]);
  const lock = '/run/podvisor/locks/default_web';
  const hold = { running, holding: () => lock };
  let result = effectivePods(new Map([[v2.key, v2]]), new Map([[v1.key, proven]]), 120, T0, hold);
  t.equal(result.pods.get(v2.key)?.hash, v1.hash, 'the running spec stays while the lock is there');
  t.same(result.held.get(v2.key), { by: lock, wantedHash: v2.hash, runningHash: v1.hash }, 'and the held replace is reported');
  t.equal(result.records.get(v2.key)?.trial, undefined, 'no trial starts for a held replace');

  result = effectivePods(new Map([[v2.key, v2]]), new Map([[v1.key, proven]]), 120, T0, { running, holding: () => undefined });
  t.equal(result.pods.get(v2.key)?.hash, v2.hash, 'the lock gone: the replace goes ahead');
  t.equal(result.records.get(v2.key)?.trial?.hash, v2.hash, 'on trial');

  result = effectivePods(new Map([[v2.key, v2]]), new Map(), 120, T0, { running: new Map(), holding: () => lock });
  t.equal(result.pods.get(v2.key)?.hash, v2.hash, 'a pod not running yet is created, lock or not');
  t.equal(result.held.size, 0);
  result = effectivePods(new Map([[v1.key, v1]]), new Map(), 120, T0, hold);
  t.equal(result.held.size, 0, 'the running spec itself is not a replace');

  // Rolled back from v2 to v1 while a lock is there: v1 runs, and that is a rollback, not a pending replace.
  const rolledBack: RolloutRecord = { ...proven, failed: { hash: v2.hash, reason: 'CrashLoopBackOff', message: 'container app is in CrashLoopBackOff', at: T0.toISOString() } };
  result = effectivePods(new Map([[v2.key, v2]]), new Map([[v2.key, rolledBack]]), 120, T0, hold);
  t.equal(result.pods.get(v2.key)?.hash, v1.hash, 'a rolled-back pod runs its last Ready spec');
  t.equal(result.held.size, 0, 'and is not reported as held');
  result = effectivePods(new Map([[v2.key, v2]]), new Map([[v2.key, rolledBack]]), 120, T0, { running: new Map([[v2.key, v2]]), holding: () => lock });
  t.equal(result.pods.get(v2.key)?.hash, v1.hash, 'going back from the failed spec is never held');
});

t.test('runningSpecs: what runs is what podman lists, with the spec kept beside the pod', async (t) => {
  const onTrial: RolloutRecord = { ...proven, trial: { hash: v2.hash, since: T0.toISOString() } };
  let result = runningSpecs([{ key: v2.key, hash: v2.hash, spec: v2 }], new Map([[v2.key, onTrial]]));
  t.equal(result.running.get(v2.key)?.hash, v2.hash, 'a pod on trial runs its new spec, not its last Ready one');
  result = runningSpecs([{ key: v1.key, hash: v1.hash }], new Map([[v1.key, proven]]));
  t.equal(result.running.get(v1.key)?.hash, v1.hash, 'no copy kept: the last Ready spec, when it is the one listed');
  result = runningSpecs([{ key: v2.key, hash: v2.hash, spec: v1 }], new Map([[v2.key, proven]]));
  t.equal(result.running.size, 0, 'a copy of another spec is not what runs');
  t.same(result.unknown.map((one) => one.hash), [v2.hash], 'and the pod is named as unknown');
  t.equal(runningSpecs([], new Map([[v1.key, proven]])).running.size, 0, 'a pod not listed does not run, whatever was proven');
});

t.test('after a restart, a lock holds only a replace not yet made: podman\'s listing says what runs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-rollout-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const logs = new PassThrough();
  let logged = '';
  logs.on('data', (chunk: Buffer) => (logged += chunk.toString()));
  const logger = createLogger({ level: 'warn', format: 'json', stream: logs });
  const lock = '/run/podvisor/locks/all';
  const make = () => new RolloutGuard({ stateDir: dir, logger, defaultSeconds: 120, now: () => T0, statuses: () => [], holding: () => lock, onChange: () => undefined, onRollback: () => undefined });
  const state = (pod: DesiredPod): DesiredState => ({ pods: new Map([[pod.key, pod]]), erroredSources: new Set(), conflicts: [] });

  // Killed mid-trial: v1 proven, v2 on trial and running, not yet proven Ready.
  await writeFile(join(dir, ROLLOUT_FILE), JSON.stringify({ pods: { [v2.key]: { ...proven, trial: { hash: v2.hash, since: T0.toISOString(), startedAt: T0.toISOString() } } } }));
  let guard = make();
  await guard.load([{ key: v2.key, hash: v2.hash, spec: v2 }]);
  let handed = guard.apply(state(v2));
  t.equal(handed.pods.get(v2.key)?.hash, v2.hash, 'the running trial spec stays: no replace back to the last Ready spec');
  t.equal(guard.heldReplaces().size, 0, 'and nothing is held');
  t.equal(guard.records().get(v2.key)?.trial?.hash, v2.hash, 'the trial goes on (the rollback rule is unchanged)');
  guard.stop();

  // Never Ready, so no record: its file edited while the agent was down.
  await rm(join(dir, ROLLOUT_FILE));
  guard = make();
  await guard.load([{ key: v1.key, hash: v1.hash, spec: v1 }]);
  handed = guard.apply(state(v2));
  t.equal(handed.pods.get(v2.key)?.hash, v1.hash, 'a pod never yet Ready keeps its running spec while the lock holds');
  t.same(guard.heldReplaces().get(v2.key), { by: lock, wantedHash: v2.hash, runningHash: v1.hash }, 'held, and said so');
  guard.stop();

  // Listed, but no copy of its spec anywhere: nothing can be kept running, said in the log.
  guard = make();
  await guard.load([{ key: v1.key, hash: v1.hash }]);
  t.equal(guard.apply(state(v2)).pods.get(v2.key)?.hash, v2.hash, 'a spec of which no copy is kept cannot be held');
  t.match(logged, /RunningSpecUnknown/, 'and the log says why');
  guard.stop();
});
