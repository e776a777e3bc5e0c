// The directory-wide update lock (issue 12), end to end with real podman: a file named `all` in
// the locks directory holds the replace of every running pod (each keeps its running spec, each
// "Pending replace" in the status, held by that one file), while a new pod is still created and a
// removed one still stopped; removing `all` lets every held replace go ahead.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { checkPendingReplace, replacedFrom, podsOf, podYaml, putManifest, runningHash, setup, sleeper, waitFor } from './harness.js';

t.setTimeout(180_000);

t.test('the `all` lock holds every replace, never a creation or a removal', async (t) => {
  const world = await setup(t, 'update-locks-all');
  const { node, stateDir } = world;
  const locksDir = join(world.root, 'locks');
  const held = ['web', 'db'];
  for (const name of held) await putManifest(world.manifestDir, `${name}.yaml`, podYaml({ name, containers: sleeper('app', { GEN: '1' }) }));
  await putManifest(world.manifestDir, 'gone.yaml', podYaml({ name: 'gone', containers: sleeper('app') }));
  const agent = await world.startAgent();
  const first: Record<string, string> = {};
  for (const name of held) first[name] = await waitFor(`${name} running`, () => runningHash(node, name), { timeoutMs: 60_000 });
  await waitFor('gone running', () => runningHash(node, 'gone'), { timeoutMs: 60_000 });

  const lock = join(locksDir, 'all');
  await writeFile(lock, 'firmware update in progress\n');
  await agent.waitForLog({ event: 'UpdateLocks' }, { timeoutMs: 10_000 });
  for (const name of held) await putManifest(world.manifestDir, `${name}.yaml`, podYaml({ name, containers: sleeper('app', { GEN: '2' }) }));
  for (const name of held) {
    const line = await agent.waitForLog({ event: 'ReplaceHeld' }, { pod: `default/${name}-${node}`, timeoutMs: 20_000 });
    t.equal(line.heldBy, `the update lock ${lock}`, `${name}: the edit is held by the one lock, named in the log`);
  }

  // Meanwhile a new pod comes and a pod goes: neither is held by `all`.
  await putManifest(world.manifestDir, 'new.yaml', podYaml({ name: 'new', containers: sleeper('app') }));
  await rm(join(world.manifestDir, 'gone.yaml'));
  await waitFor('new running', () => runningHash(node, 'new'), { timeoutMs: 60_000 });
  await waitFor('gone removed', async () => !(await podsOf(node)).some((pod) => pod.Labels?.['io.podvisor.name'] === `gone-${node}`), { timeoutMs: 60_000 });
  t.pass('a new pod is created and a removed one stopped while `all` is there');

  await agent.waitForRelists(3);
  for (const name of held) t.equal(await runningHash(node, name), first[name], `${name} still runs its spec`);
  t.equal(agent.find({ event: 'PodReplacing' }).length, 0, 'and no pod was replaced');
  // plan --locks-dir sees the same lock: nothing to do for either pod.
  await checkPendingReplace(t, { stateDir, podName: `web-${node}`, heldBy: `the update lock ${lock}`, planArgs: ['--manifest-dir', world.manifestDir, '--node-name', node, '--locks-dir', locksDir] });
  await checkPendingReplace(t, { stateDir, podName: `db-${node}`, heldBy: `the update lock ${lock}`, planArgs: ['--manifest-dir', world.manifestDir, '--node-name', node, '--locks-dir', locksDir] });

  await rm(lock);
  for (const name of held) {
    await agent.waitForLog({ event: 'ReplaceReleased' }, { pod: `default/${name}-${node}`, timeoutMs: 20_000 });
    const second = await replacedFrom(node, name, first[name], { timeoutMs: 60_000 });
    t.not(second, first[name], `${name}: \`all\` gone, the replace goes ahead`);
  }
});
