// Power loss (issue 11): every state file the agent wrote (status.json, supervision.json, each
// pod's pod.json) is cut at a random offset, as a disk that lost its last writes could leave it,
// and the agent is started on them. It starts, names each corrupt file in a warning, sets it
// aside, rebuilds from podman, and the pods keep running: the same containers, none restarted.
//
// PODVISOR_RELIABILITY_SEED replays a run; PODVISOR_TRUNCATE_ROUNDS sets the rounds (3).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import t from 'tap';
import { ACTION_EVENTS, containerIds, podsOf, podYaml, putManifest, setup, sleeper, statusItems, waitFor } from '../e2e/harness.js';
import { randomSeed, seededRandom } from './random.js';

const ROUNDS = Number(process.env.PODVISOR_TRUNCATE_ROUNDS ?? 3);
const SEED = Number(process.env.PODVISOR_RELIABILITY_SEED ?? randomSeed());

t.setTimeout(Math.max(300_000, ROUNDS * 60_000 + 120_000));

/** The state files under `stateDir` (not the emptyDir volumes, not files already set aside). */
async function stateFiles(stateDir: string): Promise<string[]> {
  const files = ['status.json', 'supervision.json'].map((name) => join(stateDir, name));
  for (const uid of await readdir(join(stateDir, 'pods')).catch(() => [])) files.push(join(stateDir, 'pods', uid, 'pod.json'));
  return files;
}

t.test(`truncated state files, ${ROUNDS} rounds (seed ${SEED})`, async (t) => {
  t.comment(`seed ${SEED} (PODVISOR_RELIABILITY_SEED=${SEED} replays it), ${ROUNDS} rounds`);
  const random = seededRandom(SEED);
  const world = await setup(t, 'truncate');
  const { node, stateDir } = world;
  await putManifest(world.manifestDir, 'one.yaml', podYaml({ name: 'one', containers: sleeper('main') + sleeper('side') }));
  await putManifest(world.manifestDir, 'two.yaml', podYaml({ name: 'two', containers: sleeper('main') }));

  const first = await world.startAgent();
  for (const name of ['one', 'two']) await first.waitForLog({ event: 'PodStarted' }, { pod: `default/${name}-${node}`, timeoutMs: 60_000 });
  // Every state file written at least once: two pod specs, the supervision state, the status.
  const originals = await waitFor('every state file', async () => {
    const files = await stateFiles(stateDir);
    if (files.length !== 4) return undefined;
    const contents = await Promise.all(files.map((file) => readFile(file, 'utf8').catch(() => undefined)));
    if (contents.some((content) => content === undefined || content.length < 3)) return undefined;
    return new Map(files.map((file, index) => [file, contents[index] ?? '']));
  }, { timeoutMs: 30_000 });
  await first.stop('SIGKILL');
  const podIds = (await podsOf(node)).map((pod) => pod.Id).sort();
  const containers = await containerIds(node);
  t.equal(Object.keys(containers).length, 3, 'three containers run');

  let truncations = 0;
  for (let round = 1; round <= ROUNDS; round += 1) {
    // Each file cut somewhere before its end (its last byte is the newline, so at most size - 2).
    const cuts = new Map<string, number>();
    for (const [file, content] of originals) {
      const offset = Math.floor(random() * (content.length - 1));
      cuts.set(file, offset);
      await writeFile(file, content.slice(0, offset));
      truncations += 1;
    }
    t.comment(`round ${round}: ${[...cuts].map(([file, offset]) => `${relative(stateDir, file)}@${offset}/${originals.get(file)?.length ?? 0}`).join(', ')}`);
    const agent = await world.startAgent([], { timeoutMs: 120_000 });
    for (const file of originals.keys()) {
      const warning = await agent.waitForLog({ event: 'StateFileCorrupt', file }, { timeoutMs: 10_000 });
      t.equal(warning.level, 'warn', `round ${round}: ${relative(stateDir, file)} named in a warning`);
      const setAside = String(warning.setAside);
      t.match(await readFile(setAside, 'utf8'), originals.get(file)?.slice(0, cuts.get(file)), `round ${round}: set aside whole as ${relative(stateDir, setAside)}`);
    }
    await agent.waitForRelists(3);
    // The status is rebuilt from podman and written again.
    const items = await waitFor('the status rebuilt', async () => {
      const pods = await statusItems(stateDir).catch(() => []);
      return pods.length === 2 && pods.every((pod) => pod.status.phase === 'Running') ? pods : undefined;
    }, { timeoutMs: 30_000 });
    t.same(items.map((pod) => pod.metadata.name).sort(), [`one-${node}`, `two-${node}`], `round ${round}: the status is rebuilt`);
    t.same((await podsOf(node)).map((pod) => pod.Id).sort(), podIds, `round ${round}: the same pods`);
    t.same(await containerIds(node), containers, `round ${round}: the same containers`);
    t.same(agent.find({ event: ACTION_EVENTS }).map((line) => `${line.message} ${String(line.pod)}`), [], `round ${round}: nothing done to the pods`);
    t.equal(agent.find({ event: 'StateWriteFailed' }).length, 0, `round ${round}: no write failed`);
    const killed = await agent.stop('SIGKILL');
    t.equal(killed.signal, 'SIGKILL');
  }
  t.comment(`rounds ${ROUNDS}, truncations ${truncations} (${originals.size} files a round), every one set aside and rebuilt`);
});
