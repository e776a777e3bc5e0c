// Supervision 4, a sidecar (an init container with restartPolicy Always): it starts before the
// app and keeps running beside it, is started again when it dies (whatever the pod's own
// restartPolicy), and when the pod is deleted it is stopped only after the app has exited. Each
// container stamps its start and its SIGTERM into a hostPath file on the kernel's uptime clock.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  containerOf,
  containerState,
  fileLines,
  IMAGE,
  parseStamps,
  podExists,
  podman,
  podmanContainer,
  podsOf,
  putManifest,
  setup,
  stamp,
  statusTable,
  waitFor,
  waitForStatus,
} from './harness.js';

const LOG = '/data/log';

function manifest(dir: string): string {
  const side = `${stamp('side-start', LOG)}; trap '${stamp('side-term', LOG)}; exit 0' TERM; sleep 3600 & wait`;
  // The app takes a second to exit after SIGTERM: a sidecar stopped alongside it would stamp first.
  const app = `${stamp('app-start', LOG)}; trap '${stamp('app-term', LOG)}; sleep 1; ${stamp('app-exit', LOG)}; exit 0' TERM; sleep 3600 & wait`;
  return `apiVersion: v1
kind: Pod
metadata:
  name: withside
spec:
  terminationGracePeriodSeconds: 10
  restartPolicy: Never
  volumes:
    - name: data
      hostPath: { path: ${dir}, type: DirectoryOrCreate }
  initContainers:
    - name: side
      image: ${IMAGE}
      restartPolicy: Always
      command: ["sh", "-c", ${JSON.stringify(side)}]
      volumeMounts: [{ name: data, mountPath: /data }]
  containers:
    - name: app
      image: ${IMAGE}
      command: ["sh", "-c", ${JSON.stringify(app)}]
      volumeMounts: [{ name: data, mountPath: /data }]
`;
}

t.test('a sidecar runs beside the app, is restarted, and stops after the app', async (t) => {
  const world = await setup(t, 'sv-sidecar');
  const { node } = world;
  const podName = `withside-${node}`;
  const key = `default/${podName}`;
  const dir = join(world.root, 'shared');
  const log = join(dir, 'log');
  const path = await putManifest(world.manifestDir, 'withside.yaml', manifest(dir));
  const agent = await world.startAgent(['--backoff-max', '4']);

  const running = await waitForStatus(world.stateDir, podName, 'the sidecar and the app running', (item) =>
    containerOf(item, 'side', true)?.state.running && containerOf(item, 'app')?.state.running ? item : undefined, { timeoutMs: 40_000 });
  t.equal(running.status.phase, 'Running', 'phase Running');
  t.same({ started: containerOf(running, 'side', true)?.started, ready: containerOf(running, 'side', true)?.ready }, { started: true, ready: true }, 'the sidecar is started and ready');
  t.same(parseStamps(await fileLines(log)).map((one) => one.label), ['side-start', 'app-start'], 'the sidecar started before the app');
  const side = await containerState(podmanContainer(podName, 'side'));
  const app = await containerState(podmanContainer(podName, 'app'));
  t.same([side.status, app.status], ['running', 'running'], 'podman: both run');
  t.ok(side.startedAt < app.startedAt, 'podman: the sidecar started first');
  const row = (await statusTable(world.stateDir)).find((entry) => entry.NAME === podName);
  t.same({ READY: row?.READY, STATUS: row?.STATUS }, { READY: '2/2', STATUS: 'Running' }, '`podvisor status`: 2/2 Running');

  // It keeps running while the app runs: several passes later, the same run of it.
  await agent.waitForRelists(3);
  t.equal((await containerState(podmanContainer(podName, 'side'))).startedAt, side.startedAt, 'the sidecar still runs the same process');

  // Killed behind podvisor's back, it is started again; the app is not touched.
  await podman('kill', '--signal', 'KILL', podmanContainer(podName, 'side'));
  const restarted = await waitForStatus(world.stateDir, podName, 'the sidecar restarted', (item) => {
    const status = containerOf(item, 'side', true);
    return status?.restartCount === 1 && status.state.running ? status : undefined;
  }, { timeoutMs: 20_000 });
  t.equal(restarted.lastState.terminated?.exitCode, 137, 'its last state: killed (137)');
  const sideAgain = await containerState(podmanContainer(podName, 'side'));
  t.ok(sideAgain.status === 'running' && sideAgain.startedAt > side.startedAt, 'podman: the sidecar runs again, a new start');
  t.equal((await containerState(podmanContainer(podName, 'app'))).startedAt, app.startedAt, 'podman: the app was never restarted');
  t.ok(agent.find({ event: 'ContainerRestarting' }, key).every((line) => line.container === 'side'), 'only the sidecar was restarted');
  t.same(parseStamps(await fileLines(log)).map((one) => one.label), ['side-start', 'app-start', 'side-start'], 'the sidecar ran again; the app did not');

  // Deleting the pod: the app gets SIGTERM and exits first; only then is the sidecar stopped.
  const [pod] = await podsOf(node);
  await rm(path);
  await waitFor('the pod to be removed', async () => pod && !(await podExists(pod.Id)), { timeoutMs: 30_000 });
  const stamps = parseStamps(await fileLines(log));
  t.same(stamps.map((one) => one.label), ['side-start', 'app-start', 'side-start', 'app-term', 'app-exit', 'side-term'], 'app TERM, app exit, then sidecar TERM');
  const at = Object.fromEntries(stamps.map((one) => [one.label, one.at]));
  t.ok((at['side-term'] ?? 0) >= (at['app-exit'] ?? Infinity), `the sidecar got SIGTERM after the app exited (${(at['side-term'] ?? 0) - (at['app-exit'] ?? 0)} ms later)`);
  // podman has the pod gone a moment before the agent's removal returns (its volumes go last).
  await agent.waitForLog({ event: 'PodRemoved' }, { pod: key, timeoutMs: 10_000 });
  t.equal(agent.find({ event: 'PodRemoved' }, key).length, 1, 'the agent removed the pod, once');
});
