// The last piece of issue 13: three etcd members on one host, each a static pod of its own made
// from kubeadm's manifest (etcd-fixture.ts: member a, b and c, each with its own ports, pki and
// data directory, one CA, one `--initial-cluster` of all three), form one cluster under one agent.
// Removing one member's manifest stops that member and only that one; the other two keep a
// quorum (2 of 3) and keep serving. The member stays in the cluster's membership, as under the
// kubelet: a manifest's removal stops a process, `etcdctl member remove` changes a cluster.
// One cluster for the whole file, so the steps run in order.
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { parse } from 'yaml';
import { etcdClusterPlaces, etcdImageFor, etcdctlArgs, KUBEADM_ETCD, kubeadmEtcdManifest, makeEtcdDataDir, makeEtcdPki, runnableEtcdManifest, type EtcdPlace } from './etcd-fixture.js';
import {
  ACTION_EVENTS,
  containerIds,
  containerOf,
  DiedEvents,
  exec,
  freePort,
  podExists,
  podmanContainer,
  podsOf,
  putManifest,
  setup,
  statusItems,
  statusOf,
  statusTable,
  waitFor,
  type StatusItem,
} from './harness.js';

// tap's limit for this file: every wait below is bounded so that a failure ends the file within it.
// On an idle machine the file takes under a minute; with another suite's 200 pods on the same
// podman, one `podman ps` was seen to take 40 s, so the waits are sized for that.
t.setTimeout(480_000);

const MEMBERS = ['a', 'b', 'c'] as const;

const isReady = (pod: StatusItem) => pod.status.conditions.some((one) => one.type === 'Ready' && one.status === 'True');

/** The container's command of a manifest's text. */
function commandOf(text: string): string[] {
  return (parse(text) as { spec: { containers: { command: string[] }[] } }).spec.containers[0]?.command ?? [];
}

/** One line of `etcdctl member list` (simple output): id, status, name, peer URLs, client URLs, learner. */
function memberRows(out: string): { status: string; name: string; peer: string; client: string }[] {
  return out.split('\n').filter(Boolean).map((line) => {
    const [, status = '', name = '', peer = '', client = ''] = line.split(', ');
    return { status, name, peer, client };
  });
}

t.test('a member\'s manifest is the single member\'s with only its pod name, member name and initial cluster changed', async (t) => {
  const kubeadm = await readFile(KUBEADM_ETCD, 'utf8');
  let next = 41000;
  const places = await etcdClusterPlaces(MEMBERS, '/srv/t', async () => ++next);
  const b = places[1];
  if (!b) throw new Error('no member b');
  const member = runnableEtcdManifest(kubeadm, b);
  const single = runnableEtcdManifest(kubeadm, { ...b, member: undefined });
  t.equal((parse(member) as { metadata: { name: string } }).metadata.name, 'etcd-b', 'the pod is named after the member');
  const command = commandOf(member);
  t.ok(command.includes('--name=b'), 'the member\'s own name');
  t.ok(command.includes('--initial-cluster=a=https://127.0.0.1:41002,b=https://127.0.0.1:41005,c=https://127.0.0.1:41008'), 'all three members, each on its own peer port');
  t.ok(command.includes('--initial-cluster-state=new'), 'a new cluster');
  t.ok(command.includes('--listen-peer-urls=https://127.0.0.1:41005') && command.includes('--listen-client-urls=https://127.0.0.1:41004'), 'b listens on its own ports');
  const cluster = /^--initial-cluster=/;
  t.notMatch(command.filter((flag) => !cluster.test(flag)).join(' '), /:4100[1-3]\b|:4100[7-9]\b/, 'no port of a\'s or c\'s outside the initial cluster');
  const own = (flag: string) => !/^--(name|initial-cluster|initial-cluster-state)=/.test(flag);
  t.same(command.filter(own), commandOf(single).filter(own), 'every other flag is the single member\'s, in order');
  /** The manifest as an object without the pod's name and the command. */
  const rest = (text: string) => {
    const pod = parse(text) as { metadata: { name?: string }; spec: { containers: { command?: string[] }[] } };
    delete pod.metadata.name;
    for (const one of pod.spec.containers) delete one.command;
    return pod;
  };
  t.same(rest(member), rest(single), 'the rest of the manifest is the single member\'s');
  t.match(member, new RegExp(`path: ${b.dataDir}\\n`), 'its own data directory');
  t.match(member, /path: \/srv\/t\/b\/pki\/etcd\n/, 'its own pki directory');
});

