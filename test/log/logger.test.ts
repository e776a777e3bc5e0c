// The logger's formats as their readers take them: journald reads a `<N>` priority prefix and
// stamps each line itself, so under systemd the lines carry a priority and no timestamp; a
// terminal gets text, a log shipper JSON. The choice follows JOURNAL_STREAM, which systemd sets to
// the device:inode of the stream it connected, and it is checked here through the real CLI.
import { execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createLogger, isJournalStream, type LogFormat } from '../../src/log/logger.js';

const CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'dist', 'podvisor.mjs');

/** The lines a logger of `format` writes for one event of each level. */
async function linesOf(format: LogFormat): Promise<string[]> {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const logger = createLogger({ level: 'debug', format, stream });
  logger.error('pod failed', { pod: 'default/web-node1', event: 'ActionFailed' });
  logger.warn('keeping pod: its manifest has errors', { source: '/etc/pods.d/a b.yaml' });
  logger.info('podvisor running');
  logger.debug('podman', { args: 'pod ps', ms: 12 });
  logger.info('forged\nline\u001b[2J');
  await new Promise((resolveEnd) => setImmediate(resolveEnd));
  return chunks.join('').split('\n').filter(Boolean);
}

t.test('journal: a syslog priority per line, no timestamp of its own, fields as key=value', async (t) => {
  const lines = await linesOf('journal');
  t.same(lines, [
    '<3>pod failed pod=default/web-node1 event=ActionFailed',
    '<4>keeping pod: its manifest has errors source="/etc/pods.d/a b.yaml"',
    '<6>podvisor running',
    '<7>podman args="pod ps" ms=12',
    '<6>forged\\nline\\x1b[2J',
  ]);
});

t.test('text: a timestamp and the level; json: one object a line', async (t) => {
  const text = await linesOf('text');
  t.match(text[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR pod failed pod=default\/web-node1 event=ActionFailed$/);
  t.equal(text.length, 5, 'a message with a newline stays one line');
  const json = (await linesOf('json')).map((line) => JSON.parse(line) as Record<string, unknown>);
  t.match(json[0], { level: 'error', message: 'pod failed', pod: 'default/web-node1', event: 'ActionFailed', timestamp: /Z$/ });
  t.equal(json[4]?.message, 'forged\\nline\\x1b[2J');
});

t.test('isJournalStream: only the stream systemd named', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [one, other] = ['one', 'other'].map((name) => openSync(join(dir, name), 'w'));
  t.teardown(() => [one, other].forEach((fd) => closeSync(fd!)));
  const info = fstatSync(one!);
  const stream = `${info.dev}:${info.ino}`;
  t.equal(isJournalStream(one, { JOURNAL_STREAM: stream }), true, 'the same device and inode');
  t.equal(isJournalStream(other, { JOURNAL_STREAM: stream }), false, 'stderr redirected elsewhere, JOURNAL_STREAM inherited');
  t.equal(isJournalStream(one, {}), false, 'not under systemd');
  t.equal(isJournalStream(one, { JOURNAL_STREAM: 'garbage' }), false);
  t.equal(isJournalStream(one, { JOURNAL_STREAM: `${info.dev}:${info.ino}:1` }), false);
});

t.test('podvisor run under systemd logs for the journal unless told otherwise', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'file'), '');
  // A file stands in for the journal's stream: the agent's stderr is redirected to it, and
  // JOURNAL_STREAM names it, as systemd does. The start fails at once (a state directory under a file).
  const journal = join(dir, 'journal');
  await writeFile(journal, '');
  const info = statSync(journal);
  const run = (flags: string) => new Promise<number | null>((resolveExit) => {
    const script = `exec "$0" "$1" run --manifest-dir "$2" --state-dir "$2/file/state" ${flags} 2>>"$3"`;
    execFile('sh', ['-c', script, process.execPath, CLI, dir, journal], { env: { ...process.env, JOURNAL_STREAM: `${info.dev}:${info.ino}` } })
      .on('exit', (code) => resolveExit(code));
  });
  t.equal(await run(''), 1, 'the start fails, as meant');
  const lines = readFileSync(journal, 'utf8').split('\n').filter(Boolean);
  t.match(lines.at(-1), /^<3>cannot start: ENOTDIR.* event=StartFailed$/, 'an error at priority 3, no timestamp');
  t.ok(lines.length > 0 && lines.every((line) => /^<[3-7]>/.test(line)), 'every line has its priority');
  await writeFile(journal, '');
  t.equal(await run('--log-format json'), 1);
  t.match(JSON.parse(readFileSync(journal, 'utf8').trim().split('\n').at(-1) ?? '{}'), { level: 'error', event: 'StartFailed' }, 'JSON when asked for');
});
