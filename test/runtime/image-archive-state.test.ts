// The image-archive loader's memory on disk: a round trip, a truncated or wrong-shaped file set
// aside and rebuilt (never fatal), an earlier run's failure retried once, and no write when
// nothing changed (a rescan every 20 s must not wear the flash).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import winston from 'winston';
import { ARCHIVE_STATE_FILE, ArchiveMemory } from '../../src/runtime/image-archive-state.js';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const FACTS = { size: 10, mtimeMs: 1, ctimeMs: 2, ino: 3 };

/** A silent logger that records its lines with their fields. */
function recordingLogger() {
  const lines: { level: string; message: string; meta: Record<string, unknown> }[] = [];
  const logger = winston.createLogger({ silent: true });
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    logger[level] = ((message: string, meta: Record<string, unknown> = {}) => {
      lines.push({ level, message, meta });
      return logger;
    }) as typeof logger.warn;
  }
  return { logger, lines };
}

t.test('what is remembered survives a restart', async (t) => {
  const dir = t.testdir();
  const { logger } = recordingLogger();
  const memory = await ArchiveMemory.load(dir, logger);
  memory.rememberFile('app.tar', FACTS, DIGEST_A);
  memory.remember({ digest: DIGEST_A, result: 'loaded', file: 'app.tar', images: ['localhost/app:1'], at: '2026-12-04T04:00:00.000Z' });
  memory.remember({ digest: DIGEST_B, result: 'failed', file: 'bad.tar', images: [], at: '2026-12-04T04:01:00.000Z', error: 'payload does not match' });
  const DIGEST_C = `sha256:${'c'.repeat(64)}`;
  memory.remember({ digest: DIGEST_C, result: 'failed', file: 'slow.tar', images: [], at: '2026-12-04T04:02:00.000Z', error: 'timed out', retryNextRun: true });
  t.equal(await memory.save(), true);

  const again = await ArchiveMemory.load(dir, logger);
  t.equal(again.knownDigest('app.tar', FACTS), DIGEST_A, 'a file with the same facts: its digest, without reading it');
  t.equal(again.knownDigest('app.tar', { ...FACTS, ctimeMs: 9 }), undefined, 'a file written since (its change time moved): unknown');
  t.equal(again.knownDigest('other.tar', FACTS), undefined);
  t.match(again.archive(DIGEST_A), { result: 'loaded', images: ['localhost/app:1'] });
  t.match(again.archive(DIGEST_B), { result: 'failed', error: 'payload does not match' }, 'a failure in podman\'s words is remembered');
  t.equal(again.archive(DIGEST_B)?.retryNow, undefined, 'and not tried again by the next run');
  t.match(again.archive(DIGEST_C), { result: 'failed', retryNow: true }, 'a load that timed out is tried again by the next run');
  await again.save();
  again.remember({ ...again.archive(DIGEST_C)!, at: '2026-12-04T04:03:00.000Z' });
  await again.save();
  const onDisk = JSON.parse(await readFile(join(dir, ARCHIVE_STATE_FILE), 'utf8')) as { archives: object[] };
  t.notOk(JSON.stringify(onDisk).includes('retryNow'), 'the mark of this run is not written');
});

t.test('a truncated, empty or wrong-shaped state file is set aside and the memory starts empty', async (t) => {
  for (const [name, content] of [
    ['truncated', `{"version":1,"archives":[{"digest":"${DIGEST_A}","result":"loa`],
    ['empty', ''],
    ['wrong version', '{"version":2,"archives":[],"files":[]}'],
    ['bad entry', `{"version":1,"archives":[{"digest":"md5:1","result":"loaded","file":"a.tar","images":[]}],"files":[]}`],
    ['not an object', 'null'],
  ] as const) {
    const dir = t.testdir({ [ARCHIVE_STATE_FILE]: content });
    const { logger, lines } = recordingLogger();
    const memory = await ArchiveMemory.load(dir, logger);
    t.equal(memory.archive(DIGEST_A), undefined, `${name}: nothing remembered`);
    t.equal(memory.archives().length, 0, `${name}: empty`);
    t.match(lines, [{ level: 'warn', meta: { event: 'StateFileCorrupt' } }], `${name}: one warning`);
    const files = await readdir(dir);
    t.ok(files.some((file) => file.startsWith(`${ARCHIVE_STATE_FILE}.corrupt-`)), `${name}: set aside`);
    // And the memory works on from there.
    memory.remember({ digest: DIGEST_A, result: 'loaded', file: 'a.tar', images: [], at: '2026-12-04T04:00:00.000Z' });
    t.equal(await memory.save(), true, `${name}: written anew`);
    t.match((await ArchiveMemory.load(dir, logger)).archive(DIGEST_A), { result: 'loaded' }, `${name}: read back`);
  }
});

