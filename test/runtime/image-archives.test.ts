// The image-archive loader against a real temporary directory and a stand-in for podman
// (fixtures/fake-podman-load.sh, which records each call and what it read): once each by
// content, remembered across a restart, a replaced file loaded again, a corrupt one reported once
// and not retried until it changes, a file being written never loaded before it is complete,
// gzip decompressed streaming into podman, progress for slow work, and settled() with its bound.
// Real podman is the e2e test's (test/e2e/image-archives.test.ts).
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import winston from 'winston';
import { ARCHIVE_STATE_FILE } from '../../src/runtime/image-archive-state.js';
import { ImageArchives, type ImageArchivesOptions } from '../../src/runtime/image-archives.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';

const FAKE_PODMAN = fileURLToPath(new URL('./fixtures/fake-podman-load.sh', import.meta.url));

interface Line {
  level: string;
  message: string;
  event?: string;
  [field: string]: unknown;
}

/** A silent logger that records its lines with their fields. */
function recordingLogger() {
  const lines: Line[] = [];
  const logger = winston.createLogger({ silent: true });
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    logger[level] = ((message: string, meta: Record<string, unknown> = {}) => {
      lines.push({ level, message, ...meta });
      return logger;
    }) as typeof logger.warn;
  }
  return { logger, lines, events: (event: string) => lines.filter((line) => line.event === event) };
}

/** Polls `check` every 10 ms until true, or fails after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface World {
  root: string;
  dir: string;
  stateDir: string;
  /** The fake podman's calls: `args sha256-of-what-it-read`. */
  calls(): Promise<string[]>;
  /** Starts a loader (a new agent run) on the world's directories. */
  start(options?: Partial<ImageArchivesOptions> & { sleepSeconds?: number }): Promise<{ archives: ImageArchives; log: ReturnType<typeof recordingLogger> }>;
}

function world(t: Test): World {
  const running: ImageArchives[] = [];
  // Registered before t.testdir(), so the loaders stop before their directory is removed.
  t.teardown(async () => {
    for (const one of running) await one.stop();
  });
  const root = t.testdir({ images: {}, state: {} });
  const dir = join(root, 'images');
  const stateDir = join(root, 'state');
  const callLog = join(root, 'calls');
  return {
    root,
    dir,
    stateDir,
    calls: async () => (await readFile(callLog, 'utf8').catch(() => '')).split('\n').filter(Boolean),
    async start(options = {}) {
      // The stand-in reads its settings from the environment it inherits.
      process.env.FAKE_PODMAN_LOG = callLog;
      process.env.FAKE_PODMAN_SLEEP = String(options.sleepSeconds ?? 0);
      const log = recordingLogger();
      const archives = new ImageArchives({ dir, stateDir, cli: new PodmanCli({ bin: FAKE_PODMAN }), logger: log.logger, rescanIntervalMs: 100, settleMs: 150, ...options });
      running.push(archives);
      await archives.start();
      return { archives, log };
    },
  };
}

/** Writes a file the atomic way: a dotfile, then a rename into place. */
async function putArchive(dir: string, name: string, content: string | Buffer): Promise<void> {
  await writeFile(join(dir, `.${name}.tmp`), content);
  await rename(join(dir, `.${name}.tmp`), join(dir, name));
}

const sha256 = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');

