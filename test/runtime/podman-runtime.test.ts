// PodmanRuntime against real podman (scripts/setup-host.sh prepares the host and the local
// image). Each test uses its own node name, so it sees only its own pods, and removes them by
// that label when it ends. No test sends network traffic; nothing here talks to 10.88.x.x.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { PodvisorError } from '../../src/errors.js';
import { toDesiredPod, type DesiredPod } from '../../src/manifest/identity.js';
import type { PodSpec } from '../../src/manifest/pod-schema.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { PodmanRuntime } from '../../src/runtime/podman-runtime.js';
import type { ObservedPod } from '../../src/runtime/types.js';

const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';

interface Setup {
  node: string;
  stateDir: string;
  runtime: PodmanRuntime;
  /** Every podman call the runtime made, in order. */
  calls: string[][];
}

/** Mount points under `dir`, deepest first, from the kernel's table. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mount) => mount.startsWith(`${dir}/`))
    .sort()
    .reverse();
}

/** A runtime for a node name of its own, with its state in the test's directory. */
function setup(t: Test): Setup {
  const node = `rt-${randomBytes(4).toString('hex')}`;
  let stateDir = '';
  // Registered before t.testdir(), so it runs before the directory is removed.
  t.teardown(async () => {
    const { stdout } = await execa('podman', ['pod', 'ps', '-q', '--filter', `label=io.podvisor.node=${node}`], { reject: false });
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) {
      await execa('podman', ['pod', 'stop', '--time', '0', ...ids], { reject: false });
      await execa('podman', ['pod', 'rm', '--force', ...ids], { reject: false });
    }
    for (const mount of mountsUnder(stateDir)) await execa('umount', [mount], { reject: false });
  });
  stateDir = t.testdir();
  const calls: string[][] = [];
  const cli = new PodmanCli({ onCall: (args) => calls.push([...args]) });
  return { node, stateDir, runtime: new PodmanRuntime({ cli, nodeName: node, stateDir, hostIP: '127.0.0.1' }), calls };
}

function desiredPod(node: string, spec: Partial<PodSpec> = {}, name = 'web'): DesiredPod {
  return toDesiredPod(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'] }],
        ...spec,
      },
    },
    `/etc/podvisor/manifests.d/${name}.yaml`,
    node,
  );
}

/** The pod with `key` in a fresh listing. */
async function observe(runtime: PodmanRuntime, key: string): Promise<ObservedPod | undefined> {
  return (await runtime.list()).pods.find((pod) => pod.key === key);
}

/** Lists until `check` holds for the pod, failing after `timeoutMs`. */
async function waitFor(runtime: PodmanRuntime, key: string, check: (pod: ObservedPod | undefined) => boolean, what: string, timeoutMs = 15_000): Promise<ObservedPod | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const pod = await observe(runtime, key);
    if (check(pod)) return pod;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(pod)}`);
    await sleep(100);
  }
}

async function podman(...args: string[]): Promise<string> {
  return (await execa('podman', args)).stdout;
}

t.before(async () => {
  const image = await execa('podman', ['image', 'exists', IMAGE], { reject: false });
  if (image.exitCode !== 0) throw new Error(`image ${IMAGE} is missing: run \`bash scripts/setup-host.sh\` first`);
});

