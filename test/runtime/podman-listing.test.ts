// parseListing on what podman really prints: `pod ps` and `ps --all` JSON recorded from podman
// 4.3 (Debian 12) and written in podman 5.x's shape (see test/fixtures/runtime/README.md).
// The one listing is all the planner sees, so every field it reads is checked exactly.
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { PodmanCli, PodmanError } from '../../src/runtime/podman-cli.js';
import { parseListing, parseListingOutput, PodmanRuntime } from '../../src/runtime/podman-runtime.js';
import type { ObservedContainer, ObservedPod } from '../../src/runtime/types.js';

type PodPs = Parameters<typeof parseListing>[0];
type Ps = Parameters<typeof parseListing>[1];

function fixture(version: string): { pods: PodPs; containers: Ps } {
  const read = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/runtime/${version}/${name}`, import.meta.url), 'utf8')) as unknown;
  return { pods: read('pod-ps.json') as PodPs, containers: read('ps.json') as Ps };
}

/** A pod without its containers, to compare pod fields and containers separately. */
function podFields(pod: ObservedPod | undefined): Omit<ObservedPod, 'containers'> | undefined {
  if (!pod) return undefined;
  const { containers: _containers, ...rest } = pod;
  return rest;
}

/** The fields the planner reads, by container name; the exit code only where it exited. */
function containerFields(pod: ObservedPod | undefined): Record<string, unknown> {
  return Object.fromEntries((pod?.containers ?? []).map((container) => [container.name, {
    id: container.id,
    kind: container.kind,
    state: container.state,
    ...(container.state === 'exited' ? { exitCode: container.exitCode } : {}),
    startedAt: container.startedAt?.toISOString(),
    finishedAt: container.finishedAt?.toISOString(),
    image: container.image,
  }]));
}

const at = (seconds: number) => new Date(seconds * 1000).toISOString();

t.test('podman 4.3 (recorded)', async (t) => {
  const { pods, containers } = fixture('podman-4.3');
  const observation = parseListing(pods, containers, 'fixture-node');
  t.equal(observation.foreignPods, 1, 'the other node\'s pod is counted, not listed');
  t.strictSame(observation.pods.map((pod) => pod.key).sort(), ['default/fix-fixture-node', 'kube-system/stopped-fixture-node']);

  const running = observation.pods.find((pod) => pod.key === 'default/fix-fixture-node');
  t.strictSame(podFields(running), {
    id: '6f92f75941e7cf8cd330e70483852c1ef5599a521a0b19a2bee1936b47e06616',
    infraId: '1320c3704f79b3e9e4972011f3f68c09f00eb42223e5d278c62504a04ed502b8',
    podmanName: 'default_fix-fixture-node',
    key: 'default/fix-fixture-node',
    name: 'fix-fixture-node',
    namespace: 'default',
    uid: '11111111-2222-3333-4444-555555555555',
    hash: '0123456789abcdef',
    source: '/etc/podvisor/manifests.d/fix.yaml',
    gracePeriodSeconds: 5,
    infraRunning: true,
  });
  t.strictSame(containerFields(running), {
    init: {
      id: '04067bca86e65e3ae200b28b619ac6b142422eef394ec914dfadcbe621de23d6',
      kind: 'init',
      state: 'exited',
      exitCode: 0,
      startedAt: at(1795916771),
      finishedAt: at(1795916771),
      image: 'localhost/busybox:podvisor',
    },
    app: {
      id: '233dd99faba5a90e93a7a3628f219be12bb337069e97199f3e02a178dc2cb720',
      kind: 'app',
      state: 'running',
      startedAt: at(1795916771),
      finishedAt: undefined,
      image: 'localhost/busybox:podvisor',
    },
    job: {
      id: 'b7ff5374d3fdafe47373076578062a26742194aedf34c90d9931034555273cb0',
      kind: 'app',
      state: 'exited',
      exitCode: 3,
      startedAt: at(1795916771),
      finishedAt: at(1795916771),
      image: 'localhost/busybox:podvisor',
    },
  }, 'the infra container is not one of the pod\'s containers');

  const stopped = observation.pods.find((pod) => pod.key === 'kube-system/stopped-fixture-node');
  t.strictSame(podFields(stopped), {
    id: 'e558186935c3ca7dce3db2987523024b41556409fa6b9efae141468eb868fddc',
    infraId: 'd4f9ecb6002b6525044acf5f37146d46340eaf6f69b372117ed3c7303844b2c1',
    podmanName: 'kube-system_stopped-fixture-node',
    key: 'kube-system/stopped-fixture-node',
    name: 'stopped-fixture-node',
    namespace: 'kube-system',
    uid: 'bbbbbbbb-2222-3333-4444-555555555555',
    hash: 'aaaabbbbccccdddd',
    source: '/etc/podvisor/manifests.d/stopped.yaml',
    gracePeriodSeconds: 0,
    infraRunning: false,
  });
  t.strictSame(containerFields(stopped), {
    app: {
      id: '7801f138415e744eb466b889fea4faba362fe2b6aaf018a8acc5d3b006e15776',
      kind: 'app',
      state: 'created',
      startedAt: undefined,
      finishedAt: undefined,
      image: 'localhost/busybox:podvisor',
    },
  });

  const other = parseListing(pods, containers, 'other-node');
  t.equal(other.foreignPods, 2);
  t.strictSame(other.pods.map((pod) => [pod.key, pod.gracePeriodSeconds, pod.infraRunning, pod.containers.map((one) => `${one.name}:${one.state}`)]), [
    ['default/fix-other-node', 30, true, ['app:running']],
  ]);
  t.strictSame(parseListing(pods, containers, 'nobody'), { pods: [], foreignPods: 3 });
});

t.test('podman 5.x (shape of its documented output)', async (t) => {
  const { pods, containers } = fixture('podman-5.x');
  const observation = parseListing(pods, containers, 'fixture-node');
  t.equal(observation.foreignPods, 1);
  t.strictSame(observation.pods.map((pod) => pod.key), ['jobs/batch-fixture-node', 'default/web-fixture-node'], 'in podman\'s order');

  const web = observation.pods.find((pod) => pod.key === 'default/web-fixture-node');
  t.strictSame(podFields(web), {
    id: 'a1fb912bb16f4379686492b83283f218d55aedff01bd5b8aaa94a7f189b82201',
    infraId: 'f3eacd3276f27e5f17897b7d52b74c0df0737afd18b39fb760a301ae475b7032',
    podmanName: 'default_web-fixture-node',
    key: 'default/web-fixture-node',
    name: 'web-fixture-node',
    namespace: 'default',
    uid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    hash: '5a5a5a5a5a5a5a5a',
    source: '/etc/podvisor/manifests.d/web.yaml',
    gracePeriodSeconds: 10,
    infraRunning: true,
  });
  const CREATED = 1748779200;
  t.strictSame(containerFields(web), {
    setup: { id: '9e859a8d936c28b471342f952cd7f105e0d96b8113c7e5efa9d723f759461c94', kind: 'init', state: 'exited', exitCode: 0, startedAt: at(CREATED + 1), finishedAt: at(CREATED + 2), image: 'localhost/busybox:podvisor' },
    app: { id: '3d4017b3474be60367e12a27be877ed39df3f6eddd6b7968b79a521de8dee984', kind: 'app', state: 'running', startedAt: at(CREATED + 2), finishedAt: undefined, image: 'localhost/busybox:podvisor' },
    job: { id: '4879efdd0792ff1e784503cdd8ca31e82a36f96dd30a4c4e8cd323b3afb289e7', kind: 'app', state: 'exited', exitCode: 137, startedAt: at(CREATED + 3), finishedAt: at(CREATED + 33), image: 'localhost/busybox:podvisor' },
    fresh: { id: '848e4ee90d6670447a144ca794a46afec86294a537622f4a847930dfda98d830', kind: 'app', state: 'created', startedAt: undefined, finishedAt: undefined, image: 'localhost/busybox:podvisor' },
  });
  t.strictSame(web?.containers.map((one) => one.name), ['setup', 'app', 'job', 'fresh'], 'in ps order');

  const batch = observation.pods.find((pod) => pod.key === 'jobs/batch-fixture-node');
  t.equal(batch?.infraRunning, false, 'an exited infra container');
  t.equal(batch?.gracePeriodSeconds, 30);
  t.strictSame(containerFields(batch), {
    work: { id: '5f84c6eb91d294e5cf702925ef1081ab74f8285d31058a1dd6006f261e7ee2cb', kind: 'app', state: 'exited', exitCode: 0, startedAt: at(CREATED + 601), finishedAt: at(CREATED + 649), image: 'localhost/busybox:podvisor' },
  });
});

t.test('an exit code only for a container that exited (podman prints ExitCode 0 for all)', async (t) => {
  for (const version of ['podman-4.3', 'podman-5.x']) {
    const { pods, containers } = fixture(version);
    const notExited = parseListing(pods, containers, 'fixture-node').pods
      .flatMap((pod) => pod.containers)
      .filter((container) => container.state !== 'exited')
      .map((container) => [container.name, container.state, container.exitCode]);
    t.ok(notExited.length >= 2, `${version}: running and created containers are in the fixture`);
    t.strictSame(notExited.map(([, , exitCode]) => exitCode), notExited.map(() => undefined), `${version}: ${JSON.stringify(notExited)}`);
  }
});

t.test('empty, null and odd entries', async (t) => {
  t.strictSame(parseListing(null, null, 'n'), { pods: [], foreignPods: 0 });
  t.strictSame(parseListing([], [], 'n'), { pods: [], foreignPods: 0 });
  const labels = { 'io.podvisor.managed': 'true', 'io.podvisor.node': 'n', 'io.podvisor.name': 'p-n' };
  const observation = parseListing(
    [
      { Id: 'p1', Name: 'default_p-n', InfraId: 'i1', Labels: labels, Containers: null },
      { Id: 'p2', Name: 'unmanaged', Labels: { 'io.podvisor.node': 'n' }, Containers: [] },
      { Id: 'p3', Name: 'no-labels', Labels: null },
      { Id: 'p4', Name: 'false', Labels: { ...labels, 'io.podvisor.managed': 'false' } },
    ],
    [
      { Id: 'c1', Pod: 'p1', State: 'stopped', ExitCode: 143, ExitedAt: 100, Labels: { ...labels, 'io.podvisor.container': 'a' } },
      { Id: 'c2', Pod: 'p1', State: 'stopping', Labels: { ...labels, 'io.podvisor.container': 'b', 'io.podvisor.container-kind': 'app' } },
      { Id: 'c3', Pod: 'p1', State: 'configured', Labels: { ...labels, 'io.podvisor.container': 'c', 'io.podvisor.container-kind': 'init' } },
      { Id: 'c4', Pod: 'p1', State: 'initialized', Labels: { ...labels, 'io.podvisor.container': 'd' } },
      { Id: 'c5', Pod: 'p1', State: 'paused', Labels: { ...labels, 'io.podvisor.container': 'e' } },
      { Id: 'c6', Pod: 'p1', State: 'removing', Labels: { ...labels, 'io.podvisor.container': 'f' } },
      { Id: 'c7', Pod: 'p1', State: 'Running', StartedAt: 0, Labels: { ...labels, 'io.podvisor.container': 'g' } },
      { Id: 'c8', Pod: 'p1', State: 'running', Labels: labels },
      { Id: 'c9', State: 'running', Labels: { ...labels, 'io.podvisor.container': 'h' } },
      { Id: 'c10', Pod: 'p1', State: 'running', Labels: null },
    ],
    'n',
  );
  t.equal(observation.foreignPods, 0, 'unmanaged pods are not foreign, just not podvisor\'s');
  t.equal(observation.pods.length, 1);
  const pod = observation.pods[0];
  t.strictSame(podFields(pod), {
    id: 'p1', podmanName: 'default_p-n', key: 'default/p-n', name: 'p-n', namespace: 'default',
    uid: '', hash: '', source: '', gracePeriodSeconds: 30, infraRunning: false, infraId: 'i1',
  }, 'missing labels get defaults; no Containers list means infra not running');
  const summary = (container: ObservedContainer) => `${container.id}:${container.name}:${container.kind}:${container.state}`;
  t.strictSame(pod?.containers.map(summary), [
    'c1:a:app:exited',
    'c2:b:app:exited',
    'c3:c:init:created',
    'c4:d:app:created',
    'c5:e:app:paused',
    'c6:f:app:unknown',
    'c7:g:app:running',
  ], 'states folded; containers without a container label or a pod left out');
  t.equal(pod?.containers[0]?.exitCode, 143);
  t.equal(pod?.containers[0]?.finishedAt?.getTime(), 100_000);
  t.equal(pod?.containers[6]?.startedAt, undefined, 'StartedAt 0 is no time');
  t.equal(pod?.containers[0]?.image, '', 'no Image: empty');
});

t.test('a listing whose output is not a JSON list is an error, never "no pods"', async (t) => {
  const args = ['ps', '--all', '--format', 'json'];
  t.strictSame(parseListingOutput(args, '[]'), []);
  t.strictSame(parseListingOutput(args, 'null'), [], 'podman\'s null: none');
  t.strictSame(parseListingOutput(args, '[{"Id":"c1","State":"running"}]'), [{ Id: 'c1', State: 'running' }]);
  for (const [what, stdout] of [
    ['nothing at all', ''],
    ['a newline only', '\n'],
    ['a document cut short', '[{"Id":"c1","State":"runn'],
    ['an object', '{"cause":"internal libpod error","message":"x","response":500}'],
    ['a list of non-objects', '[null]'],
    ['entries without an Id', '[{"Names":["x"]}]'],
  ] as const) {
    t.throws(() => parseListingOutput(args, stdout), PodmanError, what);
  }
});

t.test('list(): when one half of the listing fails, the other is killed, and list() settles only once it is', async (t) => {
  const dir = t.testdir();
  const pidFile = join(dir, 'ps.pid');
  // A stand-in podman: `ps` records its pid and hangs, deaf to SIGTERM (a podman stuck on a
  // lock); `pod ps` fails once `ps` is running.
  const bin = join(dir, 'podman');
  await writeFile(bin, [
    '#!/bin/bash',
    `if [ "$1" = pod ]; then while [ ! -s ${pidFile} ]; do sleep 0.05; done; echo "Error: beginning transaction: database is locked" >&2; exit 125; fi`,
    `echo $$ > ${pidFile}`,
    "trap '' TERM",
    'exec sleep 600',
    '',
  ].join('\n'), { mode: 0o755 });
  const runtime = new PodmanRuntime({ cli: new PodmanCli({ bin }), nodeName: 'n', stateDir: dir, hostIP: '127.0.0.1' });
  await t.rejects(runtime.list(), /database is locked/, 'the first failure is the one reported');
  const pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  t.ok(pid > 0 && !alive(), 'the hanging `ps` is dead by the time list() settles (well before its 60 s timeout)');
  if (pid > 0 && alive()) process.kill(pid, 'SIGKILL');
});
