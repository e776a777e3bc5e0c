// Scenario 4, an invalid edit: the running pod is left exactly as it was (same pod, same
// containers, never restarted) and the agent logs an error naming file, line, column and field.
import { writeFile } from 'node:fs/promises';
import t from 'tap';
import { ACTION_EVENTS, containerIds, IMAGE, podsOf, putManifest, setup, startedAt, type AgentProcess } from './harness.js';

const GOOD = `apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: ${IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
      env:
        - { name: COLOUR, value: red }
`;

// The same pod with its image removed (and an env change that must not be applied either).
const NO_IMAGE = `apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
      env:
        - { name: COLOUR, value: blue }
`;

const NOT_A_LIST = `apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  terminationGracePeriodSeconds: 2
  containers: 3
`;

t.test('an invalid edit leaves the running pod alone', async (t) => {
  const world = await setup(t, 'invalid');
  const { node } = world;
  const key = `default/app-${node}`;
  const main = `default_app-${node}_main`;
  const path = await putManifest(world.manifestDir, 'app.yaml', GOOD);
  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });

  const [pod] = await podsOf(node);
  if (!pod) throw new Error('no pod');
  const ids = await containerIds(node);
  const started = await startedAt(main);
  t.same(Object.keys(ids), [main]);

  /** Checks, after a few passes, that the pod is the very one that ran before. */
  const untouched = async (agent: AgentProcess, when: string) => {
    await agent.waitForRelists(3);
    const pods = await podsOf(node);
    t.same(pods.map((entry) => entry.Id), [pod.Id], `${when}: the same single pod`);
    t.equal(pods[0]?.Labels?.['io.podvisor.hash'], pod.Labels?.['io.podvisor.hash'], `${when}: the same hash`);
    t.same(await containerIds(node), ids, `${when}: the same containers`);
    t.equal(await startedAt(main), started, `${when}: not restarted`);
    t.same(agent.find({ event: ACTION_EVENTS.filter((event) => event !== 'PodCreating') }).map((line) => line.message), [],
      `${when}: no action on the pod`);
  };

  await writeFile(path, NO_IMAGE);
  const missing = await agent.waitForLog(`${path}:8:7: spec.containers[0].image: Required`, { timeoutMs: 20_000 });
  t.equal(missing.level, 'error');
  t.equal(missing.source, path);
  const kept = await agent.waitForLog({ event: 'ManifestInvalid' });
  t.equal(kept.level, 'error');
  t.equal(kept.source, path);
  await untouched(agent, 'image removed');

  await writeFile(path, NOT_A_LIST);
  const notAList = await agent.waitForLog(`${path}:7:3: spec.containers: must be a list, got number`, { timeoutMs: 20_000 });
  t.equal(notAList.level, 'error');
  await untouched(agent, 'containers: 3');

  // A fresh agent (a crash, a reboot) that has never seen the file valid keeps the pod too.
  await agent.stop('SIGKILL');
  const fresh = await world.startAgent();
  const keeping = await fresh.waitForLog({ event: 'PodKept' }, { pod: key, timeoutMs: 20_000 });
  t.equal(keeping.source, path);
  t.equal(fresh.find(`${path}:7:3: spec.containers: must be a list, got number`).length, 1, 'the fresh agent names the error too');
  await untouched(fresh, 'fresh agent, file still invalid');

  // Putting the good text back is the same pod: still nothing to do.
  const snapshots = fresh.find({ event: 'DesiredState' }).length;
  await writeFile(path, GOOD);
  await fresh.waitForCount({ event: 'DesiredState' }, snapshots + 1, { timeoutMs: 20_000 });
  await untouched(fresh, 'restored');
  t.equal(agent.find({ event: 'PodCreating' }, key).length, 1, 'created once');
  t.equal(fresh.find({ event: 'PodCreating' }, key).length, 0, 'and not by the fresh agent');
});
