// State files: written atomically with nothing left behind, a corrupt one set aside with a
// warning naming it, and a writer that reports a failing disk once and says when it recovers.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import winston from 'winston';
import { corruptName, readStateFile, removeStaleTemporaries, StateFileWriter, writeJsonAtomic } from '../../src/state/state-file.js';

/** A silent logger that records what it was told, by level. */
function recordingLogger(): { logger: winston.Logger; lines: { level: string; message: string; meta: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; meta: Record<string, unknown> }[] = [];
  const logger = winston.createLogger({ silent: true });
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    logger[level] = ((message: string, meta: Record<string, unknown> = {}) => { lines.push({ level, message, meta }); return logger; }) as typeof logger.warn;
  }
  return { logger, lines };
}

t.test('writeJsonAtomic replaces the file whole and leaves no temporary file', async (t) => {
  const dir = t.testdir({ 'state.json': '{"old":true}\n' });
  const path = join(dir, 'state.json');
  await writeJsonAtomic(path, { version: 2 });
  t.equal(await readFile(path, 'utf8'), '{"version":2}\n');
  t.same(await readdir(dir), ['state.json']);
});

t.test('a failed write throws E_STATE and leaves no temporary file', async (t) => {
  const dir = t.testdir({ 'state.json': { } });
  // A directory where the file should be: the rename fails after the temporary file was written.
  const error = await writeJsonAtomic(join(dir, 'state.json'), { big: 'x'.repeat(1000) }).catch((caught: unknown) => caught);
  t.match(error, { code: 'E_STATE', message: /cannot write .*state\.json/ });
  t.ok((error as Error).cause, 'the cause is kept');
  t.same((await readdir(dir)).sort(), ['state.json']);
});

t.test('a corrupt state file is set aside with a warning naming it', async (t) => {
  for (const [name, content, accept] of [
    ['truncated', '{"version":1,"rest', () => true],
    ['empty', '', () => true],
    ['refused', '{"version":9}', () => 'not a podvisor state file'],
  ] as const) {
    const dir = t.testdir({ 'state.json': content });
    const path = join(dir, 'state.json');
    const { logger, lines } = recordingLogger();
    t.equal(await readStateFile(path, logger, accept), undefined, `${name}: read as nothing`);
    const files = await readdir(dir);
    t.equal(files.length, 1, `${name}: one file left`);
    t.match(files[0], /^state\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/, `${name}: set aside under its own name`);
    t.equal(await readFile(join(dir, files[0] ?? ''), 'utf8'), content, `${name}: kept as it was`);
    t.equal(lines.length, 1, `${name}: one line`);
    t.equal(lines[0]?.level, 'warn');
    t.match(lines[0]?.message, path, `${name}: the warning names the file`);
    t.match(lines[0]?.meta, { event: 'StateFileCorrupt', file: path });
  }
});

t.test('a good or missing state file is read as it is, nothing set aside', async (t) => {
  const dir = t.testdir({ 'state.json': '{"version":1}\n' });
  const { logger, lines } = recordingLogger();
  t.same(await readStateFile(join(dir, 'state.json'), logger, (raw) => raw), { version: 1 });
  t.equal(await readStateFile(join(dir, 'missing.json'), logger, (raw) => raw), undefined);
  t.same(await readdir(dir), ['state.json']);
  t.same(lines, []);
});

t.test('corruptName puts a file-name-safe UTC time after the name', async (t) => {
  t.equal(corruptName('/var/lib/podvisor/status.json', new Date('2026-12-03T21:04:05.678Z')), '/var/lib/podvisor/status.json.corrupt-2026-12-03T21-04-05-678Z');
});

t.test('the writer reports a failing write once and its recovery once', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'status.json');
  const { logger, lines } = recordingLogger();
  const writer = new StateFileWriter(path, logger);
  t.equal(await writer.write({ n: 1 }), true);
  t.same(lines, [], 'a good write says nothing');
  // The file's place taken by a directory: every write fails until it is gone.
  await rm(path);
  await mkdir(join(path, 'blocker'), { recursive: true });
  for (let n = 2; n <= 5; n += 1) t.equal(await writer.write({ n }), false);
  t.ok(writer.failing);
  t.same(lines.filter((line) => line.level !== 'debug').map((line) => [line.level, line.meta.event]), [['error', 'StateWriteFailed']], 'one error for four failed writes');
  t.match(lines[0]?.message, path);
  await rm(path, { recursive: true });
  t.equal(await writer.write({ n: 6 }), true);
  t.notOk(writer.failing);
  const recovered = lines.filter((line) => line.level === 'info');
  t.same(recovered.map((line) => [line.meta.event, line.meta.failedWrites]), [['StateWriteRecovered', 4]], 'the recovery is logged, once');
  t.equal(await readFile(path, 'utf8'), '{"n":6}\n');
  await writeFile(path, 'x');
  t.equal(await writer.write({ n: 7 }), true);
  t.equal(lines.filter((line) => line.level === 'info').length, 1, 'no recovery line without a failure before it');
});

t.test('removeStaleTemporaries removes what a killed writer left, not its own writes nor other files', async (t) => {
  const dir = t.testdir({
    '.status.json.12345-abc123.tmp': '{"half',
    '.1764800000000-4242-x9y8.tmp': '{',
    [`.status.json.${process.pid}-inflight.tmp`]: '{',
    'status.json': '{}\n',
    'notes.tmp': 'kept',
    '.hidden': 'kept',
  });
  t.equal(await removeStaleTemporaries(dir), 2);
  t.same((await readdir(dir)).sort(), [`.status.json.${process.pid}-inflight.tmp`, '.hidden', 'notes.tmp', 'status.json'].sort());
  t.equal(await removeStaleTemporaries(join(dir, 'missing')), 0, 'a missing directory is nothing to clean');
});