t.test('createPod makes the pod and its containers, labelled; list() finds them', async (t) => {
  const { node, runtime } = setup(t);
  const pod = desiredPod(node, {
    containers: [
      { name: 'app', image: IMAGE, command: ['sleep', '3600'] },
      { name: 'side', image: IMAGE, command: ['sleep', '3600'] },
    ],
  });
  await runtime.createPod(pod);

  const observed = await observe(runtime, pod.key);
  t.ok(observed, 'listed');
  t.match(observed?.podIP, /^\d+\.\d+\.\d+\.\d+$/, 'the pod\'s address on podman\'s network (read, never connected to)');
  t.match(observed?.infraId, /^[0-9a-f]{64}$/);
  t.strictSame({ ...observed, id: undefined, containers: undefined, podIP: undefined, infraId: undefined }, {
    id: undefined,
    podIP: undefined,
    infraId: undefined,
    podmanName: `default_web-${node}`,
    key: `default/web-${node}`,
    name: `web-${node}`,
    namespace: 'default',
    uid: pod.uid,
    hash: pod.hash,
    source: '/etc/podvisor/manifests.d/web.yaml',
    gracePeriodSeconds: 1,
    infraRunning: true,
    containers: undefined,
  });
  t.strictSame(observed?.containers.map((one) => [one.name, one.kind, one.state, one.image]), [
    ['app', 'app', 'running', IMAGE],
    ['side', 'app', 'running', IMAGE],
  ]);

  const [podPs] = JSON.parse(await podman('pod', 'ps', '--filter', `label=io.podvisor.node=${node}`, '--format', 'json')) as { Id: string; Labels: Record<string, string> }[];
  t.equal(podPs?.Id, observed?.id);
  t.strictSame(podPs?.Labels, {
    'io.podvisor.managed': 'true',
    'io.podvisor.node': node,
    'io.podvisor.namespace': 'default',
    'io.podvisor.name': `web-${node}`,
    'io.podvisor.uid': pod.uid,
    'io.podvisor.hash': pod.hash,
    'io.podvisor.source': '/etc/podvisor/manifests.d/web.yaml',
    'io.podvisor.grace-period': '1',
  });
  const app = JSON.parse(await podman('container', 'inspect', `default_web-${node}_app`)) as { Config: { Labels: Record<string, string> } }[];
  t.strictSame(app[0]?.Config.Labels, {
    'io.podvisor.managed': 'true',
    'io.podvisor.node': node,
    'io.podvisor.namespace': 'default',
    'io.podvisor.name': `web-${node}`,
    'io.podvisor.uid': pod.uid,
    'io.podvisor.hash': pod.hash,
    'io.podvisor.container': 'app',
    'io.podvisor.container-kind': 'app',
  });
  t.equal((await podman('exec', `default_web-${node}_side`, 'hostname')).trim(), `web-${node}`, 'the pod\'s hostname');
});

