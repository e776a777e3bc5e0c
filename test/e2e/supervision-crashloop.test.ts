// Supervision 1, the crash-loop back-off: a container that fails half a second or so after it
// starts (restartPolicy Always) is started again in place, the first time at once, then after 1 s, 2 s,
// 4 s, 4 s (--backoff-initial 1 --backoff-max 4), as the kubelet backs off. Each run stamps its
// start and its exit on the wall clock (to the microsecond) into a hostPath file, so no run is
// missed however busy the machine; podman's own StartedAt of every run it was seen in is checked
// against those stamps. The status shows CrashLoopBackOff in the kubelet's words, and
// `podvisor status` says so too.
import { join } from 'node:path';
import t from 'tap';
import {
  containerIds,
  containerOf,
  fileLines,
  IMAGE,
  parseWallStamps,
  podmanContainer,
  podsOf,
  putManifest,
  RunRecorder,
  setup,
  statusItems,
  statusTable,
  waitFor,
  waitForStatus,
  waitForWallFraction,
  wallStamp,
  type StatusContainer,
} from './harness.js';

// Each run ends late in a wall-clock second (at .80 to .90): a back-off measured from an exit time
// cut to whole seconds would then end up to 0.9 s early, and the waits below would show it.
const LATE_IN_A_SECOND = waitForWallFraction(800_000, 900_000);

const manifest = (dir: string) => `apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Always
  volumes:
    - name: data
      hostPath: { path: ${dir}, type: DirectoryOrCreate }
  containers:
    - name: crasher
      image: ${IMAGE}
      command: ["sh", "-c", ${JSON.stringify(`${wallStamp('start', '/data/runs')}; sleep 0.5; ${LATE_IN_A_SECOND}; ${wallStamp('exit', '/data/runs')}; exit 1`)}]
      volumeMounts: [{ name: data, mountPath: /data }]
`;

/** The delay (s) the kubelet waits before restart number `n + 1`, with initial 1 s and max 4 s. */
const expectedDelay = (restarts: number) => (restarts === 0 ? 0 : Math.min(2 ** (restarts - 1), 4));

