// Scenario 9, stopping the agent: SIGTERM makes it exit 0 promptly, and its pods keep running,
// as the kubelet leaves static pods running when it stops. Its own helper processes (the podman
// event stream, the kernel-log follower) end with it: under systemd's KillMode=process nothing
// else would end them.
import { readdir, readFile } from 'node:fs/promises';
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

  const helpers = await childrenOf(agent.child.pid!);
  t.ok(helpers.some((one) => one.command.includes('events')), `the podman event stream is among the agent's children (${helpers.map((one) => one.command).join('; ')})`);

  const signalledAt = Date.now();
  const exit = await within('the agent exiting after SIGTERM', 15_000, agent.stop('SIGTERM'));
  const tookMs = Date.now() - signalledAt;
  t.same(exit, { code: 0, signal: null }, 'exit status 0');
  t.ok(tookMs < 10_000, `exited promptly (${tookMs} ms)`);
  t.ok(agent.find({ event: 'AgentStopping', signal: 'SIGTERM' }).length === 1, 'logged the signal');
  t.equal(agent.lines.at(-1)?.event, 'AgentStopped', 'the last line says it stopped');
  const left = [];
  for (const helper of helpers) if ((await commandOf(helper.pid)) === helper.command) left.push(helper.command);
  t.same(left, [], 'no helper process outlives the agent');

  const pods = await podsOf(node);
  t.same(pods.map((entry) => entry.Id), [pod.Id], 'the pod is still there');
  const after = await containersOf(node);
  t.same(after.map((entry) => [entry.Id, entry.State]), [[container.Id, 'running']], 'its container still runs');
  t.equal(await startedAt(container.Id), started, 'and was never restarted');
  t.equal(agent.find({ event: ['PodStopping', 'DeadlineExceeded', 'PodRemoved'] }).length, 0, 'the agent stopped no pod');
});

/** The command line of a live process, or undefined once it is gone. */
async function commandOf(pid: number): Promise<string | undefined> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  return raw ? raw.split('\0').filter(Boolean).join(' ') : undefined;
}

/** The processes the given process started and that still run (from /proc's children lists). */
async function childrenOf(pid: number): Promise<{ pid: number; command: string }[]> {
  const out = [];
  for (const task of await readdir(`/proc/${pid}/task`)) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of children.split(' ').filter(Boolean).map(Number)) {
      const command = await commandOf(child);
      if (command) out.push({ pid: child, command });
    }
  }
  return out;
}
