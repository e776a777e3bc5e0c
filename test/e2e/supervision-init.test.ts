// Supervision 3, init containers: they run one at a time, in order, each to exit 0, before any
// app container starts (each container appends its name and the kernel's uptime to a hostPath
// file); a failing init container fails the pod under restartPolicy Never and is retried with
// back-off under Always, the app never starting in either case.
import { join } from 'node:path';
import t from 'tap';
import {
  containerOf,
  containersOf,
  containerState,
  fileLines,
  IMAGE,
  parseStamps,
  podmanContainer,
  podYaml,
  putManifest,
  setup,
  stamp,
  statusOf,
  statusTable,
  waitFor,
  waitForStatus,
} from './harness.js';

/** A pod whose containers share the host directory `dir` at /data. */
function podWithInit(name: string, dir: string, restartPolicy: string, inits: [string, string][], app: string): string {
  const volumes = ['  volumes:', '    - name: data', `      hostPath: { path: ${dir}, type: DirectoryOrCreate }`];
  const container = (containerName: string, script: string) => [
    `    - name: ${containerName}`,
    `      image: ${IMAGE}`,
    `      command: ["sh", "-c", ${JSON.stringify(script)}]`,
    '      volumeMounts: [{ name: data, mountPath: /data }]',
  ];
  const initLines = ['  initContainers:', ...inits.flatMap(([containerName, script]) => container(containerName, script))];
  return podYaml({ name, grace: 1, restartPolicy, extraSpec: [...volumes, ...initLines].join('\n'), containers: `${container('app', app).join('\n')}\n` });
}

const LOG = '/data/log';
const runForever = `trap 'exit 0' TERM; sleep 3600 & wait`;

