// The manifest policy with the built agent and real podman. Ownership: a running pod's manifest
// rewritten group-writable is refused (the finding in the log, `podvisor validate --config` and
// the pod's status), the pod keeps running its last good spec untouched, and once `chmod go-w`
// fixes the file (no content changes) the new spec is taken. The device policy: a pod asking for
// the host's network, which the config forbids, is refused at its field and never started, while
// a pod beside it runs; a reload that allows it starts it. A running pod whose file is edited to
// what the field policy refuses (a privileged container, then a hostPath outside the allowed
// prefixes) keeps running its last good spec, the same container, with the refusal (file, line,
// field) in the log and its status; an edit the policy allows is then applied.
import { chmod, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ACTION_EVENTS, AgentProcess, containerIds, exec, IMAGE, podmanContainer, podsOf, podvisorCli, podYaml, putManifest, setup, sleeper, startedAt, waitFor, waitForStatus } from './harness.js';

/** Writes a manifest as a deployment tool would (a temporary name, then a rename), with `mode` set whatever the umask. */
async function putWithMode(dir: string, name: string, text: string, mode: number): Promise<string> {
  const path = join(dir, name);
  const temporary = join(dir, `.${name}.tmp`);
  await writeFile(temporary, text);
  await chmod(temporary, mode);
  await rename(temporary, path);
  return path;
}

