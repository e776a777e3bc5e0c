// Pods that cannot run (issue 11): a hostPort another process on the host holds, a container
// name and a pod name that something podvisor did not create already has, an image that is not
// there (pull policy Never, IfNotPresent, and Always with no registry reachable). One agent runs
// them all beside a healthy pod, and a second healthy pod arrives while they fail. Each failing
// pod must show why on its status in the kubelet's words, be retried with a growing back-off
// (counted from a pass-through log of every podman call: faulty-podman.sh with no fault plan),
// leave alone what is not podvisor's, and come up within its back-off once the cause is gone;
// the healthy pods must come up on time and stay up. (Two manifests asking for one hostPort are
// a validation conflict, tested in host-port-conflict.test.ts.) Timing bounds leave room for a
// loaded machine; PODVISOR_UNRUNNABLE_TIMEOUT_MS lifts the file's 300 s limit on a very slow one.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { containerOf, IMAGE, freePort, podman, podmanContainer, podmanStatus, podYaml, putManifest, REPO, setup, sleeper, statusItems, waitFor, type StatusItem } from '../e2e/harness.js';

const FAKE = join(REPO, 'test', 'reliability', 'faulty-podman.sh');
/**
 * How long the causes last: from the agent's start, and until each failing pod has been tried
 * five times (four back-off steps), however slow the machine.
 */
const WINDOW_MS = 75_000;
const MIN_ATTEMPTS = 5;
/** The back-off: 1 s (the harness's --backoff-initial), doubling to this. */
const BACKOFF_MAX_S = 16;
/**
 * Beyond a back-off delay: the attempt itself (podman tries a pull three times, ~4 s idle, 10 s
 * on a loaded machine), a relist, the status write.
 */
const SLACK_S = 25;

t.setTimeout(Number(process.env.PODVISOR_UNRUNNABLE_TIMEOUT_MS ?? 300_000));

/** One line of the pass-through's call log. */
interface Call {
  at: number;
  args: string;
}

async function readCalls(path: string): Promise<Call[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => {
    const [at = '0', , , args = ''] = line.split('\t');
    return { at: Number(at) * 1000, args };
  });
}