t.test('an archive is loaded once; a restart loads nothing again; new content is loaded again', async (t) => {
  const w = world(t);
  await putArchive(w.dir, 'app.tar', 'IMAGE localhost/app:1\n');
  const first = await w.start();
  t.equal(await first.archives.settled({ boundMs: 10_000 }), true, 'settled once loaded');
  t.same(await w.calls(), [`load --input ${join(w.dir, 'app.tar')} ${sha256('IMAGE localhost/app:1\n')}`], 'one podman load of the file');
  const loaded = first.log.events('ImageArchiveLoaded');
  t.match(loaded, [{ level: 'info', file: 'app.tar', digest: `sha256:${sha256('IMAGE localhost/app:1\n')}`, images: ['localhost/app:1'] }]);
  t.type(loaded[0]?.ms, 'number');
  // Rescans (every 100 ms here) find nothing new.
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal((await w.calls()).length, 1, 'rescans load nothing again');
  await first.archives.stop();

  const second = await w.start();
  t.equal(await second.archives.settled({ boundMs: 10_000 }), true);
  t.equal((await w.calls()).length, 1, 'a restart loads nothing again');
  t.match(second.log.events('ImageArchiveKnown'), [{ file: 'app.tar' }], 'and says why at debug level');
  t.equal(second.log.events('ImageArchiveLoaded').length, 0);

  // The same content under another name is the same archive.
  await putArchive(w.dir, 'copy.tar', 'IMAGE localhost/app:1\n');
  await until('the copy to be looked at', () => second.log.events('ImageArchiveKnown').some((line) => line.file === 'copy.tar'));
  t.equal((await w.calls()).length, 1, 'a copy of a loaded archive is not loaded');

  await putArchive(w.dir, 'app.tar', 'IMAGE localhost/app:2\n');
  await until('the new content to be loaded', () => second.log.events('ImageArchiveLoaded').length === 1);
  t.match(second.log.events('ImageArchiveLoaded'), [{ file: 'app.tar', images: ['localhost/app:2'] }], 'a file replaced with new content is loaded again');
  t.equal((await w.calls()).length, 2);
});