t.test('init containers run in order and gate the app; a failing one fails or retries the pod', async (t) => {
  const world = await setup(t, 'sv-init');
  const { node } = world;
  const dirs = { ordered: join(world.root, 'ordered'), never: join(world.root, 'never'), always: join(world.root, 'always') };
  await putManifest(world.manifestDir, 'ordered.yaml', podWithInit('ordered', dirs.ordered, 'Always', [
    ['init1', `${stamp('init1-start', LOG)}; sleep 1; ${stamp('init1-end', LOG)}`],
    ['init2', `${stamp('init2-start', LOG)}; sleep 1; ${stamp('init2-end', LOG)}`],
  ], `${stamp('app-start', LOG)}; ${runForever}`));
  await putManifest(world.manifestDir, 'never.yaml', podWithInit('initfail-never', dirs.never, 'Never', [
    ['init1', `${stamp('init1', LOG)}; exit 1`],
  ], `${stamp('app', LOG)}; ${runForever}`));
  await putManifest(world.manifestDir, 'always.yaml', podWithInit('initfail-always', dirs.always, 'Always', [
    ['init1', `${stamp('init1', LOG)}; sleep 0.3; exit 1`],
  ], `${stamp('app', LOG)}; ${runForever}`));
  const agent = await world.startAgent(['--backoff-max', '4']);

  await t.test('init1, init2, then the app', async (t) => {
    const podName = `ordered-${node}`;
    const pod = await waitForStatus(world.stateDir, podName, 'phase Running with the app running', (item) =>
      item.status.phase === 'Running' && containerOf(item, 'app')?.state.running ? item : undefined, { timeoutMs: 40_000 });
    const lines = await waitFor('the app to write its line', async () => {
      const found = await fileLines(join(dirs.ordered, 'log'));
      return found.length >= 5 ? found : undefined;
    }, { timeoutMs: 10_000 });
    const stamps = parseStamps(lines);
    t.same(stamps.map((one) => one.label), ['init1-start', 'init1-end', 'init2-start', 'init2-end', 'app-start'], 'in order, one at a time');
    const at = Object.fromEntries(stamps.map((one) => [one.label, one.at]));
    t.ok((at['init2-start'] ?? 0) >= (at['init1-end'] ?? Infinity), 'init2 started after init1 ended');
    t.ok((at['app-start'] ?? 0) >= (at['init2-end'] ?? Infinity), 'the app started after init2 ended');
    t.ok((at['init1-end'] ?? 0) - (at['init1-start'] ?? 0) >= 950, 'init1 ran its full second');

    // podman's own record agrees: both init containers exited 0 before the app started.
    const init1 = await containerState(podmanContainer(podName, 'init1'));
    const init2 = await containerState(podmanContainer(podName, 'init2'));
    const app = await containerState(podmanContainer(podName, 'app'));
    t.same([init1.status, init1.exitCode, init2.status, init2.exitCode, app.status], ['exited', 0, 'exited', 0, 'running'], 'podman: init1 and init2 exited 0, the app runs');
    t.ok(init2.startedAt >= (init1.finishedAt ?? Infinity), 'podman: init2 started after init1 finished');
    t.ok(app.startedAt >= (init2.finishedAt ?? Infinity), 'podman: the app started after init2 finished');

    for (const name of ['init1', 'init2']) {
      const status = containerOf(pod, name, true);
      t.same({ exitCode: status?.state.terminated?.exitCode, reason: status?.state.terminated?.reason, ready: status?.ready, restartCount: status?.restartCount },
        { exitCode: 0, reason: 'Completed', ready: true, restartCount: 0 }, `status: ${name} terminated Completed, ready`);
    }
    t.equal(pod.status.conditions.find((condition) => condition.type === 'Initialized')?.status, 'True', 'Initialized True');

    // Later passes run no init container again.
    await agent.waitForRelists(3);
    t.equal((await fileLines(join(dirs.ordered, 'log'))).length, 5, 'nothing ran again');
    t.equal((await containerState(podmanContainer(podName, 'init1'))).startedAt, init1.startedAt, 'podman never started init1 again');
  });

  await t.test('restartPolicy Never: a failed init container fails the pod, the app never starts', async (t) => {
    const podName = `initfail-never-${node}`;
    const pod = await waitForStatus(world.stateDir, podName, 'phase Failed', (item) => (item.status.phase === 'Failed' ? item : undefined), { timeoutMs: 40_000 });
    const init = containerOf(pod, 'init1', true);
    t.same({ exitCode: init?.state.terminated?.exitCode, reason: init?.state.terminated?.reason, restartCount: init?.restartCount },
      { exitCode: 1, reason: 'Error', restartCount: 0 }, 'init1 terminated with exit code 1, not restarted');
    t.same(containerOf(pod, 'app')?.state, { waiting: { reason: 'PodInitializing' } }, 'the app waits: PodInitializing');
    await agent.waitForRelists(4);
    const later = await statusOf(world.stateDir, podName);
    t.equal(later?.status.phase, 'Failed', 'still Failed 4 relists later');
    t.same(await fileLines(join(dirs.never, 'log')).then((lines) => parseStamps(lines).map((one) => one.label)), ['init1'], 'init1 ran once, the app never');
    const names = (await containersOf(node)).map((entry) => entry.Names[0]);
    t.notOk(names.includes(podmanContainer(podName, 'app')), 'podman has no app container for the pod');
    const row = (await statusTable(world.stateDir)).find((entry) => entry.NAME === podName);
    t.equal(row?.STATUS, 'Init:Error', '`podvisor status` says Init:Error');
  });

  await t.test('restartPolicy Always: a failed init container is retried with back-off', async (t) => {
    const podName = `initfail-always-${node}`;
    const uid = (await waitForStatus(world.stateDir, podName, 'a uid', (item) => item.metadata.uid)) ?? '';
    const pod = await waitForStatus(world.stateDir, podName, 'init1 restarted twice', (item) => {
      const init = containerOf(item, 'init1', true);
      return init && init.restartCount >= 2 ? item : undefined;
    }, { timeoutMs: 30_000 });
    t.equal(pod.status.phase, 'Pending', 'the pod is Pending while init1 fails');
    const init = containerOf(pod, 'init1', true);
    t.equal(init?.lastState.terminated?.exitCode, 1, 'init1 last state: exit code 1');
    t.equal(init?.lastState.terminated?.reason, 'Error', 'init1 last state: Error');

    const backingOff = await waitForStatus(world.stateDir, podName, 'init1 in CrashLoopBackOff', (item) => {
      const status = containerOf(item, 'init1', true);
      return status?.state.waiting?.reason === 'CrashLoopBackOff' ? status : undefined;
    }, { timeoutMs: 20_000 });
    t.match(backingOff.state.waiting?.message ?? '', new RegExp(`^back-off [124]s restarting failed container=init1 pod=${podName}_default\\(${uid}\\)$`), 'the kubelet\'s back-off message');
    const row = await waitFor('the status table to show Init:CrashLoopBackOff', async () => {
      const found = (await statusTable(world.stateDir)).find((entry) => entry.NAME === podName);
      return found?.STATUS === 'Init:CrashLoopBackOff' ? found : undefined;
    }, { timeoutMs: 20_000, intervalMs: 250 });
    t.equal(row.READY, '0/1', 'READY 0/1');

    const labels = parseStamps(await fileLines(join(dirs.always, 'log'))).map((one) => one.label);
    // As the kubelet's back-off: the first retry at once, not after the initial delay (1 s here).
    // Timed by the agent's own log: from the line that reports the exit to the retry it decided on.
    const at = (line: { timestamp: string }) => Date.parse(line.timestamp);
    const exits = agent.lines.filter((line) => line.event === 'ContainerExited' && line.pod === `default/${podName}` && line.container === 'init1' && line.exitCode === 1).map(at);
    const retries = agent.find({ event: 'ContainersCreating' }, `default/${podName}`).map(at);
    const firstWait = (retries.find((time) => time >= (exits[0] ?? Infinity)) ?? Infinity) - (exits[0] ?? 0);
    t.ok(firstWait < 1000, `the first retry was decided ${firstWait} ms after the exit, without the 1 s back-off`);
    t.same(agent.find({ event: 'ActionFailed', action: 'createContainers' }, `default/${podName}`), [], 'no failed action for the init container\'s exit');
    t.ok(labels.length >= 3 && labels.every((label) => label === 'init1'), `init1 ran ${labels.length} times, the app never`);
    // The status file is written every 2 s: it catches up with the runs the file shows.
    const later = await waitForStatus(world.stateDir, podName, `init1 restartCount ${labels.length - 1}`, (item) =>
      (containerOf(item, 'init1', true)?.restartCount ?? 0) >= labels.length - 1 ? item : undefined, { timeoutMs: 10_000 });
    t.pass(`restartCount counts the retries (${containerOf(later, 'init1', true)?.restartCount} after ${labels.length} runs)`);
    t.same(containerOf(later, 'app')?.state, { waiting: { reason: 'PodInitializing' } }, 'the app waits: PodInitializing');
    const names = (await containersOf(node)).map((entry) => entry.Names[0]);
    t.notOk(names.includes(podmanContainer(podName, 'app')), 'podman has no app container for the pod');
    t.equal(agent.find({ event: 'PodCreating' }, `default/${podName}`).length, 1, 'the pod itself was created once');
  });
});
