// Rollback of an edit that does not come up (issue 12), end to end with real podman: a Ready pod
// edited into one that crash-loops goes back to its last Ready spec within the window, says so
// (log, event, condition, `podvisor status`), does not try the failed spec again (not on a
// rescan, not after an agent restart), and tries the file's next edit. An edit that never gets
// Ready (a readiness probe that fails) goes back when its window runs out.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { IMAGE, podsOf, podvisorCli, podYaml, putManifest, setup, sleeper, waitFor, waitForStatus, type AgentProcess } from './harness.js';

t.setTimeout(300_000);

const WINDOW = 40;

function web(containers: string, window = WINDOW): string {
  return podYaml({ name: 'web', containers }).replace('metadata:\n', `metadata:\n  annotations:\n    podvisor.io/rollback-after-seconds: "${window}"\n`);
}

const crashing = [
  '    - name: app',
  `      image: ${IMAGE}`,
  '      command: ["sh", "-c", "echo broken; exit 3"]',
  '',
].join('\n');

const neverReady = `${sleeper('app', { GEN: 'never-ready' })}      readinessProbe:
        exec: { command: ["false"] }
        periodSeconds: 1
`;

/** The hash label of the pod podman runs for `web`. */
async function runningHash(node: string): Promise<string | undefined> {
  const pods = await podsOf(node);
  return pods.length === 1 && pods[0]?.Status === 'Running' ? pods[0].Labels?.['io.podvisor.hash'] : undefined;
}

const replaces = (agent: AgentProcess) => agent.find({ event: 'PodReplacing' }).length;

t.test('an edit that crash-loops goes back to the last Ready spec, and is not tried again until the file changes', async (t) => {
  const world = await setup(t, 'rollback');
  const { node, stateDir } = world;
  const podName = `web-${node}`;
  const file = await putManifest(world.manifestDir, 'web.yaml', web(sleeper('app', { GEN: '1' })));
  let agent = await world.startAgent(['--backoff-initial', '1']);
  await waitForStatus(stateDir, podName, 'Ready', (pod) => pod.status.conditions.some((one) => one.type === 'Ready' && one.status === 'True'), { timeoutMs: 60_000 });
  const good = await waitFor('the first pod running', () => runningHash(node), { timeoutMs: 30_000 });
  // Proven: Ready for 10 s.
  await waitFor('the first spec proven', async () => (await readFile(`${stateDir}/rollout.json`, 'utf8').catch(() => '')).includes(`"hash":"${good}"`), { timeoutMs: 30_000 });

  const editedAt = Date.now();
  await putManifest(world.manifestDir, 'web.yaml', web(crashing));
  const rolledBack = await agent.waitForLog({ event: 'RolledBack' }, { timeoutMs: (WINDOW + 30) * 1000 });
  t.equal(rolledBack.reason, 'CrashLoopBackOff', 'rolled back for its crash loop');
  t.equal(rolledBack.hash, good, 'to the spec that was Ready');
  t.ok(Date.now() - editedAt < WINDOW * 1000, `within the ${WINDOW} s window (${((Date.now() - editedAt) / 1000).toFixed(1)} s after the edit)`);
  const failedHash = String(rolledBack.failedHash);
  await waitFor('the last Ready spec running again', async () => (await runningHash(node)) === good, { timeoutMs: 60_000 });
  t.pass('the pod runs its last Ready spec again');

  const pod = await waitForStatus(stateDir, podName, 'the RolledBack condition', (one) => one.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestApplied' && condition.reason === 'RolledBack'), { timeoutMs: 20_000 });
  t.match(pod, { status: 'False', reason: 'RolledBack' }, 'the status carries a condition');
  const table = await podvisorCli('status', '--state-dir', stateDir);
  t.match(table.stdout, new RegExp(`pod/${podName}: RolledBack: spec ${failedHash} container app is in CrashLoopBackOff`), '`podvisor status` says so under its table');
  const described = await podvisorCli('describe', podName, '--state-dir', stateDir);
  t.match(described.stdout, /RolledBack/, '`podvisor describe` shows the event');

  // Rescans every 2 s: the failed spec must not come back.
  const before = replaces(agent);
  await agent.waitForRelists(3);
  await new Promise((resolve) => setTimeout(resolve, 6000));
  t.equal(replaces(agent), before, 'no replace on later rescans: the failed spec is not tried again');
  t.equal(await runningHash(node), good);

  // An agent restart remembers it.
  await agent.stop('SIGKILL');
  agent = await world.startAgent(['--backoff-initial', '1']);
  await agent.waitForRelists(3);
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'after a restart: still not tried');
  t.equal(await runningHash(node), good, 'and the pod was not touched');

  // The file changes again: its new spec is tried, and once proven, is the one to go back to.
  await putManifest(world.manifestDir, 'web.yaml', web(sleeper('app', { GEN: '3' })));
  await agent.waitForLog({ event: 'PodReplacing' }, { timeoutMs: 30_000 });
  const third = await waitFor('the third spec running', async () => {
    const hash = await runningHash(node);
    return hash !== good && hash !== failedHash ? hash : undefined;
  }, { timeoutMs: 60_000 });
  await waitForStatus(stateDir, podName, 'no rollback condition any more', (one) => !one.status.conditions.some((condition) => condition.type === 'podvisor.io/ManifestApplied' && condition.reason === 'RolledBack'), { timeoutMs: 20_000 });
  await waitFor('the third spec proven', async () => (await readFile(`${stateDir}/rollout.json`, 'utf8').catch(() => '')).includes(`"ready":{"hash":"${third}"`), { timeoutMs: 30_000 });
  t.pass('a new edit is tried and proven');

  // An edit that never gets Ready goes back when its window runs out.
  const shortWindow = 12;
  await putManifest(world.manifestDir, 'web.yaml', web(neverReady, shortWindow));
  const notReady = await agent.waitForLog({ event: 'RolledBack' }, { timeoutMs: (shortWindow + 40) * 1000 });
  t.equal(notReady.reason, 'NotReady', 'not Ready within its window: rolled back');
  t.equal(notReady.hash, third, 'to the spec proven last');
  await waitFor('the proven spec running again', async () => (await runningHash(node)) === third, { timeoutMs: 60_000 });
  t.ok(file);
});
