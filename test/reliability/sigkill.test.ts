// Crash consistency under SIGKILL (issue 11): the built agent is killed at random moments while
// it creates, replaces, removes and restarts several pods at once, and started again each time.
// At the end the pods on this node are exactly what the files ask for, nothing made by hand was
// touched, hostPath and emptyDir data survived, and restart counts never went backwards.
//
// PODVISOR_RELIABILITY_SEED replays a run (the seed is printed); PODVISOR_SIGKILL_ROUNDS sets the
// number of kills (CI's share by default; `npm run test:reliability` runs 50).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { containersOf, IMAGE, podman, podsOf, podYaml, putManifest, setup, sleeper, statusItems, waitFor, type AgentProcess } from '../e2e/harness.js';
import { randomSeed, seededRandom } from './random.js';

const ROUNDS = Number(process.env.PODVISOR_SIGKILL_ROUNDS ?? 3);
const SEED = Number(process.env.PODVISOR_RELIABILITY_SEED ?? randomSeed());
const SLEEP = "trap 'exit 0' TERM; sleep 3600 & wait";
/** Pods the rounds create, edit and remove. */
const CHURN = ['churn-a', 'churn-b', 'churn-c'];
/** What the keeper pod writes to its hostPath once: 2,000 numbered lines. */
const HOST_DATA = Array.from({ length: 2000 }, (_, index) => String(index + 1)).join('\n') + '\n';

t.setTimeout(Math.max(300_000, ROUNDS * 40_000 + 300_000));