t.test('a corrupt archive: one clear failure, not retried in a loop nor by the next run; retried when the file changes', async (t) => {
  const w = world(t);
  await putArchive(w.dir, 'bad.tar', 'this is no image archive\n');
  await putArchive(w.dir, 'good.tar', 'IMAGE localhost/good:1\n');
  const first = await w.start();
  t.equal(await first.archives.settled({ boundMs: 10_000 }), true);
  const failed = first.log.events('ImageArchiveFailed');
  t.equal(failed.length, 1, 'one failure line');
  t.match(failed[0], { level: 'warn', file: 'bad.tar', error: /payload does not match any of the supported image formats/ }, 'naming the file, in podman\'s words');
  t.match(failed[0]?.message, /^cannot load image archive bad\.tar: .*payload does not match/);
  t.match(first.log.events('ImageArchiveLoaded'), [{ file: 'good.tar' }], 'the other archive is loaded all the same');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal((await w.calls()).filter((call) => call.includes('bad.tar')).length, 1, 'five rescans later: still tried once');
  t.equal(first.log.events('ImageArchiveFailed').length, 1, 'and reported once');

  await putArchive(w.dir, 'bad.tar', 'IMAGE localhost/fixed:1\n');
  await until('the fixed file to be loaded', () => first.log.events('ImageArchiveLoaded').some((line) => line.file === 'bad.tar'));
  t.pass('a changed file is tried again');
  await first.archives.stop();

  // Broken again, then a new run: the failure is remembered, not tried again.
  await putArchive(w.dir, 'bad.tar', 'broken again\n');
  const second = await w.start();
  await second.archives.settled({ boundMs: 10_000 });
  t.equal(second.log.events('ImageArchiveFailed').length, 1, 'the new content fails');
  await second.archives.stop();
  const third = await w.start();
  await third.archives.settled({ boundMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const tries = (await w.calls()).filter((call) => call.endsWith(sha256('broken again\n')));
  t.equal(tries.length, 1, 'a restart does not try it again');
  t.equal(third.log.events('ImageArchiveFailed').length, 0, 'nor report it again');
});

t.test('a load that times out is reported, and tried again by the next run only', async (t) => {
  const w = world(t);
  await putArchive(w.dir, 'hung.tar', 'IMAGE localhost/hung:1\n');
  const first = await w.start({ sleepSeconds: 30, loadTimeoutMs: 300 });
  await first.archives.settled({ boundMs: 10_000 });
  t.match(first.log.events('ImageArchiveFailed'), [{ file: 'hung.tar', error: /timed out/ }], 'the hung load is killed at its timeout and reported');
  t.match(first.log.events('ImageArchiveFailed')[0]?.message, /until the agent restarts or the file changes/);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal((await w.calls()).length, 1, 'not retried in this run');
  await first.archives.stop();
  const second = await w.start({ sleepSeconds: 0 });
  await second.archives.settled({ boundMs: 10_000 });
  t.match(second.log.events('ImageArchiveLoaded'), [{ file: 'hung.tar' }], 'the next run tries it again');
});

t.test('a file written slowly is not loaded before it is complete', async (t) => {
  const w = world(t);
  const { archives, log } = await w.start({ settleMs: 400 });
  const path = join(w.dir, 'slow.tar');
  const content = `IMAGE localhost/slow:1\n${'x'.repeat(64 * 1024)}\n`;
  // Written in place in 40 pieces, 50 ms apart: 2 s, with pauses shorter than the settle period.
  const pieces = 40;
  const size = Math.ceil(content.length / pieces);
  for (let i = 0; i < pieces; i++) {
    await appendFile(path, content.slice(i * size, (i + 1) * size));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Once the watcher has told of it: pods would wait.
    if (i >= 4) t.equal(archives.busy, true, `busy while being written (piece ${i + 1})`);
  }
  const completeAt = Date.now();
  t.same(await w.calls(), [], 'no load while it was being written');
  t.ok(log.events('ImageArchiveSettling').length >= 1, 'the wait is logged (debug)');
  t.equal(await archives.settled({ boundMs: 10_000 }), true);
  const calls = await w.calls();
  t.same(calls, [`load --input ${path} ${sha256(content)}`], 'one load, of the whole file');
  t.ok(Date.now() - completeAt >= 400, 'after it had been unchanged for the settle period');
});

t.test('a .tar.gz is decompressed streaming into podman load; a .tar.zst is handed to podman as it is', async (t) => {
  const w = world(t);
  const content = `IMAGE localhost/gz:1\n${'y'.repeat(300_000)}\n`;
  await putArchive(w.dir, 'app.tar.gz', gzipSync(content));
  // The stand-in reads the bytes as they are: podman's own zstd reading is the e2e test's.
  await putArchive(w.dir, 'app.tar.zst', 'IMAGE localhost/zst:1\n');
  // Random bytes (gzip cannot shrink them), cut short before the gzip trailer.
  const whole = gzipSync(Buffer.concat([Buffer.from('IMAGE localhost/cut:1\n'), randomBytes(200_000)]));
  await putArchive(w.dir, 'broken.tar.gz', whole.subarray(0, whole.length - 5000));
  const { archives, log } = await w.start();
  await archives.settled({ boundMs: 10_000 });
  const calls = await w.calls();
  t.ok(calls.includes(`load ${sha256(content)}`), 'podman read the decompressed bytes on its standard input');
  t.ok(calls.includes(`load --input ${join(w.dir, 'app.tar.zst')} ${sha256('IMAGE localhost/zst:1\n')}`), 'the zstd file is given to podman by its path');
  t.same(log.events('ImageArchiveLoaded').map((line) => line.file).sort(), ['app.tar.gz', 'app.tar.zst']);
  t.equal(log.events('ImageArchiveLoaded').find((line) => line.file === 'app.tar.gz')?.digest, `sha256:${sha256(await readFile(join(w.dir, 'app.tar.gz')))}`, 'remembered by the digest of the file as it is (compressed)');
  t.match(log.events('ImageArchiveFailed'), [{ file: 'broken.tar.gz', error: /^gzip: unexpected end of file/ }], 'a cut-short gzip: zlib\'s words');
});

t.test('progress is logged while a load takes long; settled() waits for it, within its bound', async (t) => {
  const w = world(t);
  await putArchive(w.dir, 'big.tar', 'IMAGE localhost/big:1\n');
  const { archives, log } = await w.start({ sleepSeconds: 1.5, progressIntervalMs: 200 });
  t.equal(archives.busy, true, 'busy while the first load runs');
  const started = Date.now();
  t.equal(await archives.settled({ boundMs: 100 }), false, 'the bound reached: false');
  t.ok(Date.now() - started < 1000, 'returned at its bound, not at the load\'s end');
  t.equal(await archives.settled({ boundMs: 50 }), false, 'a bound counted from when the loading began: passed already, no wait');
  t.equal(await archives.settled({ boundMs: 10_000 }), true, 'a longer bound: true once loaded');
  t.ok(log.events('ImageArchiveLoaded').length === 1, 'loaded by then');
  const progress = log.events('ImageArchiveProgress');
  t.ok(progress.length >= 3, `progress lines while loading (${progress.length})`);
  t.match(progress[0], { phase: 'loading', file: 'big.tar' });
  t.equal(await archives.settled({ boundMs: 0 }), true, 'idle: true at once, whatever the bound');

  const controller = new AbortController();
  await putArchive(w.dir, 'big2.tar', 'IMAGE localhost/big:2\n');
  await until('the second load to begin', () => log.events('ImageArchiveLoading').length === 2);
  const waiting = archives.settled({ boundMs: 10_000, signal: controller.signal });
  controller.abort(new Error('cancelled'));
  await t.rejects(waiting, { message: 'cancelled' }, 'a cancelled wait rejects with the reason');
});

t.test('a truncated state file: rebuilt, the archives loaded again, never fatal', async (t) => {
  const w = world(t);
  await putArchive(w.dir, 'app.tar', 'IMAGE localhost/app:1\n');
  const first = await w.start();
  await first.archives.settled({ boundMs: 10_000 });
  await first.archives.stop();
  const path = join(w.stateDir, ARCHIVE_STATE_FILE);
  const text = await readFile(path, 'utf8');
  await writeFile(path, text.slice(0, Math.floor(text.length / 2)));
  const second = await w.start();
  await second.archives.settled({ boundMs: 10_000 });
  t.match(second.log.events('StateFileCorrupt'), [{ level: 'warn' }], 'the corrupt file is named');
  t.match(second.log.events('ImageArchiveLoaded'), [{ file: 'app.tar' }], 'loaded again: the safe side');
  t.equal((await w.calls()).length, 2);
  const rebuilt = JSON.parse(await readFile(path, 'utf8')) as { archives: unknown[] };
  t.equal(rebuilt.archives.length, 1, 'and written whole again');
});

t.test('a missing images directory is made; a file that goes away is forgotten', async (t) => {
  const w = world(t);
  const dir = join(w.root, 'made', 'images');
  const log = recordingLogger();
  process.env.FAKE_PODMAN_LOG = join(w.root, 'calls');
  const archives = new ImageArchives({ dir, stateDir: w.stateDir, cli: new PodmanCli({ bin: FAKE_PODMAN }), logger: log.logger, rescanIntervalMs: 100, settleMs: 150 });
  t.teardown(() => archives.stop());
  await archives.start();
  await putArchive(dir, 'a.tar', 'IMAGE localhost/a:1\n');
  await until('a.tar to be loaded', () => log.events('ImageArchiveLoaded').length === 1);
  t.pass('the directory was made and watched');
  const stateFile = join(w.stateDir, ARCHIVE_STATE_FILE);
  const files = async () => (JSON.parse(await readFile(stateFile, 'utf8').catch(() => '{"files":[]}')) as { files: { name: string }[] }).files.map((file) => file.name);
  await until('a.tar to be remembered', async () => (await files()).length === 1);
  t.same(await files(), ['a.tar'], 'its digest is remembered with its facts');
  await rm(join(dir, 'a.tar'));
  await until('a.tar to be forgotten', async () => (await files()).length === 0);
  t.pass('a file removed is forgotten (its content stays remembered as loaded)');
  t.match((JSON.parse(await readFile(stateFile, 'utf8')) as { archives: unknown[] }).archives, [{ file: 'a.tar', result: 'loaded' }]);
});