t.test('a group-writable manifest is refused; its running pod keeps its last good spec until chmod fixes the file', async (t) => {
  const world = await setup(t, 'policy-own');
  const { node, manifestDir } = world;
  // The harness makes its directory with the umask: were it group- or world-writable, every file in it would be refused.
  const dirInfo = await stat(manifestDir);
  t.equal(dirInfo.mode & 0o022, 0, `the harness's manifest directory is writable by its owner alone (mode ${(dirInfo.mode & 0o777).toString(8)})`);
  t.equal(dirInfo.uid, 0, 'and is root\'s');

  const podName = `web-${node}`;
  const key = `default/${podName}`;
  const main = podmanContainer(podName, 'main');
  const path = await putWithMode(manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('main', { VERSION: 'one' }) }), 0o644);
  const agent = await world.startAgent();
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const ids = await containerIds(node);
  const started = await startedAt(main);
  t.equal(await exec(main, 'sh', '-c', 'echo $VERSION'), 'one');

  // A new spec, written group-writable: refused before it is read.
  const mark = agent.lines.length;
  await putWithMode(manifestDir, 'web.yaml', podYaml({ name: 'web', containers: sleeper('main', { VERSION: 'two' }) }), 0o664);
  const refusal = `${path}:1:1: refused: ${path} is writable by group (mode 0664): chmod go-w ${path}`;
  await agent.waitForLog(refusal, { timeoutMs: 30_000 });
  await agent.waitForLog({ event: 'ManifestInvalid', source: path }, { timeoutMs: 10_000 });
  await waitForStatus(world.stateDir, podName, 'ManifestValid=False', (item) => item.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False'), { timeoutMs: 30_000 });
  // Rescans (every 2 s here) and relists pass; the pod is left exactly as it was.
  await agent.waitForRelists(3);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.same(agent.lines.slice(mark).filter((line) => ACTION_EVENTS.includes(String(line.event)) && line.pod === key).map((line) => line.event), [], 'no action on the pod');
  t.same(await containerIds(node), ids, 'the same container');
  t.equal(await startedAt(main), started, 'never restarted');
  t.equal(await exec(main, 'sh', '-c', 'echo $VERSION'), 'one', 'still the last good spec');
  t.equal(agent.lines.slice(mark).filter((line) => line.message === refusal).length, 1, 'refused once, not again at every rescan');

  // `podvisor validate --config` judges it as the agent does; without --config only the content counts.
  const config = join(world.root, 'config.yaml');
  await writeFile(config, `node-name: ${node}\n`);
  const judged = await podvisorCli('validate', '--config', config, path);
  t.equal(judged.code, 1, 'validate --config: exit 1');
  t.equal(judged.stdout, refusal, 'the same finding');
  const contentOnly = await podvisorCli('validate', path);
  t.equal(contentOnly.code, 0, 'validate without --config checks the content only');

  // chmod alone (the content is the same): picked up at the next rescan.
  const fixed = agent.lines.length;
  await chmod(path, 0o644);
  await waitFor('the new spec in the container', async () => (await exec(main, 'sh', '-c', 'echo $VERSION').catch(() => '')) === 'two', { timeoutMs: 60_000 });
  t.ok(agent.lines.slice(fixed).some((line) => line.event === 'PodReplacing' && line.pod === key), 'the pod replaced with the new spec');
  await waitForStatus(world.stateDir, podName, 'ManifestValid no longer False', (item) => !item.status.conditions.some((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False'), { timeoutMs: 30_000 });
});

t.test('the device policy: a hostNetwork pod refused at its field and not started; allowed by a reload, it starts', async (t) => {
  const world = await setup(t, 'policy-fields');
  const { node, manifestDir } = world;
  const config = join(world.root, 'config.yaml');
  await writeFile(config, 'policy:\n  host-network: false\n  registries: [localhost]\n');
  const hostPath = await putManifest(manifestDir, 'host.yaml', podYaml({ name: 'host', extraSpec: '  hostNetwork: true', containers: sleeper('main') }));
  await putManifest(manifestDir, 'plain.yaml', podYaml({ name: 'plain', containers: sleeper('main') }));
  // Not world.startAgent: the policy comes from the file, and a reload reads it again.
  const agent = new AgentProcess(['run', '--config', config, '--manifest-dir', manifestDir, '--state-dir', world.stateDir,
    '--node-name', node, '--log-format', 'json', '--log-level', 'debug', '--relist-interval', '1', '--resync-interval', '2'], world.root);
  t.teardown(() => agent.stop('SIGKILL'));

  // podYaml: spec at line 5, terminationGracePeriodSeconds at 6, the extra spec line at 7.
  const refusal = `${hostPath}:7:3: spec.hostNetwork: refused by policy: pods may not share the host's network namespace on this device (policy.host-network: false)`;
  await agent.waitForLog(refusal, { timeoutMs: 30_000 });
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/plain-${node}`, timeoutMs: 60_000 });
  await agent.waitForRelists(3);
  t.same((await podsOf(node)).map((pod) => pod.Name), [`default_plain-${node}`], 'only the allowed pod runs');
  t.same(agent.find({ event: ACTION_EVENTS }, `default/host-${node}`), [], 'nothing was done for the refused one');

  const judged = await podvisorCli('validate', '--config', config, manifestDir);
  t.equal(judged.code, 1);
  t.equal(judged.stdout, refusal, 'validate --config: the same finding');

  // The owner allows it: a reload judges the unchanged file again, and the pod starts.
  await writeFile(config, 'policy:\n  host-network: true\n  registries: [localhost]\n');
  agent.child.kill('SIGHUP');
  const reloaded = await agent.waitForLog({ event: 'ConfigReloaded' }, { timeoutMs: 10_000 });
  t.match(reloaded, { applied: ['policy-host-network'], pending: [] });
  await agent.waitForLog({ event: 'PodStarted' }, { pod: `default/host-${node}`, timeoutMs: 60_000 });
  t.ok(agent.running);
});

t.test('a running pod edited to what the field policy refuses keeps its last good spec, and says why', async (t) => {
  const world = await setup(t, 'policy-running');
  const { node, manifestDir } = world;
  const allowed = join(world.root, 'data');
  const config = join(world.root, 'config.yaml');
  await mkdir(join(allowed, 'web'), { recursive: true });
  await writeFile(config, `policy:\n  privileged: false\n  host-path-prefixes: [${allowed}]\n`);
  const podName = `web-${node}`;
  const key = `default/${podName}`;
  const main = podmanContainer(podName, 'main');
  /** The pod's one container, sleeping, with VERSION set and `extra` lines under it. */
  const container = (version: string, extra: string[] = []) => [
    '    - name: main',
    `      image: ${IMAGE}`,
    `      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]`,
    `      env: [{ name: VERSION, value: "${version}" }]`,
    ...extra,
    '',
  ].join('\n');
  /** A hostPath volume at `path` (spec lines 7 to 10: the path at 10:9). */
  const volume = (path: string) => ['  volumes:', '    - name: data', '      hostPath:', `        path: ${path}`].join('\n');
  const path = await putManifest(manifestDir, 'web.yaml', podYaml({ name: 'web', containers: container('one') }));
  const agent = new AgentProcess(['run', '--config', config, '--manifest-dir', manifestDir, '--state-dir', world.stateDir,
    '--node-name', node, '--log-format', 'json', '--log-level', 'debug', '--relist-interval', '1', '--resync-interval', '2'], world.root);
  t.teardown(() => agent.stop('SIGKILL'));
  await agent.waitForLog({ event: 'PodStarted' }, { pod: key, timeoutMs: 60_000 });
  const ids = await containerIds(node);
  const started = await startedAt(main);
  t.equal(await exec(main, 'sh', '-c', 'echo $VERSION'), 'one');

  /** Checks the pod was left exactly as it was, and that `podvisor status` shows `finding` as why. */
  const keptWith = async (finding: string, when: string) => {
    const logged = await agent.waitForLog(finding, { timeoutMs: 30_000 });
    t.equal(logged.level, 'error', `${when}: the refusal is an error in the log`);
    await waitForStatus(world.stateDir, podName, `ManifestValid=False for ${when}`, (item) => item.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False' && 'message' in condition && String(condition.message).startsWith(finding)), { timeoutMs: 30_000 });
    await agent.waitForRelists(3);
    t.same(agent.lines.slice(mark).filter((line) => ACTION_EVENTS.includes(String(line.event)) && line.pod === key).map((line) => line.event), [], `${when}: no action on the pod`);
    t.same(await containerIds(node), ids, `${when}: the same container`);
    t.equal(await startedAt(main), started, `${when}: never restarted`);
    t.equal(await exec(main, 'sh', '-c', 'echo $VERSION'), 'one', `${when}: still the last good spec`);
    const status = await podvisorCli('status', '--state-dir', world.stateDir);
    t.ok(status.stdout.split('\n').includes(`pod/${podName}: ManifestInvalid: ${finding}; running the last good spec`), `${when}: \`podvisor status\` says why (${status.stdout.split('\n').filter((line) => line.startsWith('pod/')).join(' | ')})`);
  };

  // podYaml: the container list at line 7, so the container's extra lines start at 12.
  const mark = agent.lines.length;
  await putManifest(manifestDir, 'web.yaml', podYaml({ name: 'web', containers: container('two', ['      securityContext:', '        privileged: true']) }));
  await keptWith(`${path}:13:9: spec.containers[0].securityContext.privileged: refused by policy: privileged containers are not allowed on this device (policy.privileged: false)`, 'privileged');

  await putManifest(manifestDir, 'web.yaml', podYaml({ name: 'web', extraSpec: volume('/etc'), containers: container('three') }));
  await keptWith(`${path}:10:9: spec.volumes[0].hostPath.path: refused by policy: host path /etc is outside the allowed prefixes (policy.host-path-prefixes: ${allowed})`, 'hostPath outside the prefixes');

  // What the policy allows (a hostPath under the prefix) is applied: the refusals were the policy's, not a stuck agent.
  await putManifest(manifestDir, 'web.yaml', podYaml({ name: 'web', extraSpec: volume(join(allowed, 'web')), containers: container('four') }));
  await waitFor('the allowed spec in the container', async () => (await exec(main, 'sh', '-c', 'echo $VERSION').catch(() => '')) === 'four', { timeoutMs: 60_000 });
  await waitForStatus(world.stateDir, podName, 'ManifestValid no longer False', (item) => !item.status.conditions.some((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False'), { timeoutMs: 30_000 });
});