/** Listens on 127.0.0.1:`port`, as any other program on the host could. */
async function holdPort(port: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The status file as the agent wrote it last (events included), or undefined while unreadable. */
interface StatusFile {
  items: StatusItem[];
  events: { reason: string; message: string; type: string; count: number; involvedObject: { name: string; fieldPath?: string } }[];
}

async function statusFile(stateDir: string): Promise<StatusFile | undefined> {
  return JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8').catch(() => 'null')) as StatusFile | undefined;
}

/** Every distinct waiting state (reason and message) each pod's first container showed, sampled from the status file. */
class WaitingSampler {
  readonly seen = new Map<string, Set<string>>();
  #stopped = false;
  readonly #loop: Promise<void>;

  constructor(stateDir: string) {
    this.#loop = (async () => {
      while (!this.#stopped) {
        for (const item of (await statusFile(stateDir).catch(() => undefined))?.items ?? []) {
          const waiting = item.status.containerStatuses[0]?.state.waiting;
          if (!waiting) continue;
          const set = this.seen.get(item.metadata.name) ?? new Set<string>();
          set.add(`${waiting.reason ?? ''}: ${waiting.message ?? ''}`);
          this.seen.set(item.metadata.name, set);
        }
        await sleep(200);
      }
    })();
  }

  reasons(pod: string): string[] {
    return [...(this.seen.get(pod) ?? [])];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/** A failing pod: the podman call each attempt makes and fails (the back-off is measured on it). */
interface FailingCase {
  pod: string;
  attempt: (args: string, podmanName: string) => boolean;
  /** Whether it must come up once the cause is gone. */
  comesUp: boolean;
}

const runOf = (args: string, podmanName: string) => args.startsWith(`run --detach --pod ${podmanName} `);

t.test('pods that cannot run: reported in the kubelet\'s words, retried with back-off, no other pod held up', async (t) => {
  const world = await setup(t, 'unrunnable');
  const { node } = world;
  const callLog = join(world.root, 'podman-calls.log');
  // The fake without a plan passes every call to the real podman, logging it.
  process.env.PODVISOR_PODMAN = FAKE;
  process.env.FAULTY_PODMAN_LOG = callLog;
  delete process.env.FAULTY_PODMAN_PLAN;

  const name = (pod: string) => `${pod}-${node}`;
  const podmanName = (pod: string) => `default_${name(pod)}`;
  const missing = `localhost/podvisor-missing-${randomBytes(3).toString('hex')}:1`;
  const port = await freePort();
  let held: Server | undefined = await holdPort(port);
  // Made by hand, without podvisor's labels, under the names podvisor would use.
  const foreignContainer = podmanContainer(name('clash'), 'app');
  const foreignPod = podmanName('clashpod');
  t.teardown(async () => {
    if (held) await closeServer(held);
    await podmanStatus('rm', '--force', '--ignore', foreignContainer);
    await podmanStatus('pod', 'rm', '--force', '--ignore', foreignPod);
    await podmanStatus('untag', IMAGE, missing);
  });
  const foreignContainerId = (await podman('create', '--name', foreignContainer, IMAGE, 'sleep', '3600')).trim();
  const foreignPodId = (await podman('pod', 'create', '--name', foreignPod)).trim();

  const cases: FailingCase[] = [
    { pod: 'port', attempt: (args, pod) => args === `start ${pod}-infra`, comesUp: true },
    { pod: 'clash', attempt: runOf, comesUp: true },
    { pod: 'clashpod', attempt: (args, pod) => args.startsWith(`pod create --name ${pod} `), comesUp: true },
    { pod: 'img-never', attempt: runOf, comesUp: true },
    { pod: 'img-ifnotpresent', attempt: runOf, comesUp: true },
    // Always pulls every time, as the kubelet does: with no registry it fails even once the image is here.
    { pod: 'img-always', attempt: runOf, comesUp: false },
  ];
  await putManifest(world.manifestDir, 'ok.yaml', podYaml({ name: 'ok', containers: sleeper('app') }));
  await putManifest(world.manifestDir, 'port.yaml', podYaml({ name: 'port', containers: `${sleeper('app')}      ports:\n        - { containerPort: 80, hostPort: ${port}, hostIP: 127.0.0.1 }\n` }));
  await putManifest(world.manifestDir, 'clash.yaml', podYaml({ name: 'clash', containers: sleeper('app') }));
  await putManifest(world.manifestDir, 'clashpod.yaml', podYaml({ name: 'clashpod', containers: sleeper('app') }));
  for (const policy of ['Never', 'IfNotPresent', 'Always']) {
    const image = sleeper('app').replace(`image: ${IMAGE}`, `image: ${missing}\n      imagePullPolicy: ${policy}`);
    await putManifest(world.manifestDir, `img-${policy.toLowerCase()}.yaml`, podYaml({ name: `img-${policy.toLowerCase()}`, containers: image }));
  }

  const agent = await world.startAgent(['--backoff-max', String(BACKOFF_MAX_S)]);
  const started = Date.now();
  const sampler = new WaitingSampler(world.stateDir);
  t.teardown(() => sampler.stop());
  const running = async (pod: string) => {
    const item = (await statusItems(world.stateDir)).find((one) => one.metadata.name === name(pod));
    const app = item && containerOf(item, 'app');
    return app?.state.running && item?.status.phase === 'Running' ? app : undefined;
  };

  // The healthy pod comes up beside the others' first attempts (three pod starts run at once, and
  // it may queue behind the first pulls: ~5 s here idle); none of their retries goes before it.
  const ok = await waitFor('ok running', () => running('ok'), { timeoutMs: 120_000, intervalMs: 250 });
  t.comment(`ok running ${((Date.now() - started) / 1000).toFixed(1)} s after the agent started`);

  // What each failing pod shows, in the kubelet's words.
  // With a message: ContainerCreating without one is the state before the first attempt.
  const waitingOf = async (pod: string, reason: string) => await waitFor(`${pod}: ${reason}`, async () => {
    const item = (await statusItems(world.stateDir)).find((one) => one.metadata.name === name(pod));
    const waiting = item && containerOf(item, 'app')?.state.waiting;
    return waiting?.reason === reason && waiting.message !== undefined ? { item, waiting } : undefined;
  }, { timeoutMs: 120_000, intervalMs: 250 });
  const port1 = await waitingOf('port', 'ContainerCreating');
  t.equal(port1.waiting.message, `Failed to create pod sandbox: cannot listen on the TCP port: listen tcp4 127.0.0.1:${port}: bind: address already in use`, 'hostPort in use: ContainerCreating, with podman\'s words for the sandbox it could not start');
  t.match(port1.item?.status.conditions.find((condition) => condition.type === 'PodReadyToStartContainers'), { status: 'False' }, 'hostPort in use: PodReadyToStartContainers False');
  const clash = await waitingOf('clash', 'CreateContainerError');
  t.match(clash.waiting.message, new RegExp(`^creating container storage: the container name "${foreignContainer}" is already in use by ${foreignContainerId}\\. You have to remove that container to be able to reuse that name`), 'container name clash: CreateContainerError naming the container that holds the name');
  const clashpod = await waitingOf('clashpod', 'ContainerCreating');
  t.equal(clashpod.waiting.message, `Failed to create pod sandbox: adding pod to state: name "${foreignPod}" is in use: pod already exists`, 'pod name clash: ContainerCreating, the sandbox cannot be made');
  const never = await waitingOf('img-never', 'ErrImageNeverPull');
  t.equal(never.waiting.message, `Container image "${missing}" is not present with pull policy of Never`, 'Never: ErrImageNeverPull');
  for (const pod of ['img-ifnotpresent', 'img-always']) {
    const backOff = await waitingOf(pod, 'ImagePullBackOff');
    t.equal(backOff.waiting.message, `Back-off pulling image "${missing}"`, `${pod}: ImagePullBackOff`);
  }
  for (const { pod } of cases) t.equal((await statusItems(world.stateDir)).find((one) => one.metadata.name === name(pod))?.status.phase, 'Pending', `${pod}: Pending`);

  // A pod added while the others fail comes up on time: nothing they do holds it up.
  await sleep(Math.max(0, started + WINDOW_MS / 2 - Date.now()));
  const lateAt = Date.now();
  await putManifest(world.manifestDir, 'late.yaml', podYaml({ name: 'late', containers: sleeper('app') }));
  const late = await waitFor('late running', () => running('late'), { timeoutMs: 60_000, intervalMs: 250 });
  t.comment(`late running ${((Date.now() - lateAt) / 1000).toFixed(1)} s after its manifest, while the others failed`);

  await sleep(Math.max(0, started + WINDOW_MS - Date.now()));
  const attemptsOf = (calls: Call[], { pod, attempt }: FailingCase) => calls.filter((call) => attempt(call.args, podmanName(pod))).map((call) => call.at);
  await waitFor(`${MIN_ATTEMPTS} attempts of each failing pod`, async () => {
    const calls = await readCalls(callLog);
    return cases.every((one) => attemptsOf(calls, one).length >= MIN_ATTEMPTS);
  }, { timeoutMs: 120_000, intervalMs: 500 });

  // Nothing that is not podvisor's was touched: the foreign container and pod are as made.
  const inspected = JSON.parse(await podman('container', 'inspect', foreignContainer)) as { Id: string; State: { Status: string }; Config: { Labels: Record<string, string> | null } }[];
  t.same(inspected.map((one) => ({ id: one.Id, status: one.State.Status, podvisor: Object.keys(one.Config.Labels ?? {}).filter((key) => key.startsWith('io.podvisor')) })), [{ id: foreignContainerId, status: 'created', podvisor: [] }], 'the foreign container: same one, never started, no labels added');
  t.equal((await podman('pod', 'inspect', '--format', '{{.ID}} {{.State}}', foreignPod)).trim(), `${foreignPodId} Created`, 'the foreign pod: same one, never started');
  const destructive = (await readCalls(callLog)).filter((call) => /^(rm|stop|kill|start|pod (rm|stop|kill|start)) /.test(call.args) && [foreignContainer, foreignContainerId, foreignPod, foreignPodId].some((word) => call.args.split(' ').includes(word)));
  t.same(destructive.map((call) => call.args), [], 'no podman call started, stopped or removed them');

  // Fix every cause at once.
  await closeServer(held);
  held = undefined;
  await podman('rm', foreignContainer);
  await podman('pod', 'rm', foreignPod);
  await podman('tag', IMAGE, missing);
  const fixedAt = Date.now();
  t.comment(`causes removed ${((fixedAt - started) / 1000).toFixed(1)} s after the agent started`);
  // Each comes up at its next attempt, which its back-off puts at most BACKOFF_MAX_S (and the
  // attempt's own time) after the fix; how long the start itself takes is the machine's business.
  const upWithin = (BACKOFF_MAX_S + SLACK_S) * 1000;
  const cameUp = await Promise.all(cases.filter((one) => one.comesUp).map(async (one) => {
    await waitFor(`${one.pod} running`, () => running(one.pod), { timeoutMs: upWithin + 60_000, intervalMs: 250 });
    return [one, Date.now() - fixedAt] as const;
  }));
  const afterFix = (await readCalls(callLog)).filter((call) => call.at >= fixedAt);
  for (const [one, ms] of cameUp) {
    const next = attemptsOf(afterFix, one);
    t.comment(`${one.pod} running ${(ms / 1000).toFixed(1)} s after its cause went; next attempt after ${(((next[0] ?? NaN) - fixedAt) / 1000).toFixed(1)} s`);
    // None, when an attempt begun just before the fix found the cause gone.
    t.ok(next.length <= 1, `${one.pod}: up at the first attempt after its cause went (${next.length} after it)`);
    t.ok((next[0] ?? fixedAt) - fixedAt <= upWithin, `${one.pod}: that attempt came within the back-off (at most ${BACKOFF_MAX_S} + ${SLACK_S} s)`);
  }
  // podman holds the port now.
  await t.rejects(holdPort(port), { code: 'EADDRINUSE' }, 'the port pod holds its host port');
  const always = (await statusItems(world.stateDir)).find((one) => one.metadata.name === name('img-always'));
  t.match(always && containerOf(always, 'app')?.state.waiting?.reason, /^(ImagePullBackOff|ErrImagePull)$/, 'Always: still failing to pull, as the kubelet would with no registry');
  await sampler.stop();

  // The kubelet's ErrImagePull while a pull is tried, ImagePullBackOff while it waits.
  for (const pod of ['img-ifnotpresent', 'img-always']) {
    const seen = sampler.reasons(name(pod));
    t.comment(`${pod} showed: ${seen.join(' | ')}`);
    t.ok(seen.some((one) => one.startsWith(`ErrImagePull: initializing source docker://${missing}: pinging container registry localhost`)), `${pod}: ErrImagePull with podman's reason while pulling`);
  }
  const file = await statusFile(world.stateDir);
  const events = (pod: string) => (file?.events ?? []).filter((event) => event.involvedObject.name === name(pod) && event.type === 'Warning');
  for (const { pod } of cases) {
    const warnings = events(pod);
    t.comment(`${pod} warnings: ${warnings.map((event) => `${event.reason} "${event.message}" x${event.count}`).join('; ')}`);
    t.ok(warnings.some((event) => event.count >= 3), `${pod}: repeated failures count up on one Warning event`);
  }
  for (const pod of ['img-ifnotpresent', 'img-always']) {
    t.ok(events(pod).some((event) => event.reason === 'Failed' && event.message === 'Error: ErrImagePull'), `${pod}: Failed: Error: ErrImagePull`);
    t.ok(events(pod).some((event) => event.reason === 'BackOff' && event.message === `Back-off pulling image "${missing}"`), `${pod}: BackOff: Back-off pulling image`);
  }

  // The back-off, from the podman calls of each failing pod while its cause lasted.
  const calls = await readCalls(callLog);
  const figures: string[] = [];
  for (const { pod, attempt } of cases) {
    const mine = calls.filter((call) => call.at < fixedAt && call.args.includes(podmanName(pod)));
    const attempts = attemptsOf(mine, { pod, attempt, comesUp: true });
    const gaps = attempts.slice(1).map((at, index) => (at - (attempts[index] ?? at)) / 1000);
    const first = attempts[0] ?? started;
    const inMinute = attempts.filter((at) => at < first + 60_000).length;
    figures.push(`${pod}: ${attempts.length} attempts (${mine.length} podman calls naming it) in ${((fixedAt - started) / 1000).toFixed(0)} s; gaps (s) ${gaps.map((gap) => gap.toFixed(1)).join(', ')}`);
    t.ok(attempts.length >= MIN_ATTEMPTS, `${pod}: retried (${attempts.length} attempts)`);
    const okCreated = calls.find((call) => call.args.startsWith(`pod create --name ${podmanName('ok')} `))?.at ?? Infinity;
    t.ok(okCreated < (attempts[1] ?? Infinity), `${pod}: its retries did not go before the healthy pod`);
    t.ok(inMinute <= 8, `${pod}: no tight loop: ${inMinute} attempts in the first 60 s (at most 8)`);
    const short = gaps.map((gap, index) => ({ gap, want: Math.min(2 ** index, BACKOFF_MAX_S) })).filter(({ gap, want }) => gap < want - 0.25);
    t.same(short, [], `${pod}: each wait at least the back-off (1, 2, 4, ... ${BACKOFF_MAX_S} s)`);
    t.ok(gaps.every((gap) => gap <= BACKOFF_MAX_S + SLACK_S), `${pod}: never given up on (every gap within ${BACKOFF_MAX_S} + ${SLACK_S} s)`);
  }
  t.comment(`back-off figures:\n${figures.join('\n')}`);

  // The healthy pods never noticed: the same containers, running, never restarted.
  for (const [pod, before] of [['ok', ok], ['late', late]] as const) {
    const now = await running(pod);
    t.same(now && { id: now.containerID, restarts: now.restartCount }, { id: before.containerID, restarts: 0 }, `${pod}: still the same container, running, no restarts`);
  }
  t.equal(agent.find({ event: 'PodStarted' }, `default/${name('ok')}`).length, 1, 'ok started once');
  t.comment(`wall time ${((Date.now() - started) / 1000).toFixed(0)} s from the agent's start`);
});
