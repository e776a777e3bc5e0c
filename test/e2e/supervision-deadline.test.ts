// Supervision 6, activeDeadlineSeconds: once the pod has been active that long its containers are
// stopped (not the pod removed), the status says Failed / DeadlineExceeded, and nothing is started
// again afterwards, even under restartPolicy Always. `podvisor describe` tells the story.
import t from 'tap';
import {
  containerOf,
  containerState,
  IMAGE,
  podExists,
  podmanContainer,
  podsOf,
  podvisorCli,
  putManifest,
  setup,
  statusOf,
  waitForStatus,
} from './harness.js';

// 6 s: long enough that a loaded machine still sees the pod Running before the deadline (3 s was
// not, now and then: the container had stopped by the time the test looked).
const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: deadline
spec:
  terminationGracePeriodSeconds: 2
  activeDeadlineSeconds: 6
  restartPolicy: Always
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`;

t.test('activeDeadlineSeconds stops the pod for good: Failed, DeadlineExceeded', async (t) => {
  const world = await setup(t, 'sv-deadline');
  const { node } = world;
  const podName = `deadline-${node}`;
  const key = `default/${podName}`;
  await putManifest(world.manifestDir, 'deadline.yaml', MANIFEST);
  const agent = await world.startAgent(['--backoff-max', '4']);
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const running = await waitForStatus(world.stateDir, podName, 'Running with a start time', (item) => (item.status.phase === 'Running' && item.status.startTime ? item : undefined), { timeoutMs: 20_000 });
  const startTime = Date.parse(running.status.startTime ?? '');
  const firstRun = await containerState(podmanContainer(podName, 'main'));
  t.equal(firstRun.status, 'running', 'the container runs at first');

  const stopping = await agent.waitForLog({ event: 'DeadlineExceeded' }, { pod: key, timeoutMs: 20_000 });
  const after = (Date.parse(stopping.timestamp) - startTime) / 1000;
  t.ok(after >= 6, `stopped ${after.toFixed(2)} s after status.startTime: not before the 6 s deadline`);
  t.ok(after <= 8.5, `and soon after it (${after.toFixed(2)} s)`);
  t.equal(stopping.reason, 'active longer than activeDeadlineSeconds (6s)');

  const failed = await waitForStatus(world.stateDir, podName, 'phase Failed', (item) => (item.status.phase === 'Failed' ? item : undefined), { timeoutMs: 15_000 });
  t.same({ phase: failed.status.phase, reason: failed.status.reason, message: failed.status.message },
    { phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' }, 'Failed: DeadlineExceeded');
  const [pod] = await podsOf(node);
  t.ok(pod && (await podExists(pod.Id)), 'the pod itself stays (stopped, not removed)');
  const stopped = await containerState(podmanContainer(podName, 'main'));
  t.same({ status: stopped.status, startedAt: stopped.startedAt }, { status: 'exited', startedAt: firstRun.startedAt }, 'podman: the container exited, its one run');
  // The phase turns Failed at the deadline; the container's state follows once it has stopped.
  const ended = await waitForStatus(world.stateDir, podName, 'the container terminated', (item) => containerOf(item, 'main')?.state.terminated, { timeoutMs: 10_000 });
  t.same({ exitCode: ended.exitCode, reason: ended.reason }, { exitCode: 0, reason: 'Completed' }, 'status: the container terminated (its TERM trap exits 0)');

  // Nothing comes back: not under restartPolicy Always, not after several passes.
  await agent.waitForRelists(5);
  const later = await statusOf(world.stateDir, podName);
  t.same({ phase: later?.status.phase, reason: later?.status.reason, restartCount: later ? containerOf(later, 'main')?.restartCount : undefined },
    { phase: 'Failed', reason: 'DeadlineExceeded', restartCount: 0 }, 'still Failed, DeadlineExceeded, restartCount 0 after 5 relists');
  const again = await containerState(podmanContainer(podName, 'main'));
  t.same({ status: again.status, startedAt: again.startedAt }, { status: 'exited', startedAt: firstRun.startedAt }, 'podman: never started again');
  t.equal(agent.find({ event: 'ContainerRestarting' }, key).length, 0, 'the agent restarted nothing');
  t.equal(agent.find({ event: ['PodCreating', 'PodReplacing'] }, key).length, 1, 'nor made the pod again');
  t.equal(agent.find({ event: 'DeadlineExceeded' }, key).length, 1, 'it was stopped once');

  // describe: the reason, and the events of the stop.
  const described = await podvisorCli('describe', 'deadline', '--state-dir', world.stateDir);
  t.equal(described.code, 0, 'describe exits 0');
  t.match(described.stdout, /^Status:\s+Failed$/m, 'Status: Failed');
  t.match(described.stdout, /^Reason:\s+DeadlineExceeded$/m, 'Reason: DeadlineExceeded');
  t.match(described.stdout, /^Message:\s+Pod was active on the node longer than the specified deadline$/m, 'Message');
  t.match(described.stdout, /^\s+Normal\s+DeadlineExceeded\s+.*podvisor\s+Pod was active on the node longer than the specified deadline$/m, 'a DeadlineExceeded event');
  t.match(described.stdout, /^\s+Normal\s+Killing\s+.*podvisor\s+Stopping container main$/m, 'a Killing event for the container');
});
