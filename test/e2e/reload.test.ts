// SIGHUP (systemctl reload) reads the config file again: a valid file's log level, intervals, API
// and publishing settings apply at once, the settings that need a restart are named, an invalid
// file is refused with its file:line:col, and through all of it the agent runs on and its pod is
// never touched. Before, SIGHUP ended the agent (Node's default), and with it supervision.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { AgentProcess, containerIds, freePort, podmanContainer, podYaml, putManifest, setup, sleeper, waitFor } from './harness.js';

t.test('SIGHUP reloads the config file; the agent and its pod run on', async (t) => {
  const world = await setup(t, 'reload');
  const podName = `steady-${world.node}`;
  const key = `default/${podName}`;
  const config = join(world.root, 'config.yaml');
  await writeFile(config, 'log-level: info\nbackoff-max: 300\n');
  await putManifest(world.manifestDir, 'steady.yaml', podYaml({ name: 'steady', grace: 1, containers: sleeper('app') }));
  // Not world.startAgent: its --log-level flag would win over the file.
  const agent = new AgentProcess(['run', '--config', config, '--manifest-dir', world.manifestDir, '--state-dir', world.stateDir,
    '--node-name', world.node, '--log-format', 'json', '--relist-interval', '1'], world.root);
  t.teardown(() => agent.stop('SIGKILL'));
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const id = (await containerIds(world.node))[podmanContainer(podName, 'app')];
  t.equal(agent.find({ event: 'PodmanCall' }).length, 0, 'at info, podman calls are not logged');

  await writeFile(config, `log-level: debug\nbackoff-max: 200\ncontainer-log-max-size: 1Mi\nstate-dir: ${world.stateDir}-elsewhere\n`);
  agent.child.kill('SIGHUP');
  const reloaded = await agent.waitForLog({ event: 'ConfigReloaded' }, { timeoutMs: 10_000 });
  t.match(reloaded, { applied: ['backoff-max', 'log-level'], pending: ['container-log-max-size'] },
    'the log level and the back-off apply now; the container log bound waits for a restart; --state-dir, a flag, wins over the file as at start');
  t.match(agent.find({ event: 'ConfigPendingRestart' })[0]?.message, /container-log-max-size/, 'and the log says so');
  await agent.waitForLog({ event: 'PodmanCall' }, { timeoutMs: 10_000 });
  t.pass('at debug, podman calls are logged: the new level is in force');

  // The read-only API, off at start, turned on; then moved to another port.
  const port = await freePort();
  await writeFile(config, `log-level: debug\nbackoff-max: 200\nrelist-interval: 3\napi:\n  address: 127.0.0.1:${port}\n`);
  agent.child.kill('SIGHUP');
  const [, second] = await agent.waitForCount({ event: 'ConfigReloaded' }, 2, { timeoutMs: 10_000 });
  t.match(second, { applied: ['api-address'] }, 'the API is applied (relist-interval is a flag here, which wins)');
  await agent.waitForLog({ event: 'ApiListening' }, { timeoutMs: 10_000 });
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.status, 200, 'the API turned on by the reload serves');
  const pods = (await (await fetch(`http://127.0.0.1:${port}/api/v1/pods`)).json()) as { items: { metadata: { name: string } }[] };
  t.ok(pods.items.some((item) => item.metadata.name === podName), 'and lists the running pod');
  const moved = await freePort();
  await writeFile(config, `log-level: debug\nbackoff-max: 200\napi:\n  address: 127.0.0.1:${moved}\n`);
  agent.child.kill('SIGHUP');
  await agent.waitForCount({ event: 'ApiListening' }, 2, { timeoutMs: 10_000 });
  t.equal((await fetch(`http://127.0.0.1:${moved}/healthz`)).status, 200, 'the API moved to the new address');
  await t.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'and no longer listens on the old one');

  await writeFile(config, 'log-level: debug\nbackoff-max: soon\n');
  agent.child.kill('SIGHUP');
  const refused = await agent.waitForLog({ event: 'ConfigReloadFailed' }, { timeoutMs: 10_000 });
  t.match(refused.message, new RegExp(`^configuration not reloaded: ${config}:2:\\d+: backoff-max`), 'an invalid file is refused, naming file, line and key');

  const relists = agent.relists();
  await waitFor('two more relists', () => (agent.relists() >= relists + 2 ? true : undefined), { timeoutMs: 20_000 });
  t.equal(agent.exitCode, undefined, 'the agent runs on');
  t.equal((await containerIds(world.node))[podmanContainer(podName, 'app')], id, 'its pod\'s container is the same one');
  t.equal(agent.find({ event: 'PodStopping' }).length + agent.find({ event: 'ContainerRestarting' }).length, 0, 'and was never stopped or restarted');
});
