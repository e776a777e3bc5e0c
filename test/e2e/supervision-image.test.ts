// Supervision 7, an image that is not there under imagePullPolicy Never: the container waits
// with the kubelet's ErrImageNeverPull reason and message, and the agent retries creating the
// container with back-off (1 s, 2 s, 4 s, ...) in the one pod it made, never recreating the pod in
// a tight loop.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { containerOf, podsOf, putManifest, setup, statusTable, waitFor, waitForStatus } from './harness.js';

const MISSING = 'localhost/podvisor-missing:never';

const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: noimage
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: ${MISSING}
      imagePullPolicy: Never
      command: ["sleep", "3600"]
`;

t.test('a missing image with pull policy Never: ErrImageNeverPull, retried with back-off, no tight loop', async (t) => {
  const world = await setup(t, 'sv-image');
  const { node } = world;
  const podName = `noimage-${node}`;
  const key = `default/${podName}`;
  await putManifest(world.manifestDir, 'noimage.yaml', MANIFEST);
  const agent = await world.startAgent(['--backoff-max', '4']);
  await agent.waitForLog({ event: 'PodCreating' }, { pod: key, timeoutMs: 30_000 });

  const message = `Container image "${MISSING}" is not present with pull policy of Never`;
  const pod = await waitForStatus(world.stateDir, podName, 'ErrImageNeverPull', (item) => {
    const app = containerOf(item, 'app');
    return app?.state.waiting?.reason === 'ErrImageNeverPull' ? item : undefined;
  }, { timeoutMs: 20_000 });
  t.same(containerOf(pod, 'app')?.state, { waiting: { reason: 'ErrImageNeverPull', message } }, 'waiting: ErrImageNeverPull with the kubelet\'s message');
  t.same({ phase: pod.status.phase, restartCount: containerOf(pod, 'app')?.restartCount, ready: containerOf(pod, 'app')?.ready }, { phase: 'Pending', restartCount: 0, ready: false }, 'Pending, never started');
  const row = await waitFor('the table to say ErrImageNeverPull', async () => (await statusTable(world.stateDir)).find((entry) => entry.NAME === podName && entry.STATUS === 'ErrImageNeverPull'), { timeoutMs: 10_000, intervalMs: 250 });
  t.equal(row.READY, '0/1', '`podvisor status`: 0/1 ErrImageNeverPull');

  // Watch the agent for a while: at least eight passes (about eight seconds).
  const firstPod = (await podsOf(node))[0]?.Id;
  await agent.waitForRelists(8);
  const attempts = [...agent.find({ event: 'PodCreating' }, key), ...agent.find('creating containers app', key)].map((line) => Date.parse(line.timestamp)).sort((a, b) => a - b);
  const gaps = attempts.slice(1).map((at, index) => (at - (attempts[index] ?? 0)) / 1000);
  t.comment(`attempts to create the container, gaps (s): ${gaps.map((gap) => gap.toFixed(2)).join(', ')}`);
  t.equal(agent.find({ event: 'PodCreating' }, key).length, 1, 'the pod was created once');
  t.equal(agent.find({ event: 'PodReplacing' }, key).length, 0, 'never replaced');
  t.equal(agent.find({ event: ['PodStopping', 'DeadlineExceeded'] }, key).length, 0, 'never stopped');
  t.same((await podsOf(node)).map((entry) => entry.Id), [firstPod], 'the same one pod throughout');
  t.ok(attempts.length >= 3 && attempts.length <= 5, `${attempts.length} attempts in ~8 s: retried, with back-off, not on every pass`);
  const expected = [1, 2, 4, 4];
  for (const [index, gap] of gaps.entries()) {
    t.ok(gap >= (expected[index] ?? 4) - 0.1, `attempt ${index + 2} came ${gap.toFixed(2)} s after the one before: at least ${expected[index] ?? 4} s`);
  }
  const runs = agent.find({ event: 'PodmanCall' }).filter((line) => typeof line.args === 'string' && line.args.startsWith('run') && line.exitCode !== 0);
  t.equal(runs.length, attempts.length, 'one failed podman run per attempt');

  // The kubelet's events for it, in the status file.
  const file = JSON.parse(await readFile(join(world.stateDir, 'status.json'), 'utf8')) as { events: { reason: string; message: string; type: string; count: number; involvedObject: { name: string; fieldPath?: string } }[] };
  const failed = file.events.find((event) => event.involvedObject.name === podName && event.reason === 'Failed');
  t.same(failed && { type: failed.type, message: failed.message, fieldPath: failed.involvedObject.fieldPath }, { type: 'Warning', message: 'Error: ErrImageNeverPull', fieldPath: 'spec.containers{app}' }, 'a Warning Failed event: Error: ErrImageNeverPull');
  t.ok((failed?.count ?? 0) >= 2, `repeated failures count up on one event (count ${failed?.count})`);
});
