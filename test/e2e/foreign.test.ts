// Scenario 6, pods podvisor did not create: a plain podman pod without labels, and a pod that
// carries podvisor's labels for another node name. The agent leaves both exactly as they are,
// across many passes, with an empty manifest directory and while it runs and removes its own.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import t from 'tap';
import { ACTION_EVENTS, IMAGE, podExists, podman, podsOf, podYaml, putManifest, setup, sleeper, waitFor } from './harness.js';

const SLEEP = "trap 'exit 0' TERM; sleep 3600 & wait";

t.test('the agent leaves pods it did not create alone', async (t) => {
  const world = await setup(t, 'foreign');
  const { node } = world;
  const suffix = randomBytes(3).toString('hex');

  // A plain pod: no labels at all; one running and one exited container.
  const plain = `e2e-foreign-plain-${suffix}`;
  world.ownPodmanObjects.push(plain);
  await podman('pod', 'create', '--name', plain);
  await podman('run', '--detach', '--pod', plain, '--name', `${plain}_run`, IMAGE, 'sh', '-c', SLEEP);
  await podman('run', '--pod', plain, '--name', `${plain}_done`, IMAGE, 'sh', '-c', 'exit 1').catch(() => undefined);

  // A pod labelled as podvisor's, for another node. Its exited container would be restarted
  // and its unknown hash would make it replaced, if the agent took it for its own.
  const other = `e2e-foreign-other-${suffix}`;
  const otherPod = `default_app-${other}`;
  world.ownPodmanObjects.push(otherPod);
  const labels = [
    'io.podvisor.managed=true',
    `io.podvisor.node=${other}`,
    'io.podvisor.namespace=default',
    `io.podvisor.name=app-${other}`,
    'io.podvisor.hash=0123456789abcdef',
    'io.podvisor.uid=00000000-0000-0000-0000-000000000000',
  ].flatMap((label) => ['--label', label]);
  await podman('pod', 'create', '--name', otherPod, ...labels, '--label', 'io.podvisor.grace-period=0', '--label', 'io.podvisor.source=/nowhere/app.yaml');
  await podman('run', '--detach', '--pod', otherPod, '--name', `${otherPod}_main`, ...labels,
    '--label', 'io.podvisor.container=main', '--label', 'io.podvisor.container-kind=app', IMAGE, 'sh', '-c', SLEEP);
  await podman('run', '--pod', otherPod, '--name', `${otherPod}_crashed`, ...labels,
    '--label', 'io.podvisor.container=crashed', '--label', 'io.podvisor.container-kind=app', IMAGE, 'sh', '-c', 'exit 1').catch(() => undefined);

  const foreignContainers = [`${plain}_run`, `${plain}_done`, `${otherPod}_main`, `${otherPod}_crashed`];
  /** Each foreign container's id, state and start time, as podman reports them. */
  const snapshot = async () => {
    const out: string[] = [];
    for (const name of foreignContainers) {
      out.push(`${name} ${(await podman('inspect', '--type', 'container', '--format', '{{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.State.FinishedAt}}', name)).trim()}`);
    }
    return out;
  };
  const before = await snapshot();
  t.match(before, [/ running /, / exited /, / running /, / exited /], 'the foreign containers as made');
  const podIds = [(await podman('pod', 'inspect', '--format', '{{.Id}}', plain)).trim(), (await podman('pod', 'inspect', '--format', '{{.Id}}', otherPod)).trim()];

  const unchanged = async (when: string) => {
    t.same(await snapshot(), before, `${when}: foreign containers unchanged`);
    for (const id of podIds) t.ok(await podExists(id), `${when}: foreign pod ${id.slice(0, 12)} still there`);
  };

  const agent = await world.startAgent();
  const warning = await agent.waitForLog({ event: 'ForeignPods' }, { timeoutMs: 20_000 });
  t.equal(warning.level, 'warn');
  t.ok(Number(warning.count) >= 1, 'the foreign-node pod is counted');
  await agent.waitForRelists(4);
  await unchanged('empty manifest directory');
  t.same(await podsOf(node), [], 'no pods of its own');
  t.same(agent.find({ event: ACTION_EVENTS }).map((line) => line.message), [], 'no actions');

  // With a manifest of its own, whose pod has the same manifest name as the foreign-node pod.
  const key = `default/app-${node}`;
  const path = await putManifest(world.manifestDir, 'app.yaml', podYaml({ name: 'app', grace: 2, containers: sleeper('main') }));
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  await agent.waitForRelists(3);
  t.same((await podsOf(node)).map((pod) => pod.Name), [`default_app-${node}`], 'its own pod');
  await unchanged('own pod running');

  await rm(path);
  await waitFor('own pod gone', async () => (await podsOf(node)).length === 0, { timeoutMs: 30_000 });
  await agent.waitForRelists(3);
  await unchanged('own pod removed');
  t.same(agent.find({ event: ACTION_EVENTS }).map((line) => `${line.message} ${String(line.pod)}`),
    [`creating pod ${key}`, `stopping pod (grace period 2s) ${key}`], 'the agent acted on its own pod only');
});
