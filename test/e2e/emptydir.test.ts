// Scenario 7, emptyDir lifetime: its data survives a container restart (the container sees
// what its previous run wrote) and is gone with the pod.
import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { containersOf, IMAGE, podExists, podsOf, putManifest, setup, waitFor } from './harness.js';

t.test('emptyDir data survives a restart and goes with the pod', async (t) => {
  const world = await setup(t, 'emptydir');
  const { node } = world;
  const key = `default/crashy-${node}`;
  const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: crashy
spec:
  terminationGracePeriodSeconds: 2
  restartPolicy: Always
  volumes:
    - name: data
      emptyDir: {}
  containers:
    - name: writer
      image: ${IMAGE}
      # Each start appends one line numbered by the lines it found, then fails.
      command: ["sh", "-c", "touch /data/log; n=\`wc -l < /data/log\`; echo \\"start $n\\" >> /data/log; exit 1"]
      volumeMounts:
        - { name: data, mountPath: /data }
`;
  const path = await putManifest(world.manifestDir, 'crashy.yaml', manifest);
  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });

  const [pod] = await podsOf(node);
  if (!pod) throw new Error('no pod');
  const [first] = await containersOf(node);
  if (!first) throw new Error('no container');
  const uid = pod.Labels?.['io.podvisor.uid'] ?? '';
  t.match(uid, /^[0-9a-f-]{36}$/);
  const podDir = join(world.stateDir, 'pods', uid);
  const log = join(podDir, 'volumes', 'data', 'log');

  const lines = await waitFor('a second line in the emptyDir', async () => {
    const text = await readFile(log, 'utf8').catch(() => '');
    const found = text.split('\n').filter(Boolean);
    return found.length >= 2 ? found : undefined;
  }, { timeoutMs: 30_000 });
  t.same(lines.slice(0, 2), ['start 0', 'start 1'], 'the restarted container found the line its first run wrote');

  const restart = await agent.waitForLog({ event: 'ContainerRestarting' }, { pod: key });
  t.equal(restart.container, 'writer');
  t.equal(restart.reason, 'restartPolicy Always: restarting writer (exit code 1)');
  const [again] = await containersOf(node);
  t.equal(again?.Id, first.Id, 'restarted in place: the same container');
  t.same((await podsOf(node)).map((entry) => entry.Id), [pod.Id], 'the same pod');
  t.equal(agent.find({ event: 'PodReplacing' }, key).length, 0, 'never replaced');

  await rm(path);
  await waitFor('the pod to be gone', async () => !(await podExists(pod.Id)), { timeoutMs: 30_000 });
  const dirGone = await waitFor(`${podDir} to be removed`, () => access(podDir).then(() => false, () => true), { timeoutMs: 20_000 })
    .catch(() => false);
  t.ok(dirGone, 'the pod directory with its emptyDir is gone with the pod');
  await agent.waitForLog({ event: 'PodRemoved' }, { pod: key, timeoutMs: 10_000 });
  t.equal(agent.find({ event: 'PodRemoved' }, key).length, 1, "the agent logged 'pod removed', once");
  await access(join(world.stateDir, 'pods')).then(() => t.pass('the state directory itself stays'), () => t.fail('pods/ is gone'));
});