t.test('a crashing container backs off 0, 1, 2, 4, 4 s and shows CrashLoopBackOff', async (t) => {
  const world = await setup(t, 'sv-crash');
  const { node } = world;
  const podName = `crash-${node}`;
  const key = `default/${podName}`;
  const recorder = new RunRecorder(podmanContainer(podName, 'crasher'), 100);
  t.teardown(() => recorder.stop());
  // The status as it changes, sampled while the container crash-loops.
  const samples: StatusContainer[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const item = (await statusItems(world.stateDir).catch(() => [])).find((one) => one.metadata.name === podName);
      const container = item ? containerOf(item, 'crasher') : undefined;
      if (container) samples.push(container);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  t.teardown(async () => {
    sampling = false;
    await sampler;
  });

  const runsFile = join(world.root, 'data', 'runs');
  await putManifest(world.manifestDir, 'crash.yaml', manifest(join(world.root, 'data')));
  const agent = await world.startAgent(['--backoff-max', '4']);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const [pod] = await podsOf(node);
  const uid = pod?.Labels?.['io.podvisor.uid'] ?? '';
  t.match(uid, /^[0-9a-f-]{36}$/, 'the pod carries its uid');

  // Seven runs: the first, then restarts after ~0, 1, 2, 4, 4, 4 s of back-off (about 20 s).
  const stamps = await waitFor('seven runs to end', async () => {
    const found = parseWallStamps(await fileLines(runsFile));
    return found.filter((one) => one.label === 'exit').length >= 7 ? found : undefined;
  }, { timeoutMs: 45_000, intervalMs: 250 });
  t.same(stamps.slice(0, 14).map((one) => one.label), Array.from({ length: 14 }, (_, index) => (index % 2 === 0 ? 'start' : 'exit')), 'each run started, then exited, one at a time');
  const starts = stamps.filter((one) => one.label === 'start').map((one) => one.at);
  const exits = stamps.filter((one) => one.label === 'exit').map((one) => one.at);
  const waits = starts.slice(1, 7).map((start, index) => (start - (exits[index] ?? NaN)) / 1000);
  t.comment(`waits between an exit and the next start (s): ${waits.map((wait) => wait.toFixed(2)).join(', ')}`);

  // podman's own StartedAt for every run it was seen in is one of those starts (shortly before the stamp).
  const podmanStarts = recorder.runs.map((run) => run.startedAt);
  t.ok(podmanStarts.length >= 5, `podman inspect saw ${podmanStarts.length} of the runs`);
  t.ok(podmanStarts.every((at) => starts.some((stamp) => stamp - at >= -50 && stamp - at < 500)), 'every StartedAt podman recorded matches a run\'s own start stamp');
  t.ok(recorder.runs.every((run) => run.exitCode === undefined || run.exitCode === 1), 'every exit podman recorded has code 1');

  // When the agent decided each restart (its 'restarting container' line, logged just before
  // `podman start`), measured from the exit it restarts: never before the back-off is over.
  const decisions = agent.find({ event: 'ContainerRestarting' }, key).slice(0, 6).map((line, index) => (Date.parse(line.timestamp) - (exits[index] ?? NaN)) / 1000);
  t.comment(`restart decisions after the exit (s): ${decisions.map((decision) => decision.toFixed(2)).join(', ')}`);
  // The first restart waits for no back-off: decided before the 1 s the second one waits (the
  // start itself can take a second more on a busy machine, as for the others).
  t.ok((decisions[0] ?? Infinity) < 1, `the first restart is decided at once (${decisions[0]?.toFixed(2)} s)`);
  t.ok((waits[0] ?? Infinity) < 3, `and started within 3 s (${waits[0]?.toFixed(2)} s)`);
  for (const [index, wait] of waits.entries()) {
    if (index === 0) continue;
    const expected = expectedDelay(index);
    const decision = decisions[index] ?? NaN;
    // The back-off runs from the exit: the decision, and so the start, come no earlier than that.
    t.ok(decision >= expected - 0.05, `restart ${index + 1} was decided ${decision.toFixed(2)} s after the exit: not before its ${expected} s back-off`);
    t.ok(wait >= expected - 0.05, `restart ${index + 1} started ${wait.toFixed(2)} s after the exit: not before its ${expected} s back-off`);
    t.ok(decision <= expected + 1.5, `restart ${index + 1} was decided within 1.5 s of its ${expected} s back-off (${decision.toFixed(2)} s)`);
    // podman start is slow on a busy machine: the start may trail the decision by a second or two.
    t.ok(wait <= expected + 3, `restart ${index + 1} started within 3 s of its ${expected} s back-off (waited ${wait.toFixed(2)} s)`);
  }
  t.ok((waits[2] ?? 0) > (waits[1] ?? Infinity) && (waits[3] ?? 0) > (waits[2] ?? Infinity), 'the gaps grow');
  t.ok((decisions[4] ?? Infinity) < 6 && (decisions[5] ?? Infinity) < 6, `the back-off is capped at --backoff-max 4 (the last two restarts decided after ${decisions[4]?.toFixed(2)} s and ${decisions[5]?.toFixed(2)} s; doubling would be 8 s)`);

  // The status while it waits: CrashLoopBackOff with the kubelet's message, the last exit, the count.
  const message = `back-off 4s restarting failed container=crasher pod=${podName}_default(${uid})`;
  const waiting = await waitForStatus(world.stateDir, podName, 'CrashLoopBackOff, back-off 4s', (item) => {
    const container = containerOf(item, 'crasher');
    return container?.state.waiting?.reason === 'CrashLoopBackOff' && container.state.waiting.message === message ? { item, container } : undefined;
  }, { timeoutMs: 20_000 });
  t.equal(waiting.item.metadata.uid, uid, 'the status names the pod by its uid');
  t.same(waiting.container.state, { waiting: { reason: 'CrashLoopBackOff', message } }, 'waiting: CrashLoopBackOff with the back-off message');
  const last = waiting.container.lastState.terminated;
  t.equal(last?.exitCode, 1, 'lastState.terminated.exitCode 1');
  t.equal(last?.reason, 'Error', 'lastState.terminated.reason Error');
  const containerId = (await containerIds(node))[podmanContainer(podName, 'crasher')] ?? '';
  t.equal(last?.containerID, `podman://${containerId}`, 'lastState names the container');
  t.equal(waiting.container.containerID, `podman://${containerId}`, 'restarted in place: the same container');
  t.equal(waiting.container.ready, false, 'not ready');
  t.equal(waiting.item.status.phase, 'Running', 'phase Running: restartPolicy Always restarts it');
  // The run that ended last: its start in lastState (whole seconds, podman's) tells how many
  // restarts preceded it; a run's own stamp comes a little after podman's start.
  const base = Date.parse(last?.startedAt ?? '');
  const all = parseWallStamps(await fileLines(runsFile)).filter((one) => one.label === 'start').map((one) => one.at);
  const matching = all.map((at, index) => ({ at, index })).filter(({ at }) => at >= base && at < base + 1150);
  t.equal(matching.length, 1, `lastState.terminated.startedAt ${String(last?.startedAt)} is the start of one run`);
  t.equal(waiting.container.restartCount, matching[0]?.index, 'restartCount = the runs before the one that ended last');

  // Every sample of the status on the way: counts never go down, the message's delay follows the count.
  const counts = samples.map((sample) => sample.restartCount);
  t.ok(counts.every((count, index) => index === 0 || count >= (counts[index - 1] ?? 0)), `restartCount never decreases (${counts.join(',')})`);
  t.ok((counts.at(-1) ?? 0) >= 5, `restartCount grew to ${counts.at(-1)}`);
  const backoffs = samples.filter((sample) => sample.state.waiting?.reason === 'CrashLoopBackOff');
  t.ok(backoffs.length > 0, 'CrashLoopBackOff was seen while sampling');
  for (const sample of backoffs) {
    const delay = expectedDelay(sample.restartCount);
    t.equal(sample.state.waiting?.message, `back-off ${delay}s restarting failed container=crasher pod=${podName}_default(${uid})`, `after ${sample.restartCount} restarts the back-off is ${delay}s`);
  }

  // `podvisor status`: the table says CrashLoopBackOff and counts the restarts.
  const row = await waitFor('the status table to show CrashLoopBackOff', async () => {
    const found = (await statusTable(world.stateDir)).find((one) => one.NAME === podName);
    return found?.STATUS === 'CrashLoopBackOff' ? found : undefined;
  }, { timeoutMs: 20_000, intervalMs: 250 });
  t.equal(row.NAMESPACE, 'default');
  t.equal(row.READY, '0/1');
  t.match(row.RESTARTS ?? '', /^\d+ \(\d+s ago\)$/, 'RESTARTS: the count and when the last one ended');
  t.ok(Number((row.RESTARTS ?? '').split(' ')[0]) >= 5, `RESTARTS ${row.RESTARTS} counts the restarts`);

  // The agent restarted the one container in place, never the pod.
  const restarts = agent.find({ event: 'ContainerRestarting' }, key);
  t.ok(restarts.length >= 6, `the agent logged ${restarts.length} restarts`);
  t.ok(restarts.every((line) => line.container === 'crasher' && line.reason === 'restartPolicy Always: restarting crasher (exit code 1)'), 'each restart names the container and why');
  t.equal(agent.find({ event: 'PodCreating' }, key).length, 1, 'the pod was created once');
  t.equal(agent.find({ event: 'PodReplacing' }, key).length, 0, 'and never replaced');
  t.equal((await podsOf(node)).length, 1, 'one pod');
});
