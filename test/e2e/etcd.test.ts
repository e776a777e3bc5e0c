// A real control-plane component on podvisor (issue 13): kubeadm's etcd static pod, end to end
// with real podman and etcd 3.4 from Debian's packages. The manifest is kubeadm's own (the corpus
// file) with only its image, addresses, 3.5-only flags and hostPaths changed (etcd-fixture.ts).
// It becomes Running and Ready through its startup probe, its liveness probe passes, etcdctl
// writes and reads a key over TLS; a kill -9 of etcd is a restart with the data kept; an agent
// SIGKILLed and started again adopts etcd; an edit replaces it with the data kept, and an
// invalid edit leaves it running. One etcd for the whole file, so the steps run in order.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { DEVICE_PLACE, ETCD_35_ONLY_FLAGS, KUBEADM_ETCD, etcdImageFor, etcdctlArgs, kubeadmEtcdManifest, makeEtcdDataDir, makeEtcdPki, runnableEtcdManifest, type EtcdPlace } from './etcd-fixture.js';
import {
  ACTION_EVENTS,
  containerOf,
  exec,
  freePort,
  podman,
  podmanContainer,
  podsOf,
  podvisorCli,
  putManifest,
  REPO,
  setup,
  statusTable,
  waitFor,
  waitForStatus,
  type AgentProcess,
  type StatusItem,
} from './harness.js';

// tap's own limit for a file (.taprc): every wait below is bounded so that a failure ends the file
// within it, and the steps after a failed one do not run (the pod is removed at teardown either way).
t.setTimeout(300_000);

/**
 * Whether this process may lower an OOM score (CAP_SYS_RESOURCE, bit 24 of CapEff). Root on a
 * device has it; the sandbox this suite was written in drops it, and there the agent can only
 * say that it could not.
 */
