// Scenario 2, editing a file: a changed env value replaces the pod exactly once: new
// containers, a new hash label, one 'replacing pod' line, and the old pod gone.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { containerIds, exec, podExists, podsOf, podYaml, putManifest, setup, sleeper, waitFor } from './harness.js';

t.test('an edited manifest replaces its pod once', async (t) => {
  const world = await setup(t, 'edit');
  const { node } = world;
  const key = `default/app-${node}`;
  const main = `default_app-${node}_main`;
  const manifest = (value: string) => podYaml({ name: 'app', grace: 2, containers: sleeper('main', { COLOUR: value }) + sleeper('side') });
  await putManifest(world.manifestDir, 'app.yaml', manifest('red'));

  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const [before] = await podsOf(node);
  if (!before) throw new Error('no pod');
  const idsBefore = await containerIds(node);
  t.same(Object.keys(idsBefore), [main, `default_app-${node}_side`]);
  t.equal(await exec(main, 'sh', '-c', 'echo $COLOUR'), 'red');

  // An edit in place, as an editor saves it.
  await writeFile(join(world.manifestDir, 'app.yaml'), manifest('blue'));
  const after = await waitFor('the replacement pod', async () => {
    const pods = await podsOf(node);
    const pod = pods[0];
    return pods.length === 1 && pod && pod.Id !== before.Id && pod.Labels?.['io.podvisor.hash'] !== before.Labels?.['io.podvisor.hash'] ? pod : undefined;
  }, { timeoutMs: 60_000 });
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 30_000 });
  await waitFor('the replacement to be started twice over', () => agent.find({ event: 'PodStarted' }, key).length === 2, { timeoutMs: 30_000 });

  // Some passes later nothing else has happened to it.
  await agent.waitForRelists(3);
  t.equal(agent.find({ event: 'PodReplacing' }, key).length, 1, "exactly one 'replacing pod' line");
  t.match(agent.find({ event: 'PodReplacing' }, key)[0]?.reason, /^config hash changed from [0-9a-f]{16} to [0-9a-f]{16}$/);
  t.equal(agent.find({ event: 'PodStarted' }, key).length, 2, 'started twice: once created, once replaced');
  t.equal(await podExists(before.Id), false, 'the old pod is gone');

  const pods = await podsOf(node);
  t.equal(pods.length, 1, 'one pod');
  t.equal(pods[0]?.Id, after.Id, 'the replacement pod stays');
  t.not(after.Labels?.['io.podvisor.hash'], before.Labels?.['io.podvisor.hash'], 'a new hash label');
  t.match(after.Labels?.['io.podvisor.hash'], /^[0-9a-f]{16}$/);
  t.equal(agent.find({ event: 'PodReplacing' }, key)[0]?.reason,
    `config hash changed from ${String(before.Labels?.['io.podvisor.hash'])} to ${String(after.Labels?.['io.podvisor.hash'])}`);

  const idsAfter = await containerIds(node);
  t.same(Object.keys(idsAfter), Object.keys(idsBefore), 'the same containers by name');
  for (const name of Object.keys(idsBefore)) t.not(idsAfter[name], idsBefore[name], `${name} is a new container`);
  t.equal(await exec(main, 'sh', '-c', 'echo $COLOUR'), 'blue', 'the new env value');
});
