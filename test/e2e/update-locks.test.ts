// Update locks (issue 12), end to end with real podman: while a lock file names a running pod,
// an edit of its file is held (the pod keeps running its spec, "Pending replace" in the status);
// a new pod and a removal are never held; removing the lock lets the replace go ahead. And after
// an agent restart (SIGKILL), what runs is what podman lists: a pod never yet Ready (so with no
// rollout record) keeps its running spec while the lock holds, and a pod killed mid-trial keeps
// its new spec rather than being replaced back to the last Ready one.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { checkPendingReplace, replacedFrom, podsOf, podYaml, putManifest, runningHash, setup, sleeper, waitFor } from './harness.js';

t.setTimeout(240_000);

t.test('a lock holds a replace, never a creation or a removal', async (t) => {
  const world = await setup(t, 'update-locks');
  const { node, stateDir } = world;
  const locksDir = join(world.root, 'locks');
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '1' }) }));
  await putManifest(world.manifestDir, 'gone.yaml', podYaml({ name: 'gone', containers: sleeper('app') }));
  const agent = await world.startAgent();
  const first = await waitFor('web running', () => runningHash(node, 'web'), { timeoutMs: 60_000 });
  await waitFor('gone running', () => runningHash(node, 'gone'), { timeoutMs: 60_000 });

  await writeFile(join(locksDir, 'default_web'), 'printing until 14:00\n');
  await agent.waitForLog({ event: 'UpdateLocks' }, { timeoutMs: 10_000 });
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '2' }) }));
  const held = await agent.waitForLog({ event: 'ReplaceHeld' }, { timeoutMs: 20_000 });
  t.equal(held.heldBy, `the update lock ${join(locksDir, 'default_web')}`, 'the edit is held by the lock, named in the log');

  // Meanwhile a new pod comes and a pod goes: neither is held.
  await putManifest(world.manifestDir, 'new.yaml', podYaml({ name: 'new', containers: sleeper('app') }));
  await rm(join(world.manifestDir, 'gone.yaml'));
  await waitFor('new running', () => runningHash(node, 'new'), { timeoutMs: 60_000 });
  await waitFor('gone removed', async () => !(await podsOf(node)).some((pod) => pod.Labels?.['io.podvisor.name'] === `gone-${node}`), { timeoutMs: 60_000 });
  t.pass('a new pod is created and a removed one stopped while the lock is there');

  await agent.waitForRelists(3);
  t.equal(await runningHash(node, 'web'), first, 'the locked pod still runs its spec');
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'and was never replaced');
  await checkPendingReplace(t, { stateDir, podName: `web-${node}`, heldBy: `the update lock ${join(locksDir, 'default_web')}`, planArgs: ['--manifest-dir', world.manifestDir, '--node-name', node, '--locks-dir', locksDir] });

  await rm(join(locksDir, 'default_web'));
  await agent.waitForLog({ event: 'ReplaceReleased' }, { timeoutMs: 20_000 });
  await agent.waitForLog({ event: 'PodReplacing' }, { timeoutMs: 30_000 });
  const second = await replacedFrom(node, 'web', first, { timeoutMs: 60_000 });
  t.not(second, first, 'the lock gone: the replace goes ahead');
});

t.test('agent SIGKILLed and restarted while the lock holds: the running pod is not replaced, and it is replaced once the lock goes', async (t) => {
  const world = await setup(t, 'update-locks');
  const { node } = world;
  const locksDir = join(world.root, 'locks');
  // Never Ready (its readiness probe always fails): the rollout guard has no Ready spec of it on record.
  const neverReady = (generation: string) => `${sleeper('app', { GEN: generation })}      readinessProbe:
        exec: { command: ["false"] }
        periodSeconds: 1
`;
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: neverReady('1') }));
  const firstAgent = await world.startAgent();
  const first = await waitFor('web running', () => runningHash(node, 'web'), { timeoutMs: 60_000 });
  await writeFile(join(locksDir, 'default_web'), 'printing until 14:00\n');
  await firstAgent.waitForLog({ event: 'UpdateLocks' }, { timeoutMs: 10_000 });
  await firstAgent.stop('SIGKILL');

  // Edited while the agent is down; the lock is there when it comes back.
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: neverReady('2') }));
  const agent = await world.startAgent();
  const held = await agent.waitForLog({ event: 'ReplaceHeld' }, { timeoutMs: 20_000 });
  t.equal(held.heldBy, `the update lock ${join(locksDir, 'default_web')}`, 'the edit is held by the lock after the restart');
  await agent.waitForRelists(3);
  t.equal(await runningHash(node, 'web'), first, 'the running pod is not replaced');
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'and no replace was begun');

  await rm(join(locksDir, 'default_web'));
  await agent.waitForLog({ event: 'ReplaceReleased' }, { timeoutMs: 20_000 });
  const second = await replacedFrom(node, 'web', first, { timeoutMs: 60_000 });
  t.not(second, first, 'the lock gone: the replace goes ahead');
});

t.test('agent SIGKILLed mid-trial and restarted while a lock holds: the new spec, running, is not replaced back', async (t) => {
  const world = await setup(t, 'update-locks');
  const { node, stateDir } = world;
  const locksDir = join(world.root, 'locks');
  const key = `default/web-${node}`;
  const record = async () => (JSON.parse(await readFile(join(stateDir, 'rollout.json'), 'utf8').catch(() => '{"pods":{}}')) as { pods: Record<string, { ready?: { hash: string }; trial?: { hash: string } }> }).pods[key];
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '1' }) }));
  const firstAgent = await world.startAgent();
  const first = await waitFor('web running', () => runningHash(node, 'web'), { timeoutMs: 60_000 });
  // Ready on v1 (the spec to go back to), then the edit: v2 runs, on trial until Ready for 10 s.
  await waitFor('v1 recorded Ready', async () => (await record())?.ready?.hash === first, { timeoutMs: 30_000 });
  await putManifest(world.manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('app', { GEN: '2' }) }));
  const second = await replacedFrom(node, 'web', first, { timeoutMs: 30_000, intervalMs: 100 });
  // Within the trial's 10 s: a lock, then the agent killed.
  await writeFile(join(locksDir, 'all'), 'job running\n');
  await firstAgent.waitForLog({ event: 'UpdateLocks' }, { timeoutMs: 5_000 });
  await firstAgent.stop('SIGKILL');
  t.match(await record(), { ready: { hash: first }, trial: { hash: second } }, 'killed mid-trial: v2 on trial, v1 the last Ready spec');

  const agent = await world.startAgent();
  await agent.waitForRelists(4);
  t.equal(await runningHash(node, 'web'), second, 'the new spec still runs: not replaced back to the last Ready spec');
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'no replace was begun');
  t.equal(agent.find({ event: 'ReplaceHeld' }).length, 0, 'and nothing is held: the file asks for what runs');
  await rm(join(locksDir, 'all'));
});
