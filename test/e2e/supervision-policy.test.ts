// Supervision 2, restartPolicy: OnFailure leaves a container that exited 0 alone (the pod
// Succeeded) and restarts one that failed; Never restarts nothing (exit 0: Succeeded, exit 1:
// Failed). A terminal phase stays terminal over later relists, and podman's own record shows the
// container ran exactly once.
import t from 'tap';
import {
  containerOf,
  containerState,
  IMAGE,
  podmanContainer,
  podYaml,
  putManifest,
  setup,
  statusOf,
  statusTable,
  waitForStatus,
} from './harness.js';

/** One container that runs for a moment and exits with `code`. */
const oneShot = (code: number) => [
  '    - name: job',
  `      image: ${IMAGE}`,
  `      command: ["sh", "-c", "sleep 0.3; exit ${code}"]`,
  '',
].join('\n');

interface Case {
  name: string;
  restartPolicy: 'OnFailure' | 'Never';
  exitCode: number;
  phase: 'Succeeded' | 'Failed';
  reason: 'Completed' | 'Error';
}

const TERMINAL: Case[] = [
  { name: 'onfailure-ok', restartPolicy: 'OnFailure', exitCode: 0, phase: 'Succeeded', reason: 'Completed' },
  { name: 'never-ok', restartPolicy: 'Never', exitCode: 0, phase: 'Succeeded', reason: 'Completed' },
  { name: 'never-fail', restartPolicy: 'Never', exitCode: 1, phase: 'Failed', reason: 'Error' },
];

t.test('OnFailure and Never restart only what their policy says; terminal phases stay', async (t) => {
  const world = await setup(t, 'sv-policy');
  const { node } = world;
  for (const one of TERMINAL) {
    await putManifest(world.manifestDir, `${one.name}.yaml`, podYaml({ name: one.name, grace: 1, restartPolicy: one.restartPolicy, containers: oneShot(one.exitCode) }));
  }
  // The contrast: OnFailure does restart a container that failed.
  await putManifest(world.manifestDir, 'onfailure-fail.yaml', podYaml({ name: 'onfailure-fail', grace: 1, restartPolicy: 'OnFailure', containers: oneShot(1) }));
  const agent = await world.startAgent(['--backoff-max', '4']);

  const firstRuns = new Map<string, number>();
  for (const one of TERMINAL) {
    const podName = `${one.name}-${node}`;
    const pod = await waitForStatus(world.stateDir, podName, `phase ${one.phase}`, (item) => (item.status.phase === one.phase ? item : undefined), { timeoutMs: 40_000 });
    const job = containerOf(pod, 'job');
    t.same(
      { exitCode: job?.state.terminated?.exitCode, reason: job?.state.terminated?.reason, restartCount: job?.restartCount },
      { exitCode: one.exitCode, reason: one.reason, restartCount: 0 },
      `${one.name}: terminated with exit code ${one.exitCode} (${one.reason}), never restarted`,
    );
    const state = await containerState(podmanContainer(podName, 'job'));
    t.same({ status: state.status, exitCode: state.exitCode }, { status: 'exited', exitCode: one.exitCode }, `${one.name}: podman has it exited with ${one.exitCode}`);
    firstRuns.set(one.name, state.startedAt);
  }

  const restarted = await waitForStatus(world.stateDir, `onfailure-fail-${node}`, 'a restart of the failing container', (item) => {
    const job = containerOf(item, 'job');
    return job && job.restartCount >= 1 ? item : undefined;
  }, { timeoutMs: 30_000 });
  t.equal(restarted.status.phase, 'Running', 'OnFailure with a failed container: Running while it is restarted');
  t.equal(containerOf(restarted, 'job')?.lastState.terminated?.exitCode, 1, 'its last state is the failure');

  // Several passes later nothing has changed for the terminal pods: no restart, no new phase.
  await agent.waitForRelists(5);
  for (const one of TERMINAL) {
    const podName = `${one.name}-${node}`;
    const pod = await statusOf(world.stateDir, podName);
    t.equal(pod?.status.phase, one.phase, `${one.name}: still ${one.phase} after 5 relists`);
    t.equal(pod ? containerOf(pod, 'job')?.restartCount : undefined, 0, `${one.name}: restartCount still 0`);
    const ready = pod?.status.conditions.find((condition) => condition.type === 'Ready');
    t.same({ status: ready?.status, reason: ready?.reason }, { status: 'False', reason: one.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed' }, `${one.name}: Ready False (${one.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed'})`);
    const state = await containerState(podmanContainer(podName, 'job'));
    t.equal(state.startedAt, firstRuns.get(one.name), `${one.name}: podman never started it again`);
    t.equal(state.status, 'exited', `${one.name}: still exited`);
    t.equal(agent.find({ event: 'ContainerRestarting' }, `default/${podName}`).length, 0, `${one.name}: the agent logged no restart`);
  }
  t.ok(agent.find({ event: 'ContainerRestarting' }, `default/onfailure-fail-${node}`).length >= 1, 'the failing OnFailure container was restarted');

  // `podvisor status` prints what kubectl would: Completed for the succeeded, Error for the failed.
  const rows = await statusTable(world.stateDir);
  for (const one of TERMINAL) {
    const row = rows.find((entry) => entry.NAME === `${one.name}-${node}`);
    t.same({ READY: row?.READY, STATUS: row?.STATUS, RESTARTS: row?.RESTARTS }, { READY: '0/1', STATUS: one.reason, RESTARTS: '0' }, `${one.name}: the table says ${one.reason}`);
  }
});