t.test('startContainer runs an exited container again', async (t) => {
  const { node, runtime, stateDir } = setup(t);
  const pod = desiredPod(node, {
    volumes: [{ name: 'data', emptyDir: {} }],
    containers: [{ name: 'once', image: IMAGE, command: ['sh', '-c', 'echo run >> /data/runs; exit 3'], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
  });
  await runtime.createPod(pod);
  const runs = join(stateDir, 'pods', pod.uid, 'volumes', 'data', 'runs');
  const first = await waitFor(runtime, pod.key, (one) => one?.containers[0]?.state === 'exited', 'the first run to exit');
  const container = first?.containers[0];
  t.equal(container?.exitCode, 3);
  t.ok(container?.finishedAt instanceof Date);
  t.equal(readFileSync(runs, 'utf8'), 'run\n');
  const firstFinish = container?.finishedAt?.getTime() ?? 0;

  await sleep(1100); // podman's times have a resolution of one second
  if (!first || !container) return;
  await runtime.startContainer(first, container.id);
  const second = await waitFor(runtime, pod.key, (one) => one?.containers[0]?.state === 'exited' && (one.containers[0].finishedAt?.getTime() ?? 0) > firstFinish, 'the second run to exit');
  t.equal(second?.containers[0]?.id, container.id, 'the same container, started again');
  t.equal(second?.containers[0]?.exitCode, 3);
  t.equal(readFileSync(runs, 'utf8'), 'run\nrun\n');
});

t.test('killPod stops the pod within its grace period and removes it and its directory', async (t) => {
  const { node, runtime, stateDir } = setup(t);
  // sleep as PID 1 ignores SIGTERM: only the SIGKILL after the grace period ends it.
  const pod = desiredPod(node, { terminationGracePeriodSeconds: 2, volumes: [{ name: 'scratch', emptyDir: {} }], containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'], volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] }] });
  await runtime.createPod(pod);
  const directory = join(stateDir, 'pods', pod.uid);
  t.ok(existsSync(join(directory, 'volumes', 'scratch')), 'the pod directory exists while it runs');
  const observed = await observe(runtime, pod.key);
  if (!observed) throw new Error('pod not listed');
  t.equal(observed.gracePeriodSeconds, 2);

  const started = Date.now();
  await runtime.killPod(observed, observed.gracePeriodSeconds);
  const took = Date.now() - started;
  t.ok(took >= 1500, `waited for the grace period (${took} ms)`);
  t.ok(took < 12_000, `then killed (${took} ms)`);
  t.equal(await observe(runtime, pod.key), undefined, 'gone from the listing');
  t.equal((await execa('podman', ['pod', 'exists', observed.id], { reject: false })).exitCode, 1, 'gone from podman');
  t.notOk(existsSync(directory), 'its directory is removed');

  await runtime.killPod(observed, 0);
  t.pass('killing a pod that is already gone is not an error');
});

t.test('a hostPath of type Directory that does not exist is refused, naming the field', async (t) => {
  const { node, runtime, stateDir } = setup(t);
  const missing = join(stateDir, 'no-such-dir');
  const pod = desiredPod(node, {
    volumes: [{ name: 'host', hostPath: { path: missing, type: 'Directory' } }],
    containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'], volumeMounts: [{ name: 'host', mountPath: '/host' }] }],
  });
  const error = await runtime.createPod(pod).then(() => undefined, (caught: unknown) => caught);
  t.ok(error instanceof PodvisorError, 'a PodvisorError');
  t.equal((error as PodvisorError).code, 'E_HOST_PATH');
  t.equal((error as PodvisorError).message, `spec.volumes[0].hostPath: ${missing} does not exist (type Directory)`);
  t.equal(await observe(runtime, pod.key), undefined, 'no pod was made');
  t.notOk(existsSync(missing), 'nor the directory');

  await mkdir(missing);
  await writeFile(join(missing, 'hello'), 'from the host\n');
  await runtime.createPod(pod);
  t.equal(await podman('exec', `default_web-${node}_app`, 'cat', '/host/hello'), 'from the host', 'once it exists the pod starts and sees it');
});

t.test('a createPod that fails before the pod exists leaves no directory or mount behind', async (t) => {
  const { node, runtime, stateDir } = setup(t);
  const pod = desiredPod(node, {
    volumes: [
      { name: 'cache', emptyDir: { medium: 'Memory' } },
      { name: 'host', hostPath: { path: join(stateDir, 'missing'), type: 'Directory' } },
    ],
  });
  await t.rejects(runtime.createPod(pod), { code: 'E_HOST_PATH' });
  t.equal(await observe(runtime, pod.key), undefined, 'no pod');
  t.strictSame(mountsUnder(stateDir), [], 'no tmpfs left mounted');
  t.notOk(existsSync(join(stateDir, 'pods', pod.uid)), 'no pod directory left');
});

t.test('a host port another process holds: the sandbox fails before any container is made, and starts once the port is free', async (t) => {
  const { node, runtime, calls } = setup(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const pod = desiredPod(node, { containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'], ports: [{ containerPort: 80, hostPort: port, hostIP: '127.0.0.1' }] }] });
  await t.rejects(runtime.createPod(pod), {
    name: 'SandboxStartError',
    reason: 'CreatePodSandboxError',
    containerName: 'app',
    message: `container "app": CreatePodSandboxError: Failed to create pod sandbox: cannot listen on the TCP port: listen tcp4 127.0.0.1:${port}: bind: address already in use`,
  });
  const observed = await observe(runtime, pod.key);
  t.same(observed && { infraRunning: observed.infraRunning, containers: observed.containers.length }, { infraRunning: false, containers: 0 }, 'the pod is kept, with no container made');
  t.notOk(calls.some((args) => args[0] === 'run'), 'podman run never called');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!observed) return;
  t.same(await runtime.createContainers(observed, pod, ['app']), ['app'], 'created once the port is free');
  await waitFor(runtime, pod.key, (one) => one?.infraRunning === true && one.containers[0]?.state === 'running', 'the pod running');
});

t.test('an app container that needs the pod\'s IP: the infra alone is started, a completed init container is not run again', async (t) => {
  const { node, runtime } = setup(t);
  const pod = desiredPod(node, {
    initContainers: [{ name: 'init', image: IMAGE, command: ['true'] }],
    containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'], env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] }],
  });
  t.same(await runtime.createPod(pod), ['init']);
  const done = await waitFor(runtime, pod.key, (one) => one?.containers.find((container) => container.name === 'init')?.state === 'exited', 'the init container to complete');
  const initName = `default_web-${node}_init`;
  const before = await podman('inspect', '--format', '{{.State.StartedAt}}', initName);
  if (!done) return;
  t.same(await runtime.createContainers(done, pod, ['app']), ['app']);
  t.equal(await podman('inspect', '--format', '{{.State.StartedAt}}', initName), before, 'the init container ran once (podman pod start would run it again)');
  const running = await waitFor(runtime, pod.key, (one) => one?.containers.find((container) => container.name === 'app')?.state === 'running', 'the app running');
  t.equal(await podman('exec', `default_web-${node}_app`, 'sh', '-c', 'echo $POD_IP'), running?.podIP, 'POD_IP is the pod\'s address');
});

t.test('a medium: Memory emptyDir is a tmpfs in the container, unmounted by killPod', async (t) => {
  const { node, runtime, stateDir } = setup(t);
  const pod = desiredPod(node, {
    volumes: [{ name: 'cache', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } }],
    containers: [{ name: 'app', image: IMAGE, command: ['sleep', '3600'], volumeMounts: [{ name: 'cache', mountPath: '/cache' }] }],
  });
  await runtime.createPod(pod);
  const hostPath = join(stateDir, 'pods', pod.uid, 'volumes', 'cache');
  t.strictSame(mountsUnder(stateDir), [hostPath], 'a tmpfs on the host, under the pod directory');
  const line = (await podman('exec', `default_web-${node}_app`, 'grep', ' /cache ', '/proc/mounts')).split(' ');
  t.equal(line[1], '/cache');
  t.equal(line[2], 'tmpfs', 'tmpfs inside the container');
  t.match(line[3] ?? '', /(^|,)size=8192k(,|$)/, 'with the size limit');
  await podman('exec', `default_web-${node}_app`, 'sh', '-c', 'echo hi > /cache/file');
  t.equal(readFileSync(join(hostPath, 'file'), 'utf8'), 'hi\n', 'the same tmpfs as on the host');

  const observed = await observe(runtime, pod.key);
  if (!observed) throw new Error('pod not listed');
  await runtime.killPod(observed, 0);
  t.strictSame(mountsUnder(stateDir), [], 'unmounted');
  t.notOk(existsSync(join(stateDir, 'pods', pod.uid)), 'and removed');
});

t.test('each start step starts the next init container and returns without waiting for it', async (t) => {
  const { node, runtime } = setup(t);
  const pod = desiredPod(node, {
    initContainers: [
      { name: 'ok', image: IMAGE, command: ['true'] },
      { name: 'wait', image: IMAGE, command: ['sleep', '3600'] },
    ],
  });
  t.strictSame(await runtime.createPod(pod), ['ok'], 'createPod starts the first init container only');
  const first = await waitFor(runtime, pod.key, (one) => one?.containers.find((c) => c.name === 'ok')?.state === 'exited', 'ok to exit');
  // Returns although "wait" runs for an hour: nothing waits on a container.
  t.strictSame(await runtime.createContainers(first!, pod, ['web'], AbortSignal.timeout(60_000)), ['wait'], 'the next step starts the next init container');
  const second = await waitFor(runtime, pod.key, (one) => one?.containers.find((c) => c.name === 'wait')?.state === 'running', 'wait to run');
  t.strictSame(await runtime.createContainers(second!, pod, ['web']), [], 'no step while an init container runs');
  t.strictSame(second?.containers.map((one) => [one.name, one.kind, one.state, one.exitCode]), [
    ['ok', 'init', 'exited', 0],
    ['wait', 'init', 'running', undefined],
  ], 'the app container was not started');
});

t.test('a failed init container is started again by the next step; the app waits for it', async (t) => {
  const { node, runtime } = setup(t);
  const pod = desiredPod(node, { initContainers: [{ name: 'setup', image: IMAGE, command: ['sh', '-c', 'exit 1'] }] });
  t.strictSame(await runtime.createPod(pod), ['setup']);
  const failed = await waitFor(runtime, pod.key, (one) => one?.containers[0]?.state === 'exited', 'setup to exit');
  t.equal(failed?.containers[0]?.exitCode, 1);
  const id = failed?.containers[0]?.id;
  t.strictSame(await runtime.createContainers(failed!, pod, ['web']), ['setup'], 'started again');
  const again = await observe(runtime, pod.key);
  t.equal(again?.containers[0]?.id, id, 'the same container, started again');
  t.strictSame(again?.containers.map((one) => one.name), ['setup'], 'the app container was not started');
});

t.test('list() makes exactly two podman calls, whatever the number of pods', async (t) => {
  const { node, runtime, calls } = setup(t);
  const expected = [
    ['pod', 'ps', '--filter', 'label=io.podvisor.managed=true', '--format', 'json'],
    ['ps', '--all', '--filter', 'label=io.podvisor.managed=true', '--format', 'json'],
  ];
  const listed = async () => {
    calls.length = 0;
    const observation = await runtime.list();
    t.strictSame([...calls].sort(), [...expected].sort(), `two calls for ${observation.pods.length} pod(s)`);
    return observation.pods.length;
  };
  t.equal(await listed(), 0);
  await Promise.all(['a', 'b', 'c'].map((name) => runtime.createPod(desiredPod(node, {}, name))));
  // The first listing that sees new pods asks for their addresses: one more call, for all three.
  calls.length = 0;
  const first = await runtime.list();
  t.strictSame(calls.filter((call) => call[0] === 'container' && call[1] === 'inspect').length, 1, 'one inspect for the new pods');
  t.equal(first.pods.filter((pod) => /^\d+\.\d+\.\d+\.\d+$/.test(pod.podIP ?? '')).length, 3, 'each pod has its address');
  t.equal(await listed(), 3);
});