t.test(`SIGKILL at random moments, ${ROUNDS} rounds (seed ${SEED})`, async (t) => {
  t.comment(`seed ${SEED} (PODVISOR_RELIABILITY_SEED=${SEED} replays it), ${ROUNDS} rounds`);
  const random = seededRandom(SEED);
  const testStart = Date.now();
  const world = await setup(t, 'sigkill');
  const { node } = world;
  const hostDir = join(world.root, 'host');
  await mkdir(hostDir);

  // Made by hand, without podvisor's labels: a lone container and a pod with one container.
  const suffix = randomBytes(3).toString('hex');
  const lone = `e2e-sigkill-lone-${suffix}`;
  const handPod = `e2e-sigkill-pod-${suffix}`;
  t.teardown(async () => {
    await podman('rm', '--force', '--ignore', '--time', '0', lone).catch(() => undefined);
  });
  world.ownPodmanObjects.push(handPod);
  await podman('run', '--detach', '--name', lone, IMAGE, 'sh', '-c', SLEEP);
  await podman('pod', 'create', '--name', handPod);
  await podman('run', '--detach', '--pod', handPod, '--name', `${handPod}_main`, IMAGE, 'sh', '-c', SLEEP);
  const handMade = [lone, `${handPod}_main`];
  const handState = async () => await Promise.all(handMade.map(async (name) =>
    (await podman('inspect', '--type', 'container', '--format', '{{.Id}} {{.State.Status}} {{.State.StartedAt}}', name)).trim()));
  const handBefore = await handState();
  const handPodBefore = (await podman('pod', 'inspect', '--format', '{{.Id}} {{.State}}', handPod)).trim();

  // Never edited: keeper writes its hostPath file and an emptyDir marker once; crashy exits every
  // second or so and is restarted throughout.
  const token = randomBytes(8).toString('hex');
  const keeper = podYaml({
    name: 'keeper',
    extraSpec: [
      '  volumes:',
      `    - { name: host, hostPath: { path: ${hostDir}, type: Directory } }`,
      '    - { name: cache, emptyDir: {} }',
    ].join('\n'),
    containers: [
      '    - name: main',
      `      image: ${IMAGE}`,
      `      command: ["sh", "-c", "[ -f /host/data ] || { seq 1 2000 > /host/data.tmp && mv /host/data.tmp /host/data; }; [ -f /cache/marker ] || echo ${token} > /cache/marker; ${SLEEP}"]`,
      '      volumeMounts:',
      '        - { name: host, mountPath: /host }',
      '        - { name: cache, mountPath: /cache }',
      '',
    ].join('\n'),
  });
  const crashy = podYaml({
    name: 'crashy',
    containers: ['    - name: main', `      image: ${IMAGE}`, '      command: ["sh", "-c", "sleep 1; exit 3"]', ''].join('\n'),
  });
  await putManifest(world.manifestDir, 'keeper.yaml', keeper);
  await putManifest(world.manifestDir, 'crashy.yaml', crashy);

  /** Generation of each churn pod's spec (its GEN env), or undefined while it has no file. */
  const churn = new Map<string, number | undefined>(CHURN.map((name) => [name, undefined]));
  let generation = 0;
  const writeChurn = async (name: string) => {
    generation += 1;
    churn.set(name, generation);
    await putManifest(world.manifestDir, `${name}.yaml`, podYaml({ name, containers: sleeper('main', { GEN: String(generation) }) }));
  };
  const flags = ['--backoff-max', '2'];

  // Restart counts as the status file shows them, per pod/container of pods never replaced.
  const counts = new Map<string, number>();
  const backwards: string[] = [];
  const readCounts = async (when: string) => {
    const items = await statusItems(world.stateDir).catch(() => []);
    for (const item of items) {
      if (!item.metadata.name.startsWith('crashy-') && !item.metadata.name.startsWith('keeper-')) continue;
      for (const container of item.status.containerStatuses) {
        const key = `${item.metadata.name}/${container.name}`;
        const before = counts.get(key) ?? 0;
        if (container.restartCount < before) backwards.push(`${key}: ${before} -> ${container.restartCount} (${when})`);
        counts.set(key, Math.max(before, container.restartCount));
      }
    }
  };

  /** The temporary files of atomic writes in the state directory, except those of the agent `pid`. */
  const temporaries = async (pid?: number) => {
    const dirs = [world.stateDir, ...(await readdir(join(world.stateDir, 'pods')).catch(() => [])).map((uid) => join(world.stateDir, 'pods', uid))];
    const found = await Promise.all(dirs.map(async (dir) => (await readdir(dir).catch(() => [])).filter((name) => /^\..*\.tmp$/.test(name) && (pid === undefined || !name.includes(`.${pid}-`)))));
    return found.flat();
  };
  let leftBehind = 0;

  // The keeper must have written its data before the kills begin, so it is there to check.
  let agent: AgentProcess = await world.startAgent(flags, { timeoutMs: 120_000 });
  await waitFor('the keeper to write its hostPath file', async () => (await readFile(join(hostDir, 'data'), 'utf8').catch(() => '')) === HOST_DATA, { timeoutMs: 90_000 });
  const keeperPod = await waitFor('the keeper pod', async () => (await podsOf(node)).find((pod) => pod.Labels?.['io.podvisor.name'] === `keeper-${node}`), { timeoutMs: 30_000 });
  const keeperUid = keeperPod.Labels?.['io.podvisor.uid'] ?? '';
  const marker = join(world.stateDir, 'pods', keeperUid, 'volumes', 'cache', 'marker');
  await waitFor('the emptyDir marker', async () => (await readFile(marker, 'utf8').catch(() => '')).trim() === token, { timeoutMs: 30_000 });

  const began = Date.now();
  t.comment(`set-up done in ${began - testStart} ms`);
  let kills = 0;
  const operations = { create: 0, edit: 0, remove: 0 };
  for (let round = 1; round <= ROUNDS; round += 1) {
    // Several pods at once: each churn pod is created, edited or removed, or left alone.
    for (const name of CHURN) {
      const roll = random();
      if (churn.get(name) === undefined) {
        if (roll < 0.7) { await writeChurn(name); operations.create += 1; }
      } else if (roll < 0.45) {
        await writeChurn(name); operations.edit += 1;
      } else if (roll < 0.7) {
        await rm(join(world.manifestDir, `${name}.yaml`));
        churn.set(name, undefined);
        operations.remove += 1;
      }
    }
    // Kill at a random moment of the work that follows: at once, mid-create, mid-stop, ...
    await new Promise((resolveDelay) => setTimeout(resolveDelay, Math.floor(random() * 4000)));
    await readCounts(`round ${round}, before the kill`);
    const killed = await agent.stop('SIGKILL');
    if (killed.signal === 'SIGKILL') kills += 1;
    else t.fail(`round ${round}: the agent had exited by itself (${String(killed.code)})`);
    leftBehind += (await temporaries()).length;
    agent = await world.startAgent(flags, { timeoutMs: 120_000 });
    await readCounts(`round ${round}, after the restart`);
  }
  t.comment(`rounds ${ROUNDS}, kills ${kills}, operations ${JSON.stringify(operations)}, in ${Date.now() - began} ms`);
  t.equal(kills, ROUNDS, 'every round killed a running agent');

  // The last agent runs undisturbed until the pods are what the files ask for.
  const desired = new Map<string, number | undefined>([[`keeper-${node}`, undefined], [`crashy-${node}`, undefined]]);
  for (const [name, gen] of churn) if (gen !== undefined) desired.set(`${name}-${node}`, gen);
  const hashes = async () => new Map((await statusItems(world.stateDir)).map((item) => [item.metadata.name, (item.metadata as { annotations?: Record<string, string> }).annotations?.['kubernetes.io/config.hash']]));
  const settled = await waitFor('the pods to match the files', async () => {
    const pods = await podsOf(node);
    const wanted = await hashes();
    const names = pods.map((pod) => pod.Labels?.['io.podvisor.name'] ?? '').sort();
    if (JSON.stringify(names) !== JSON.stringify([...desired.keys()].sort())) return undefined;
    for (const pod of pods) {
      const name = pod.Labels?.['io.podvisor.name'] ?? '';
      if (wanted.get(name) === undefined || pod.Labels?.['io.podvisor.hash'] !== wanted.get(name)) return undefined;
      if (name.startsWith('crashy-')) continue;
      if ((pod.Containers ?? []).some((container) => container.Status !== 'running')) return undefined;
    }
    return pods;
  }, { timeoutMs: 180_000, intervalMs: 1000 });
  t.comment(`settled ${Date.now() - began} ms after the first kill round began`);
  await agent.waitForRelists(3, { timeoutMs: 60_000 });

  // Exactly once, with the current spec: one pod per file, its hash the file's, its containers
  // each once and carrying the generation the file has now.
  const pods = await podsOf(node);
  t.same(pods.map((pod) => pod.Labels?.['io.podvisor.name']).sort(), [...desired.keys()].sort(), 'every desired pod exists, once, and no other');
  t.same(pods.map((pod) => pod.Id).sort(), settled.map((pod) => pod.Id).sort(), 'and stays (nothing replaced after settling)');
  const wanted = await hashes();
  for (const pod of pods) {
    const name = pod.Labels?.['io.podvisor.name'] ?? '';
    t.equal(pod.Labels?.['io.podvisor.hash'], wanted.get(name), `${name}: hash label is the current spec's`);
  }
  const containers = await containersOf(node);
  const podIds = new Set(pods.map((pod) => pod.Id));
  t.same(containers.filter((container) => !podIds.has(container.Pod)).map((container) => container.Names[0]), [], 'no podvisor container outside a desired pod');
  const names = containers.map((container) => container.Names[0] ?? '');
  t.same(names, [...new Set(names)], 'no container twice');
  t.same(names.sort(), [...desired.keys()].map((pod) => `default_${pod}_main`).sort(), 'each pod has its one container');
  for (const [pod, gen] of desired) {
    if (gen === undefined) continue;
    const env = await podman('inspect', '--type', 'container', '--format', '{{range .Config.Env}}{{println .}}{{end}}', `default_${pod}_main`);
    t.ok(env.split('\n').includes(`GEN=${gen}`), `${pod} runs generation ${gen} of its spec`);
  }
  // Nothing podvisor-labelled for this node outside the pods, e.g. a container left from a killed create.
  const labelled = JSON.parse(await podman('ps', '--all', '--filter', `label=io.podvisor.node=${node}`, '--format', 'json') || '[]') as { Pod: string; Names: string[] }[];
  t.same(labelled.filter((container) => !podIds.has(container.Pod)).map((container) => container.Names[0]), [], 'no labelled container (infra included) outside the desired pods');

  t.same(await handState(), handBefore, 'the hand-made containers were never touched (same id, state, start)');
  t.equal((await podman('pod', 'inspect', '--format', '{{.Id}} {{.State}}', handPod)).trim(), handPodBefore, 'the hand-made pod was never touched');
  t.equal(await readFile(join(hostDir, 'data'), 'utf8'), HOST_DATA, 'the hostPath file is intact');
  t.equal(pods.find((pod) => pod.Labels?.['io.podvisor.name'] === `keeper-${node}`)?.Id, keeperPod.Id, 'the keeper pod was never replaced');
  t.equal((await readFile(marker, 'utf8')).trim(), token, "the keeper's emptyDir data is still there");

  t.same(await temporaries(agent.child.pid), [], `no temporary file left behind (${leftBehind} left by kills mid-write, removed at the next start)`);
  await readCounts('at the end');
  t.same(backwards, [], 'restart counts never went backwards');
  const crashyCount = counts.get(`crashy-${node}/main`) ?? 0;
  t.ok(crashyCount > 0, `crashy was restarted (${crashyCount} restarts counted)`);
  t.comment(`checked: ${desired.size} desired pods exactly once with their current hash and generation, ${handMade.length} hand-made containers and 1 pod untouched, hostPath file (${HOST_DATA.length} bytes) intact, emptyDir marker kept, restart counts read ${2 * ROUNDS + 1} times (crashy reached ${crashyCount}), ${leftBehind} temporary files left by kills and cleaned`);
});
