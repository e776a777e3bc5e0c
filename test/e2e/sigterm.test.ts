// Scenario 9, stopping the agent: SIGTERM makes it exit 0 promptly, and its pods keep running,
// as the kubelet leaves static pods running when it stops.
import t from 'tap';
import { containersOf, podsOf, podYaml, putManifest, setup, sleeper, startedAt, within } from './harness.js';

t.test('SIGTERM stops the agent and leaves the pods running', async (t) => {
  const world = await setup(t, 'sigterm');
  const { node } = world;
  const key = `default/app-${node}`;
  await putManifest(world.manifestDir, 'app.yaml', podYaml({ name: 'app', grace: 2, containers: sleeper('main') }));
  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  await agent.waitForRelists(1);

  const [pod] = await podsOf(node);
  if (!pod) throw new Error('no pod');
  const [container] = await containersOf(node);
  if (!container) throw new Error('no container');
  const started = await startedAt(container.Id);

  const signalledAt = Date.now();
  const exit = await within('the agent exiting after SIGTERM', 15_000, agent.stop('SIGTERM'));
  const tookMs = Date.now() - signalledAt;
  t.same(exit, { code: 0, signal: null }, 'exit status 0');
  t.ok(tookMs < 10_000, `exited promptly (${tookMs} ms)`);
  t.ok(agent.find({ event: 'AgentStopping', signal: 'SIGTERM' }).length === 1, 'logged the signal');
  t.equal(agent.lines.at(-1)?.event, 'AgentStopped', 'the last line says it stopped');

  const pods = await podsOf(node);
  t.same(pods.map((entry) => entry.Id), [pod.Id], 'the pod is still there');
  const after = await containersOf(node);
  t.same(after.map((entry) => [entry.Id, entry.State]), [[container.Id, 'running']], 'its container still runs');
  t.equal(await startedAt(container.Id), started, 'and was never restarted');
  t.equal(agent.find({ event: ['PodStopping', 'DeadlineExceeded', 'PodRemoved'] }).length, 0, 'the agent stopped no pod');
});
