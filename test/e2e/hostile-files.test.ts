// A bad file never takes down a good pod, nor the agent: alias bombs, unresolved aliases, files
// over the parser's limits, a FIFO, a device and a symlink loop named like manifests, each
// present at start and dropped in while the agent runs. The agent keeps running, its pod is never
// restarted, a good pod dropped in after them still starts, and each bad file is named in the log.
import { execFileSync } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { podvisorCli, podYaml, putManifest, setup, sleeper, startedAt, waitForStatus } from './harness.js';

const BOMB = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: lol\n  labels:\n'
  + '    a: &a ["l","l","l","l","l","l","l","l","l"]\n'
  + '    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
  + '    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n'
  + '    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n    g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n';

t.test('hostile files beside a good pod, at start and while running', async (t) => {
  const world = await setup(t, 'hostile');
  const { node, manifestDir } = world;
  await putManifest(manifestDir, 'app.yaml', podYaml({ name: 'app', containers: sleeper('main') }));
  await putManifest(manifestDir, 'bomb.yaml', BOMB);
  execFileSync('mkfifo', [join(manifestDir, 'pipe.yaml')]);
  await symlink('/dev/zero', join(manifestDir, 'zero.yaml'));
  await symlink('loop.yaml', join(manifestDir, 'loop.yaml'));

  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/app-${node}`, timeoutMs: 60_000 });
  const before = await startedAt(`default_app-${node}_main`);
  for (const [file, message] of [['bomb.yaml', /aliases expand to more than the limit/], ['pipe.yaml', /not a regular file \(a FIFO\)/], ['zero.yaml', /not a regular file \(a device\)/], ['loop.yaml', /ELOOP/]] as const) {
    t.ok(agent.lines.some((line) => line.message.includes(file) && message.test(line.message)), `${file} is named in the log`);
  }

  // While running: more bad files, then a good one, which must still be acted on.
  await putManifest(manifestDir, 'bomb2.yaml', BOMB.replace('name: lol', 'name: lol2'));
  await putManifest(manifestDir, 'alias.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: *nowhere\n');
  await putManifest(manifestDir, 'nodes.yaml', `a: [${'1,'.repeat(60_000)}1]\n`);
  await putManifest(manifestDir, 'second.yaml', podYaml({ name: 'second', containers: sleeper('main') }));
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/second-${node}`, timeoutMs: 60_000 });
  await agent.waitForRelists(2);
  for (const [file, message] of [['bomb2.yaml', /aliases expand/], ['alias.yaml', /Unresolved alias/], ['nodes.yaml', /more than 20000 YAML nodes/]] as const) {
    await agent.waitForLog(new RegExp(`${file.replace('.', '\\.')}:\\d+:\\d+: YAML: .*${message.source}`));
  }
  t.ok(agent.running, 'the agent is still running');
  t.equal(await startedAt(`default_app-${node}_main`), before, 'the good pod was never restarted');

  // The pods of a file gone bad show it in `podvisor status`'s JSON; a killed agent's status says so.
  await putManifest(manifestDir, 'second.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: *nowhere\n');
  await waitForStatus(world.stateDir, `second-${node}`, 'ManifestValid=False', (item) => item.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False'));
  const live = await podvisorCli('status', '--state-dir', world.stateDir);
  t.equal(live.stderr, '', 'no warning while the agent runs');
  await agent.stop('SIGKILL');
  const dead = await podvisorCli('status', '--state-dir', world.stateDir);
  t.match(dead.stderr, /warning: the agent is not running \(pid \d+ is gone\)/, 'status says the agent is not running');
});
