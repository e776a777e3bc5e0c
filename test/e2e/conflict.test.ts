// Scenario 8, two files asking for the same pod: the lexically first file wins, the other is
// reported once, and nothing flaps: one pod, created once, the same containers pass after pass.
import t from 'tap';
import { ACTION_EVENTS, containerIds, exec, podsOf, podYaml, putManifest, setup, sleeper, startedAt } from './harness.js';

t.test('the lexically first of two files for one pod wins, without flapping', async (t) => {
  const world = await setup(t, 'conflict');
  const { node } = world;
  const key = `default/dup-${node}`;
  const main = `default_dup-${node}_main`;
  // Written in reverse order, so that creation order cannot be what decides.
  const second = await putManifest(world.manifestDir, 'b-dup.yaml', podYaml({ name: 'dup', grace: 2, containers: sleeper('main', { FROM: 'b' }) }));
  const first = await putManifest(world.manifestDir, 'a-dup.yaml', podYaml({ name: 'dup', grace: 2, containers: sleeper('main', { FROM: 'a' }) }));

  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const conflict = await agent.waitForLog({ event: 'PodConflict' });
  t.equal(conflict.level, 'error');
  t.equal(conflict.message, `pod ${key} is defined by ${first} already; ignoring it in ${second}`);
  t.equal(conflict.source, second);
  t.equal(await exec(main, 'sh', '-c', 'echo $FROM'), 'a', 'the pod runs a-dup.yaml');

  const [pod] = await podsOf(node);
  if (!pod) throw new Error('no pod');
  t.equal(pod.Labels?.['io.podvisor.source'], first, 'labelled with the winning file');
  const ids = await containerIds(node);
  const started = await startedAt(main);

  // Relists every second and rescans every two: several of each.
  for (let round = 1; round <= 3; round++) {
    await agent.waitForRelists(2);
    t.same((await podsOf(node)).map((entry) => entry.Id), [pod.Id], `round ${round}: the same single pod`);
    t.same(await containerIds(node), ids, `round ${round}: the same containers`);
  }

  // The losing file read again (saved anew, same content) changes nothing either.
  const snapshots = agent.find({ event: 'DesiredState' }).length;
  await putManifest(world.manifestDir, 'b-dup.yaml', podYaml({ name: 'dup', grace: 2, containers: sleeper('main', { FROM: 'b' }) }));
  await agent.waitForCount({ event: 'DesiredState' }, snapshots + 1, { timeoutMs: 20_000 });
  await agent.waitForRelists(2);
  t.same((await podsOf(node)).map((entry) => entry.Id), [pod.Id], 'after re-reading the loser: the same single pod');
  t.same(await containerIds(node), ids, 'after re-reading the loser: the same containers');

  t.equal(await startedAt(main), started, 'never restarted');
  t.equal(agent.find({ event: 'PodCreating' }, key).length, 1, 'created once');
  t.same(agent.find({ event: ACTION_EVENTS.filter((event) => event !== 'PodCreating') }).map((line) => line.message), [], 'no other action');
  t.equal(agent.find({ event: 'PodConflict' }).length, 1, 'the conflict is reported once');
});
