// Supervision 8, restart counts survive the agent: after a few crash-loop restarts the agent is
// stopped with SIGTERM (it saves its state), started again on the same --state-dir, and the
// status keeps counting from where it was: never back to 0, never below what it showed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  containerIds,
  containerOf,
  IMAGE,
  podmanContainer,
  podsOf,
  putManifest,
  setup,
  statusOf,
  waitForStatus,
  within,
  type StatusItem,
} from './harness.js';

const MANIFEST = `apiVersion: v1
kind: Pod
metadata:
  name: crashy
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Always
  containers:
    - name: crasher
      image: ${IMAGE}
      command: ["sh", "-c", "sleep 0.5; exit 1"]
`;

/** status.json as the agent wrote it: when, and the crasher's restart count. */
async function savedStatus(stateDir: string, podName: string): Promise<{ writtenAt: number; restartCount: number | undefined } | undefined> {
  const text = await readFile(join(stateDir, 'status.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const file = JSON.parse(text) as { writtenAt: string; items: StatusItem[] };
  const pod = file.items.find((item) => item.metadata.name === podName);
  return { writtenAt: Date.parse(file.writtenAt), restartCount: pod ? containerOf(pod, 'crasher')?.restartCount : undefined };
}

t.test('restart counts survive an agent restart', async (t) => {
  const world = await setup(t, 'sv-restart');
  const { node } = world;
  const podName = `crashy-${node}`;
  const key = `default/${podName}`;
  await putManifest(world.manifestDir, 'crashy.yaml', MANIFEST);
  const first = await world.startAgent(['--backoff-max', '4']);
  await first.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const uid = (await podsOf(node))[0]?.Labels?.['io.podvisor.uid'] ?? '';
  const containerId = (await containerIds(node))[podmanContainer(podName, 'crasher')];

  const before = await waitForStatus(world.stateDir, podName, 'restartCount 3', (item) => {
    const count = containerOf(item, 'crasher')?.restartCount ?? 0;
    return count >= 3 ? count : undefined;
  }, { timeoutMs: 30_000 });

  const exit = await within('the agent stopping on SIGTERM', 20_000, first.stop('SIGTERM'));
  t.same(exit, { code: 0, signal: null }, 'the first agent exited 0');
  const state = JSON.parse(await readFile(join(world.stateDir, 'supervision.json'), 'utf8')) as { restartCounts: Record<string, number> };
  const saved = state.restartCounts[`${uid}/crasher`] ?? 0;
  t.ok(saved >= before, `supervision.json holds the count (${saved}), at least what the status showed (${before})`);
  t.equal(saved, first.find({ event: 'ContainerRestarting' }, key).length, 'one count per restart the first agent made');
  const atStop = await savedStatus(world.stateDir, podName);
  t.ok((atStop?.restartCount ?? -1) >= before, `status.json written at the stop keeps the count (${atStop?.restartCount})`);

  // The second agent, same directories: sample the status file as it goes.
  const samples: { writtenAt: number; restartCount: number | undefined }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const sample = await savedStatus(world.stateDir, podName).catch(() => undefined);
      if (sample) samples.push(sample);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  t.teardown(async () => {
    sampling = false;
    await sampler;
  });
  const restartedAt = Date.now();
  const second = await world.startAgent(['--backoff-max', '4']);
  const grown = await waitForStatus(world.stateDir, podName, `restartCount above ${saved + 1}`, (item) => {
    const count = containerOf(item, 'crasher')?.restartCount ?? 0;
    return count >= saved + 2 ? item : undefined;
  }, { timeoutMs: 30_000 });
  sampling = false;
  await sampler;

  const counts = samples.map((sample) => sample.restartCount ?? -1);
  t.ok(counts.every((count) => count >= before), `the status never showed fewer than ${before} restarts (${counts.join(',')})`);
  const fresh = samples.filter((sample) => sample.writtenAt >= restartedAt);
  t.ok(fresh.length > 0, 'the second agent wrote the status');
  t.ok(fresh.every((sample) => (sample.restartCount ?? -1) >= saved), `everything the second agent wrote counts from ${saved}`);
  t.ok(counts.every((count, index) => index === 0 || count >= (counts[index - 1] ?? 0)), 'and never went down');
  t.ok((containerOf(grown, 'crasher')?.restartCount ?? 0) <= saved + second.find({ event: 'ContainerRestarting' }, key).length, 'the status counts no restart that did not happen');

  // The same pod and container, adopted: the second agent restarted it, never recreated it.
  t.equal((await containerIds(node))[podmanContainer(podName, 'crasher')], containerId, 'the same container');
  t.equal(second.find({ event: ['PodCreating', 'PodReplacing'] }, key).length, 0, 'the second agent made no pod');
  const final = await statusOf(world.stateDir, podName);
  t.equal(final?.metadata.uid, uid, 'the same pod uid');

  // Stopped again, it has saved the first agent's restarts plus its own, exactly.
  t.same(await within('the second agent stopping on SIGTERM', 20_000, second.stop('SIGTERM')), { code: 0, signal: null }, 'the second agent exited 0');
  const after = JSON.parse(await readFile(join(world.stateDir, 'supervision.json'), 'utf8')) as { restartCounts: Record<string, number> };
  t.equal(after.restartCounts[`${uid}/crasher`], saved + second.find({ event: 'ContainerRestarting' }, key).length, 'saved count = the first agent\'s restarts + the second\'s');
});
