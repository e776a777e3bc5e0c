// Supervision state survives an agent restart: restart counts, back-off and pod start times are
// written atomically to the state directory and read back.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import winston from 'winston';
import { backoffKey } from '../../src/pods/backoff.js';
import { SupervisionState } from '../../src/state/supervision-state.js';

const logger = winston.createLogger({ silent: true });
const OPTIONS = { initialMs: 10_000, maxMs: 300_000 };

t.test('restart counts and back-off are saved and loaded again', async (t) => {
  const dir = t.testdir({});
  const key = backoffKey('uid-1', 'app');
  const first = await SupervisionState.load(dir, OPTIONS, logger);
  first.recordRestart(key, 1000);
  first.recordRestart(key, 2000);
  first.setPodStartTime('uid-1', '2026-11-29T00:00:00.000Z');
  await first.flush();
  const saved = JSON.parse(await readFile(join(dir, 'supervision.json'), 'utf8')) as { restartCounts: Record<string, number> };
  t.strictSame(saved.restartCounts, { [key]: 2 });

  const second = await SupervisionState.load(dir, OPTIONS, logger);
  t.equal(second.restartCount(key), 2);
  t.equal(second.backoff.verdict(key, 3000, 3000).delayMs, 20_000, 'the back-off carries on where it was');
  t.equal(second.podStartTime('uid-1'), '2026-11-29T00:00:00.000Z');
});

t.test('retainPods forgets the pods that are gone', async (t) => {
  const dir = t.testdir({});
  const state = await SupervisionState.load(dir, OPTIONS, logger);
  state.recordRestart(backoffKey('gone', 'app'), 1);
  state.recordRestart(backoffKey('kept', 'app'), 1);
  state.retainPods(new Set(['kept']));
  t.equal(state.restartCount(backoffKey('gone', 'app')), 0);
  t.equal(state.restartCount(backoffKey('kept', 'app')), 1);
});

t.test('a corrupt state file starts empty with a warning, never fails the agent', async (t) => {
  const dir = t.testdir({});
  await writeFile(join(dir, 'supervision.json'), '{ not json');
  const warnings: string[] = [];
  const recording = winston.createLogger({ silent: true });
  recording.warn = ((message: string) => { warnings.push(message); return recording; }) as typeof recording.warn;
  const state = await SupervisionState.load(dir, OPTIONS, recording);
  t.equal(state.restartCount(backoffKey('uid', 'app')), 0);
  t.equal(warnings.length, 1);
  t.match(warnings[0], /supervision\.json is not valid JSON.*set aside as supervision\.json\.corrupt-/);
  t.match(await readdir(dir), [/^supervision\.json\.corrupt-/], 'the corrupt file is kept aside, not read again');
});
