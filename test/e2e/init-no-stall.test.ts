// Init containers never hold up the node: a pod whose init container waits forever (the usual
// "wait for the database") is one step in flight, not a start slot held. With more such pods than
// start slots, a plain pod dropped beside them still starts; activeDeadlineSeconds and deletion
// act on a pod in its init phase.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { IMAGE, podExists, podsOf, podYaml, putManifest, setup, sleeper, waitFor, waitForStatus } from './harness.js';

/** A pod whose init container waits for an hour before its app container may start. */
const waiting = (name: string, extraSpec?: string) => podYaml({
  name,
  ...(extraSpec ? { extraSpec } : {}),
  containers: sleeper('main'),
}).replace('  containers:\n', `  initContainers:\n    - name: wait-for-db\n      image: ${IMAGE}\n      command: ["sh", "-c", "trap 'exit 1' TERM; sleep 3600 & wait"]\n  containers:\n`);

t.test('pods waiting in init delay no other pod; deadline and deletion act during init', async (t) => {
  const world = await setup(t, 'init-stall');
  const { node, manifestDir, stateDir } = world;
  // Four waiting pods: more than the agent's start slots (3).
  for (const name of ['wait1', 'wait2', 'wait3', 'wait4']) await putManifest(manifestDir, `${name}.yaml`, waiting(name));
  await putManifest(manifestDir, 'deadline.yaml', waiting('deadline', '  activeDeadlineSeconds: 4'));
  const agent = await world.startAgent();
  for (const name of ['wait1', 'wait2', 'wait3', 'wait4']) {
    await waitForStatus(stateDir, `${name}-${node}`, 'init container running', (item) => item.status.initContainerStatuses[0]?.state.running, { timeoutMs: 60_000 });
  }

  // A plain pod dropped beside them starts (before, it waited for an init container to end).
  await putManifest(manifestDir, 'plain.yaml', podYaml({ name: 'plain', containers: sleeper('main') }));
  const plain = await waitForStatus(stateDir, `plain-${node}`, 'Running', (item) => (item.status.phase === 'Running' ? item : undefined), { timeoutMs: 30_000 });
  t.equal(plain.status.phase, 'Running', 'the plain pod runs while four pods wait in init');

  // activeDeadlineSeconds in the init phase: the pod is stopped, Failed, DeadlineExceeded.
  const failed = await waitForStatus(stateDir, `deadline-${node}`, 'Failed', (item) => (item.status.phase === 'Failed' ? item : undefined), { timeoutMs: 30_000 });
  t.equal(failed.status.reason, 'DeadlineExceeded', 'the deadline acted during init');

  // Deleting a pod's manifest during init removes the pod.
  const [before] = (await podsOf(node)).filter((pod) => pod.Labels?.['io.podvisor.name'] === `wait1-${node}`);
  t.ok(before, 'wait1 exists');
  await rm(join(manifestDir, 'wait1.yaml'));
  await waitFor('wait1 removed', async () => !(await podExists(before?.Id ?? 'none')), { timeoutMs: 30_000 });
  t.pass('the pod waiting in init was removed with its manifest');
  t.ok(agent.running, 'the agent is still running');
  const stillWaiting = await waitForStatus(stateDir, `wait2-${node}`, 'still in init', (item) => item.status.initContainerStatuses[0]?.state.running);
  t.ok(stillWaiting, 'the other pods still wait in init, untouched');
});