t.test('three etcd static pods on one host form a cluster; removing one manifest leaves two serving', async (t) => {
  if (!(await etcdImageFor(t))) return;
  const world = await setup(t, 'etcd-cluster');
  const { node, stateDir } = world;
  const places = await etcdClusterPlaces(MEMBERS, world.root, freePort);
  const [a, b, c] = places as [EtcdPlace, EtcdPlace, EtcdPlace];
  // One CA, made with a's certificates; b and c get their own certificates signed by it.
  await makeEtcdPki(a.pkiDir, 'a');
  await makeEtcdPki(b.pkiDir, 'b', a.pkiDir);
  await makeEtcdPki(c.pkiDir, 'c', a.pkiDir);
  for (const place of places) await makeEtcdDataDir(place.dataDir);
  const podName = (place: EtcdPlace) => `etcd-${place.member?.name ?? ''}-${node}`;
  const podKey = (place: EtcdPlace) => `kube-system/${podName(place)}`;
  /** podman's name for the pod (`<namespace>_<pod>`). */
  const podmanPod = (place: EtcdPlace) => `kube-system_${podName(place)}`;
  const container = (place: EtcdPlace) => podmanContainer(podName(place), 'etcd', 'kube-system');
  /** etcdctl run in `place`'s own container, talking to its own client port. */
  const etcdctl = async (place: EtcdPlace, ...args: string[]) => await exec(container(place), 'etcdctl', ...etcdctlArgs(place.clientPort), ...args);
  /** etcdctl in `place`'s container against `ports`: its exit code and both output streams. */
  const etcdctlAll = async (place: EtcdPlace, ports: [number, ...number[]], ...args: string[]) => {
    const result = await execa('podman', ['exec', container(place), 'etcdctl', ...etcdctlArgs(...ports), ...args], { reject: false, stdin: 'ignore', all: true, timeout: 60_000 });
    return { code: result.exitCode ?? -1, output: result.all ?? '' };
  };
  const paths: Record<string, string> = {};
  for (const place of places) {
    const name = place.member?.name ?? '';
    paths[name] = await putManifest(world.manifestDir, `etcd-${name}.yaml`, await kubeadmEtcdManifest(place));
  }
  const startedAt = Date.now();
  // podman info, its first call, took over 30 s with another suite's 200 pods on this podman.
  const agent = await world.startAgent([], { timeoutMs: 120_000 });

  await t.test('all three Running and Ready', async (t) => {
    // Each startup probe asks for a health that needs a leader, so none is Ready before two have
    // found each other; the first probe is 10 s after the start, then every 10 s.
    const pods = await waitFor('three etcd pods Ready', async () => {
      const items = (await statusItems(stateDir)).filter((item) => item.metadata.name.startsWith('etcd-'));
      return items.length === 3 && items.every(isReady) ? items : undefined;
    }, { timeoutMs: 240_000, intervalMs: 1000 });
    t.comment(`all Ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the agent started`);
    t.same(pods.map((pod) => pod.metadata.name).sort(), places.map(podName).sort(), 'one pod per manifest, named after its member');
    for (const pod of pods) {
      t.equal(pod.status.phase, 'Running', `${pod.metadata.name} Running`);
      t.match(containerOf(pod, 'etcd'), { ready: true, started: true, restartCount: 0 }, `${pod.metadata.name}: etcd started once, Ready`);
    }
    const rows = await statusTable(stateDir);
    t.same(rows.map((row) => [row.NAME, row.READY, row.STATUS, row.RESTARTS]).sort(), places.map((place) => [podName(place), '1/1', 'Running', '0']).sort(), '`podvisor status`');
    t.equal((await podsOf(node)).filter((pod) => pod.Status === 'Running').length, 3, 'podman runs three pods');
    t.same(agent.lines.filter((line) => line.level === 'warn' && /etcd-[abc]\.yaml$/.test(String(line.source))).map((line) => line.message), [], 'the member manifests validate without a warning');
  });
  if (!t.passing()) return;

  await t.test('etcdctl member list through TLS: three started members', async (t) => {
    const rows = memberRows(await etcdctl(a, 'member', 'list'));
    t.equal(rows.length, 3, 'three members');
    t.same(rows.map((row) => row.status), ['started', 'started', 'started'], 'every member started (none still unstarted)');
    t.same(
      rows.map((row) => [row.name, row.peer, row.client]).sort(),
      places.map((place) => [place.member?.name, `https://127.0.0.1:${place.peerPort}`, `https://127.0.0.1:${place.clientPort}`]).sort(),
      'each by its name, its peer and its client URL on 127.0.0.1',
    );
    t.same(memberRows(await etcdctl(c, 'member', 'list')).map((row) => row.name).sort(), ['a', 'b', 'c'], 'c sees the same cluster');
  });
  if (!t.passing()) return;

  await t.test('a key put through member a is read through member c', async (t) => {
    t.equal(await etcdctl(a, 'put', '/podvisor/cluster', 'three'), 'OK', 'a commits a write');
    t.equal(await etcdctl(c, 'get', '--print-value-only', '/podvisor/cluster'), 'three', 'c reads a\'s write (a linearizable read, through the leader)');
  });
  if (!t.passing()) return;

  await t.test('removing etcd-c.yaml stops c alone; a and b keep serving with 2 of 3', async (t) => {
    const pods = await podsOf(node);
    const cPod = pods.find((pod) => pod.Name === podmanPod(c));
    t.ok(cPod, 'c\'s pod is there before');
    const others = Object.fromEntries(Object.entries(await containerIds(node)).filter(([name]) => name !== container(c)));
    t.equal(Object.keys(others).length, 2, 'a\'s and b\'s containers');

    // podman's own record of how c's etcd ended: started before the removal, to see it.
    const died = new DiedEvents(node);
    t.teardown(async () => await died.stop());
    const removedAt = Date.now();
    await rm(paths.c ?? '');
    await agent.waitForLog({ event: 'ManifestRemoved', source: paths.c }, { timeoutMs: 60_000 });
    const stopping = await agent.waitForLog({ event: 'PodStopping' }, { pod: podKey(c), timeoutMs: 60_000 });
    t.equal(stopping.reason, 'no manifest asks for it', 'c is stopped because its manifest is gone');
    await waitFor('c\'s pod gone from podman', async () => !(await podExists(cPod?.Id ?? podmanPod(c))), { timeoutMs: 120_000, intervalMs: 500 });
    const removed = await agent.waitForLog({ event: 'PodRemoved' }, { pod: podKey(c), timeoutMs: 60_000 });
    const stopMs = Date.parse(removed.timestamp) - Date.parse(stopping.timestamp);
    t.comment(`c's pod gone from podman ${((Date.now() - removedAt) / 1000).toFixed(1)} s after its manifest; stopped and removed in ${(stopMs / 1000).toFixed(1)} s`);
    // kubeadm's manifest sets no grace period (30 s). etcd is PID 1 in its container and exits 0 on
    // SIGTERM (a PID 1 cannot re-raise it on itself); a SIGKILL after the grace period is 137.
    // podman 4.3 leaves ContainerExitCode out of the event when it is 0.
    const cDied = await died.waitFor(container(c), { timeoutMs: 30_000 });
    t.equal(cDied.exitCode ?? 0, 0, 'c\'s etcd ended on SIGTERM by itself (exit 0), not killed');
    const diedMs = cDied.at - Date.parse(stopping.timestamp);
    t.ok(diedMs < 30_000, `it ended within its 30 s grace period (${diedMs.toFixed(0)} ms after the stop began)`);
    t.same((await podsOf(node)).map((pod) => [pod.Name, pod.Status]).sort(), [[podmanPod(a), 'Running'], [podmanPod(b), 'Running']], 'podman runs a and b only');
    await waitFor('c gone from the status', async () => (await statusOf(stateDir, podName(c))) === undefined, { timeoutMs: 60_000, intervalMs: 500 });
    const items = await statusItems(stateDir);
    t.same(items.map((item) => item.metadata.name).sort(), [podName(a), podName(b)], 'the status holds a and b only');
    t.ok(items.every(isReady), 'a and b still Ready');
    t.same((await statusTable(stateDir)).map((row) => row.NAME).sort(), [podName(a), podName(b)], '`podvisor status` lists a and b only');

    t.equal(await etcdctl(a, 'put', '/podvisor/after', 'two'), 'OK', 'a commits a write with b alone (quorum 2 of 3)');
    t.equal(await etcdctl(b, 'get', '--print-value-only', '/podvisor/after'), 'two', 'b reads it');
    t.equal(await etcdctl(b, 'get', '--print-value-only', '/podvisor/cluster'), 'three', 'and the key written while c ran');
    // etcdctl 3.4 writes endpoint health to stderr, so both streams are read, with the exit code.
    const health = await etcdctlAll(a, [a.clientPort, b.clientPort], 'endpoint', 'health');
    t.equal(health.code, 0, 'endpoint health of a and b succeeds');
    for (const place of [a, b]) t.match(health.output, new RegExp(`^https://127\\.0\\.0\\.1:${place.clientPort} is healthy: successfully committed proposal`, 'm'), `${place.member?.name ?? ''} is healthy`);
    const cHealth = await etcdctlAll(a, [c.clientPort], '--dial-timeout=2s', '--command-timeout=5s', 'endpoint', 'health');
    t.not(cHealth.code, 0, 'endpoint health of c fails');
    t.match(cHealth.output, new RegExp(`^https://127\\.0\\.0\\.1:${c.clientPort} is unhealthy`, 'm'), 'c answers nothing: it is stopped');
    const members = memberRows(await etcdctl(b, 'member', 'list'));
    t.same(members.map((row) => row.name).sort(), ['a', 'b', 'c'], 'c is still a member: a removed manifest stops a process, it does not change the cluster');

    t.same(await containerIds(node), others, 'a\'s and b\'s containers are the same ones');
    t.same(agent.find({ event: ACTION_EVENTS }).filter((line) => line.pod !== podKey(c)).map((line) => `${String(line.pod)} ${String(line.event)}`).sort(), [podKey(a), podKey(b)].map((key) => `${key} PodCreating`), 'a and b were created once and nothing else was done to them');
    t.ok((await stat(join(c.dataDir, 'member'))).isDirectory(), 'c\'s data directory is kept (a hostPath is the user\'s)');
  });
  t.comment(`the cluster steps took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
});