async function maySetOomScore(): Promise<boolean> {
  const hex = /^CapEff:\s+([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${hex}`) & (1n << 24n)) !== 0n;
}

const isReady = (pod: StatusItem) => pod.status.conditions.some((one) => one.type === 'Ready' && one.status === 'True');

/** The manifest as an object with the fields the fixture may change taken out. */
function withoutPlace(text: string): unknown {
  const pod = parse(text) as { metadata: { annotations: Record<string, string> }; spec: { containers: Record<string, unknown>[]; volumes: { hostPath: { path?: string } }[] } };
  delete pod.metadata.annotations['kubeadm.kubernetes.io/etcd.advertise-client-urls'];
  for (const container of pod.spec.containers) {
    delete container.image;
    delete container.command;
    for (const probe of ['livenessProbe', 'startupProbe']) delete (container[probe] as { httpGet: { port?: number } }).httpGet.port;
  }
  for (const volume of pod.spec.volumes) delete volume.hostPath.path;
  return pod;
}

t.test('the runnable manifest is kubeadm\'s with only the image, addresses, 3.5-only flags and hostPaths changed', async (t) => {
  const kubeadm = await readFile(KUBEADM_ETCD, 'utf8');
  const place: EtcdPlace = { clientPort: 40001, peerPort: 40002, metricsPort: 40003, pkiDir: '/srv/t/pki/etcd', dataDir: '/srv/t/etcd' };
  const runnable = runnableEtcdManifest(kubeadm, place);
  t.same(withoutPlace(runnable), withoutPlace(kubeadm), 'everything else is kubeadm\'s');
  const command = (parse(runnable) as { spec: { containers: { command: string[] }[] } }).spec.containers[0]?.command ?? [];
  const kubeadmCommand = (parse(kubeadm) as { spec: { containers: { command: string[] }[] } }).spec.containers[0]?.command ?? [];
  t.equal(command.length, kubeadmCommand.length - ETCD_35_ONLY_FLAGS.length, 'only the 3.5 tracing flags are left out');
  t.notMatch(runnable, /192\.168\.1\.106|:238[01]\b|:2379\b/, 'none of kubeadm\'s addresses is left');
  t.match(command, ['etcd', '--advertise-client-urls=https://127.0.0.1:40001']);
  t.ok(command.includes('--listen-client-urls=https://127.0.0.1:40001'), 'the two client addresses are one here');
  t.ok(command.includes('--initial-cluster=fedora=https://127.0.0.1:40002'));
  t.ok(command.includes('--listen-metrics-urls=http://127.0.0.1:40003'), 'the probes\' port is the metrics port');
  // The example a user copies is the same derivation, on kubeadm's own ports and paths.
  const example = await readFile(join(REPO, 'examples', 'control-plane', 'etcd.yaml'), 'utf8');
  t.equal(example.replace(/^(#.*\n)+/, ''), runnableEtcdManifest(kubeadm, DEVICE_PLACE, 'localhost/etcd:3.4-podvisor'), 'examples/control-plane/etcd.yaml is kubeadm\'s, derived the same way');
});

t.test('kubeadm\'s etcd static pod on podvisor', async (t) => {
  // Built by `npm test` (scripts/test.sh); built here (cached) when this file runs alone.
  if (!(await etcdImageFor(t))) return;
  const world = await setup(t, 'etcd');
  const { node, stateDir } = world;
  const podName = `etcd-${node}`;
  const podKey = `kube-system/${podName}`;
  const container = podmanContainer(podName, 'etcd', 'kube-system');
  const place: EtcdPlace = {
    clientPort: await freePort(),
    peerPort: await freePort(),
    metricsPort: await freePort(),
    pkiDir: join(world.root, 'pki', 'etcd'),
    dataDir: join(world.root, 'etcd-data'),
  };
  await makeEtcdPki(place.pkiDir);
  await makeEtcdDataDir(place.dataDir);
  const etcdctl = async (...args: string[]) => await exec(container, 'etcdctl', ...etcdctlArgs(place.clientPort), ...args);
  const etcdPid = async () => Number((await podman('inspect', '--type', 'container', '--format', '{{.State.Pid}}', container)).trim());
  const oomScore = async () => (await readFile(`/proc/${await etcdPid()}/oom_score_adj`, 'utf8')).trim();
  const containerId = async () => (await podman('inspect', '--type', 'container', '--format', '{{.Id}}', container)).trim();
  const manifest = await kubeadmEtcdManifest(place);
  await putManifest(world.manifestDir, 'etcd.yaml', manifest);
  const startedAt = Date.now();
  let agent: AgentProcess = await world.startAgent();

  await t.test('Running and Ready through its startup probe; the liveness probe passes', async (t) => {
    const pod = await waitForStatus(stateDir, podName, 'Ready', (one) => (isReady(one) ? one : undefined), { timeoutMs: 60_000 });
    t.comment(`Ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the agent started (the startup probe's initialDelaySeconds is 10)`);
    t.equal(pod.status.phase, 'Running');
    t.match(containerOf(pod, 'etcd'), { ready: true, started: true, restartCount: 0 });
    t.ok(agent.find('startup probe succeeded', podKey).length > 0, 'the startup probe succeeded');
    // The liveness probe starts 10 s after the start and then runs every 10 s.
    await waitFor('a liveness probe that passed', () => agent.lines.some((line) => line.message === 'probe' && line.probe === 'liveness' && line.result === 'success'), { timeoutMs: 60_000 });
    t.same(agent.lines.filter((line) => line.message === 'probe' && line.result !== 'success').map((line) => `${String(line.probe)}: ${String(line.output)}`), [], 'no probe of etcd failed');
    const [row] = await statusTable(stateDir);
    t.match(row, { NAMESPACE: 'kube-system', NAME: podName, READY: '1/1', STATUS: 'Running', RESTARTS: '0' }, '`podvisor status`');
    t.same(agent.lines.filter((line) => line.level === 'warn' && String(line.source).endsWith('etcd.yaml')).map((line) => line.message), [], 'kubeadm\'s manifest validates without a warning');
    if (await maySetOomScore()) {
      t.equal(await oomScore(), '-997', 'system-node-critical: the OOM killer\'s last choice, as under the kubelet');
    } else {
      t.comment('no CAP_SYS_RESOURCE here: the OOM score cannot be lowered, and the agent says so');
      t.ok(agent.find({ event: 'PodmanCallFailed', action: 'set the OOM score of a system-node-critical container' }, podKey).length > 0, 'the agent logs that it could not set the OOM score');
      t.equal(await oomScore(), '0', 'and etcd runs all the same');
    }
    t.match(await readFile(`/proc/${await etcdPid()}/status`, 'utf8'), /^Seccomp:\s+2$/m, 'RuntimeDefault: etcd runs under a seccomp filter (podman\'s default profile)');
  });
  if (!t.passing()) return;

  await t.test('etcdctl writes a key over TLS and reads it back', async (t) => {
    t.equal(await etcdctl('put', '/podvisor/issue', '13'), 'OK');
    t.equal(await etcdctl('get', '--print-value-only', '/podvisor/issue'), '13');
    t.match(await etcdctl('member', 'list'), /, started, fedora, https:\/\/127\.0\.0\.1:/, 'one member, kubeadm\'s name, on 127.0.0.1');
  });
  if (!t.passing()) return;

  await t.test('kill -9 of etcd: podvisor restarts it, and the key is still there', async (t) => {
    const before = await containerId();
    const pid = await etcdPid();
    t.ok(pid > 1, `etcd runs as host pid ${pid}`);
    const firstRun = containerOf(await waitForStatus(stateDir, podName, 'running', (one) => one), 'etcd')?.state.running?.startedAt;
    const startups = agent.find('startup probe succeeded', podKey).length;
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    // A new run (its own start), restarted once, and Ready again: its startup probe must pass again first.
    const pod = await waitForStatus(stateDir, podName, 'a new run, restarted once, Ready again', (one) => {
      const etcd = containerOf(one, 'etcd');
      return etcd?.restartCount === 1 && etcd.state.running?.startedAt !== firstRun && etcd.lastState.terminated && isReady(one) ? one : undefined;
    }, { timeoutMs: 60_000 });
    t.comment(`Ready again ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    t.ok(agent.find('startup probe succeeded', podKey).length > startups, 'the new run passed its startup probe before it was Ready');
    t.equal(agent.find({ event: 'ContainerRestarting' }, podKey).length, 1, 'one restart');
    const etcd = containerOf(pod, 'etcd');
    t.match(etcd?.lastState.terminated, { exitCode: 137, signal: 9, reason: 'Error' }, 'lastState: the killed run ended with SIGKILL');
    t.equal(await containerId(), before, 'restarted in place, as the kubelet restarts a container');
    if (await maySetOomScore()) t.equal(await oomScore(), '-997', 'the new run is node-critical too');
    t.equal(await etcdctl('get', '--print-value-only', '/podvisor/issue'), '13', 'the hostPath data dir kept the key');
  });
  if (!t.passing()) return;

  await t.test('the agent SIGKILLed and started again adopts etcd', async (t) => {
    const before = await containerId();
    const running = (await podman('inspect', '--type', 'container', '--format', '{{.State.StartedAt}}', container)).trim();
    await agent.stop('SIGKILL');
    agent = await world.startAgent();
    // Two full passes with nothing done (a loaded machine lists slowly: a minute for them).
    await agent.waitForRelists(2, { timeoutMs: 90_000 });
    t.same(agent.find({ event: ACTION_EVENTS }).map((line) => line.event), [], 'no action on etcd');
    t.equal(await containerId(), before, 'the same container');
    t.equal((await podman('inspect', '--type', 'container', '--format', '{{.State.StartedAt}}', container)).trim(), running, 'not restarted');
    const pod = await waitForStatus(stateDir, podName, 'Ready under the new agent', (one) => (isReady(one) ? one : undefined), { timeoutMs: 60_000 });
    t.equal(containerOf(pod, 'etcd')?.restartCount, 1, 'the restart count survives the agent');
    t.equal(await etcdctl('get', '--print-value-only', '/podvisor/issue'), '13');
  });
  if (!t.passing()) return;

  let editedId = '';
  await t.test('an edit (a changed flag) replaces the pod, with the data kept', async (t) => {
    const before = await containerId();
    const hash = (await podsOf(node))[0]?.Labels?.['io.podvisor.hash'];
    await putManifest(world.manifestDir, 'etcd.yaml', manifest.replace('--snapshot-count=10000', '--snapshot-count=5000'));
    await agent.waitForLog({ event: 'PodReplacing' }, { timeoutMs: 30_000 });
    editedId = await waitFor('the edited etcd running', async () => {
      const pods = await podsOf(node);
      const id = pods.length === 1 && pods[0]?.Status === 'Running' && pods[0].Labels?.['io.podvisor.hash'] !== hash ? await containerId().catch(() => undefined) : undefined;
      return id !== undefined && id !== before ? id : undefined;
    }, { timeoutMs: 60_000 });
    const inspect = await podman('inspect', '--type', 'container', '--format', '{{json .Config.Entrypoint}}', container);
    t.match(inspect, /--snapshot-count=5000/, 'etcd runs with the changed flag');
    await waitForStatus(stateDir, podName, 'the edited pod Ready', (one) => (isReady(one) ? one : undefined), { timeoutMs: 60_000 });
    t.equal(await etcdctl('get', '--print-value-only', '/podvisor/issue'), '13', 'the new pod reads the old pod\'s data');
  });
  if (!t.passing()) return;

  await t.test('an invalid edit keeps etcd running on its last good spec', async (t) => {
    t.ok(editedId, 'the edited etcd runs');
    const actionsBefore = agent.find({ event: ACTION_EVENTS }).length;
    // A probe period that is not a number: the file is refused.
    await putManifest(world.manifestDir, 'etcd.yaml', manifest.replace('--snapshot-count=10000', '--snapshot-count=5000').replace('periodSeconds: 10', 'periodSeconds: ten'));
    await agent.waitForLog({ event: 'ManifestInvalid' }, { timeoutMs: 30_000 });
    t.ok(agent.lines.some((line) => /etcd\.yaml:\d+:\d+: spec\.containers\[0\]\.livenessProbe\.periodSeconds: /.test(line.message)), 'the log names the file, line and field');
    // Two full passes with nothing done (a loaded machine lists slowly: a minute for them).
    await agent.waitForRelists(2, { timeoutMs: 90_000 });
    t.equal(agent.find({ event: ACTION_EVENTS }).length, actionsBefore, 'nothing done to etcd');
    t.equal(await containerId(), editedId, 'the same container still runs');
    const pod = await waitForStatus(stateDir, podName, 'ManifestValid=False', (one) => one.status.conditions.find((condition) => condition.type === 'podvisor.io/ManifestValid' && condition.status === 'False') && one, { timeoutMs: 20_000 });
    t.ok(isReady(pod), 'still Ready');
    t.equal(await etcdctl('get', '--print-value-only', '/podvisor/issue'), '13');
    const described = await podvisorCli('describe', '-n', 'kube-system', podName, '--state-dir', stateDir);
    t.equal(described.code, 0, '`podvisor describe` of the pod');
    t.match(described.stdout, /^Priority Class Name:\s+system-node-critical$/m);
    t.match(described.stdout, new RegExp(`^\\s+Liveness:\\s+http-get http://127\\.0\\.0\\.1:${place.metricsPort}/health\\?exclude=NOSPACE&serializable=true `, 'm'), 'the liveness probe, on 127.0.0.1');
    t.match(described.stdout, /^\s+Requests:\n\s+cpu:\s+100m\n\s+memory:\s+100Mi$/m);
    t.match(described.stdout, /^QoS Class:\s+Burstable$/m);
    t.comment(described.stdout);
  });
  t.comment(`the etcd steps took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
});
