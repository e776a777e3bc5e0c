// Scenario 5, a crashed agent: after SIGKILL and a fresh start, the new agent adopts the pods the
// old one made. The same containers run, none is started again, and no pod is duplicated.
import t from 'tap';
import { ACTION_EVENTS, containersOf, IMAGE, podsOf, podYaml, putManifest, setup, sleeper, startedAt } from './harness.js';

t.test('a restarted agent adopts its running pods', async (t) => {
  const world = await setup(t, 'adopt');
  const { node } = world;
  const key = `default/app-${node}`;
  const init = [
    '  initContainers:',
    '    - name: prepare',
    `      image: ${IMAGE}`,
    '      command: ["true"]',
  ].join('\n');
  await putManifest(world.manifestDir, 'app.yaml', podYaml({ name: 'app', grace: 2, extraSpec: init, containers: sleeper('main') + sleeper('side') }));
  await putManifest(world.manifestDir, 'other.yaml', podYaml({ name: 'other', grace: 2, containers: sleeper('main') }));

  const first = await world.startAgent();
  await first.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  await first.waitForLog({ event: 'PodStarted' }, { pod: `default/other-${node}`, timeoutMs: 60_000 });
  await first.waitForRelists(1);

  const podsBefore = (await podsOf(node)).map((pod) => pod.Id).sort();
  const containersBefore = await containersOf(node);
  t.equal(podsBefore.length, 2, 'two pods');
  t.same(containersBefore.map((container) => [container.Names[0], container.State]), [
    [`default_app-${node}_main`, 'running'],
    [`default_app-${node}_prepare`, 'exited'],
    [`default_app-${node}_side`, 'running'],
    [`default_other-${node}_main`, 'running'],
  ]);
  const startedBefore = await Promise.all(containersBefore.map((container) => startedAt(container.Id)));

  const killed = await first.stop('SIGKILL');
  t.equal(killed.signal, 'SIGKILL', 'the first agent was killed');

  const second = await world.startAgent();
  // Several full passes of the new agent over the pods it found.
  await second.waitForRelists(4);

  t.same((await podsOf(node)).map((pod) => pod.Id).sort(), podsBefore, 'the same pods, no duplicate');
  const containersAfter = await containersOf(node);
  t.same(containersAfter.map((container) => [container.Names[0], container.Id, container.State]),
    containersBefore.map((container) => [container.Names[0], container.Id, container.State]), 'the same containers in the same states');
  t.same(await Promise.all(containersAfter.map((container) => startedAt(container.Id))), startedBefore, 'none started again (StartedAt unchanged)');
  t.same(second.find({ event: ACTION_EVENTS }).map((line) => `${line.message} ${String(line.pod)}`), [],
    'the new agent did nothing to the pods');
  t.equal(second.find(/failed/).length, 0, 'and nothing failed');
});
