// Scenario 3, deleting a file: the pod is stopped with its grace period. A container that
// ignores SIGTERM is killed only once terminationGracePeriodSeconds have passed.
import { rm } from 'node:fs/promises';
import t from 'tap';
import { exec, IMAGE, podExists, podsOf, podYaml, putManifest, setup, waitFor } from './harness.js';

const GRACE_SECONDS = 3;

t.test('a deleted manifest stops its pod after the grace period', async (t) => {
  const world = await setup(t, 'delete');
  const { node } = world;
  const key = `default/stubborn-${node}`;
  const podmanName = `default_stubborn-${node}`;
  const stubborn = [
    '    - name: stubborn',
    `      image: ${IMAGE}`,
    // Ignores SIGTERM (its sleep children inherit the ignored disposition); only SIGKILL ends it.
    `      command: ["sh", "-c", "trap '' TERM; echo ready > /tmp/ready; while true; do sleep 1; done"]`,
    '',
  ].join('\n');
  const path = await putManifest(world.manifestDir, 'stubborn.yaml', podYaml({ name: 'stubborn', grace: GRACE_SECONDS, containers: stubborn }));

  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  // The trap is set once the marker exists.
  await waitFor('the container to be ready', async () => (await exec(`${podmanName}_stubborn`, 'cat', '/tmp/ready')) === 'ready', { timeoutMs: 20_000 });
  const [pod] = await podsOf(node);
  if (!pod) throw new Error('no pod');

  const deletedAt = Date.now();
  await rm(path);
  await agent.waitForLog({ event: 'ManifestRemoved' }, { timeoutMs: 20_000 });
  await waitFor('the pod to be removed', async () => !(await podExists(pod.Id)), { timeoutMs: 60_000, intervalMs: 100 });
  const goneAt = Date.now();
  const tookMs = goneAt - deletedAt;
  t.ok(tookMs >= GRACE_SECONDS * 1000, `removal took ${tookMs} ms, at least the ${GRACE_SECONDS}s grace period`);
  t.ok(tookMs <= GRACE_SECONDS * 1000 + 30_000, `removal took ${tookMs} ms, within a generous bound`);

  const stopping = await agent.waitForLog(`stopping pod (grace period ${GRACE_SECONDS}s)`, { pod: key });
  t.equal(stopping.reason, 'no manifest asks for it');
  const stoppedMs = goneAt - Date.parse(stopping.timestamp);
  t.ok(stoppedMs >= GRACE_SECONDS * 1000, `the pod outlived the stop by ${stoppedMs} ms, at least the grace period`);

  t.same(await podsOf(node), [], 'no pods left for the node');
  await agent.waitForRelists(2);
  t.same(await podsOf(node), [], 'and none comes back');
  t.equal(agent.find({ event: 'PodCreating' }, key).length, 1, 'created once, never again');
});