t.test('an unreadable state file (a directory in its place) is not fatal either', async (t) => {
  const dir = t.testdir({ [ARCHIVE_STATE_FILE]: {} });
  const { logger, lines } = recordingLogger();
  const memory = await ArchiveMemory.load(dir, logger);
  t.equal(memory.archives().length, 0);
  t.match(lines, [{ level: 'warn', meta: { event: 'StateFileCorrupt' } }]);
  memory.remember({ digest: DIGEST_A, result: 'loaded', file: 'a.tar', images: [], at: '2026-12-04T04:00:00.000Z' });
  t.equal(await memory.save(), false, 'the write fails, reported, not thrown');
  t.match(lines.at(-1), { level: 'error', meta: { event: 'StateWriteFailed' } });
});

t.test('nothing is written when nothing changed; files that went are forgotten', async (t) => {
  const dir = t.testdir();
  const { logger } = recordingLogger();
  const memory = await ArchiveMemory.load(dir, logger);
  const path = join(dir, ARCHIVE_STATE_FILE);
  memory.rememberFile('app.tar', FACTS, DIGEST_A);
  await memory.save();
  const first = await stat(path);
  await new Promise((resolve) => setTimeout(resolve, 20));
  memory.rememberFile('app.tar', FACTS, DIGEST_A);
  await memory.save();
  t.equal((await stat(path)).mtimeMs, first.mtimeMs, 'the same facts again: not written');
  memory.forgetFile('app.tar');
  await memory.save();
  t.same((JSON.parse(await readFile(path, 'utf8')) as { files: unknown[] }).files, [], 'a file gone: forgotten');
});

t.test('contents no longer in the directory are kept only up to a bound, the newest', async (t) => {
  const dir = t.testdir();
  const { logger } = recordingLogger();
  const memory = await ArchiveMemory.load(dir, logger);
  memory.rememberFile('kept.tar', FACTS, DIGEST_A);
  memory.remember({ digest: DIGEST_A, result: 'loaded', file: 'kept.tar', images: [], at: '2000-01-01T00:00:00.000Z' });
  for (let i = 0; i < 80; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    memory.remember({ digest, result: 'loaded', file: `old-${i}.tar`, images: [], at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() });
  }
  await memory.save();
  const written = JSON.parse(await readFile(join(dir, ARCHIVE_STATE_FILE), 'utf8')) as { archives: { file: string }[] };
  t.equal(written.archives.length, 51, 'the one in the directory and the 50 newest others');
  t.ok(written.archives.some((one) => one.file === 'kept.tar'), 'the oldest is kept: its file is still there');
  t.ok(written.archives.some((one) => one.file === 'old-79.tar') && !written.archives.some((one) => one.file === 'old-29.tar'), 'the newest gone ones are kept, the older dropped');
});

t.test('a missing state directory is made on the first write', async (t) => {
  const dir = join(t.testdir(), 'not', 'yet');
  const { logger } = recordingLogger();
  const memory = await ArchiveMemory.load(dir, logger);
  memory.remember({ digest: DIGEST_A, result: 'loaded', file: 'a.tar', images: [], at: '2026-12-04T04:00:00.000Z' });
  t.equal(await memory.save(), true);
  t.ok((await stat(join(dir, ARCHIVE_STATE_FILE))).isFile());
});
