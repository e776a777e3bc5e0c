// The readers `podvisor plan` (and the runtime, for a saved spec) take the agent's state with:
// they return what is usable and leave every file where it is, a corrupt one included (setting
// it aside is the agent's job at its start, and a plan must change nothing).
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { readSavedSpec } from '../../src/state/pod-specs.js';
import { readSupervisionFile } from '../../src/state/supervision-state.js';

const UID = '0a1b2c3d-0000-4000-8000-000000000001';

t.test('readSavedSpec: the spec of that uid, or undefined; nothing moved', async (t) => {
  const state = t.testdir({});
  const dir = join(state, 'pods', UID);
  await mkdir(dir, { recursive: true });
  t.equal(await readSavedSpec(state, UID), undefined, 'none saved');
  const spec = { uid: UID, hash: 'abc', key: 'default/web-n', pod: { spec: { containers: [{ name: 'app', image: 'x' }] } } };
  await writeFile(join(dir, 'pod.json'), JSON.stringify(spec));
  t.same(await readSavedSpec(state, UID), spec);
  t.equal(await readSavedSpec(state, '0a1b2c3d-0000-4000-8000-000000000002'), undefined, 'another uid: none');
  await writeFile(join(dir, 'pod.json'), JSON.stringify({ ...spec, uid: 'other' }));
  t.equal(await readSavedSpec(state, UID), undefined, 'a file naming another pod is not its spec');
  await writeFile(join(dir, 'pod.json'), '{"uid": "');
  t.equal(await readSavedSpec(state, UID), undefined, 'corrupt: undefined');
  t.same(await readdir(dir), ['pod.json'], 'the corrupt file left where it was');
});

t.test('readSupervisionFile: the saved back-off and start times, or undefined; nothing moved', async (t) => {
  const state = t.testdir({});
  t.equal(await readSupervisionFile(state), undefined, 'none saved');
  const saved = { version: 1, restartCounts: { [`${UID}/app`]: 2 }, backoff: [[`${UID}/app`, { delayMs: 20_000, lastUpdate: 1 }]], podStartTimes: { [UID]: '2026-12-04T04:00:00Z' } };
  await writeFile(join(state, 'supervision.json'), JSON.stringify(saved));
  t.same(await readSupervisionFile(state), saved);
  await writeFile(join(state, 'supervision.json'), '{"version": 1, "restartCounts": {');
  await writeFile(join(state, '.supervision.json.tmp-1'), 'partial');
  t.equal(await readSupervisionFile(state), undefined, 'corrupt: undefined');
  await writeFile(join(state, 'supervision.json'), JSON.stringify({ ...saved, version: 2 }));
  t.equal(await readSupervisionFile(state), undefined, 'not the shape it knows: undefined');
  t.same((await readdir(state)).sort(), ['.supervision.json.tmp-1', 'supervision.json'], 'no file set aside or removed');
});
