// ExitWatcher on real directories: first a temporary one standing in for podman's exits
// directory, written to as conmon writes (a temporary name renamed to the id, or in place), then
// podman's own, beside PodmanEventStream, to see the exit file come before the `died` event.
// Containers are labelled for a node name of the test's own and removed when the test ends.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import t from 'tap';
import { defaultExitsDirectory, ExitWatcher, findExitsDirectory, parseTmpDir, type ContainerExit } from '../../src/runtime/exit-watcher.js';
import { PodmanCli } from '../../src/runtime/podman-cli.js';
import { PodmanEventStream, type ContainerEvent } from '../../src/runtime/podman-events.js';
import { recordingLogger, untilWithin } from '../support/recording.js';

const IMAGE = process.env.PODVISOR_TEST_IMAGE ?? 'localhost/busybox:podvisor';


const until = untilWithin(5000);

function containerId(): string {
  return randomBytes(32).toString('hex');
}

/** Writes an exit file as conmon 2.1 does: a temporary name, renamed to the id. */
async function writeExitFile(dir: string, id: string, content: string): Promise<void> {
  const temporary = join(dir, `${id}.${randomBytes(3).toString('hex').toUpperCase()}`);
  await writeFile(temporary, content);
  await rename(temporary, join(dir, id));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
}

t.test('reports an exit file of its own containers, once, with the code', async (t) => {
  const dir = t.testdir({});
  const ours = new Set<string>();
  const asked: string[] = [];
  const exits: ContainerExit[] = [];
  const { logger, lines } = recordingLogger();
  const watcher = new ExitWatcher({
    dir,
    logger,
    isOurs: (id) => {
      asked.push(id);
      return ours.has(id);
    },
    onExit: (exit) => exits.push(exit),
  });
  watcher.start();
  t.teardown(() => watcher.stop());
  t.ok(watcher.watching);

  const mine = containerId();
  const theirs = containerId();
  ours.add(mine);
  const before = Date.now();
  await writeExitFile(dir, theirs, '1');
  await writeExitFile(dir, mine, '3');
  await until(() => exits.length === 1, 'the exit');
  await sleep(50);
  t.equal(exits.length, 1, 'reported once, and not the other container');
  t.equal(exits[0]?.containerId, mine);
  t.equal(exits[0]?.exitCode, 3);
  t.ok(Math.abs((exits[0]?.time.getTime() ?? 0) - before) < 1000, 'time is the file\'s');
  t.ok(asked.every((id) => /^[0-9a-f]{64}$/.test(id)), 'temporary names are not asked about');

  // podman's cleanup removes the file; the container runs and exits again.
  await rm(join(dir, mine));
  await sleep(20);
  await writeExitFile(dir, mine, '137');
  await until(() => exits.length === 2, 'the second exit');
  t.equal(exits[1]?.exitCode, 137);

  // An older conmon: the file is made, then written in place.
  const inPlace = containerId();
  ours.add(inPlace);
  await writeFile(join(dir, inPlace), '');
  await sleep(20);
  await writeFile(join(dir, inPlace), '0');
  await until(() => exits.length === 3, 'the in-place exit');
  t.strictSame([exits[2]?.containerId, exits[2]?.exitCode], [inPlace, 0]);

  const odd = containerId();
  ours.add(odd);
  await writeExitFile(dir, odd, 'garbage');
  await until(() => exits.length === 4, 'the unreadable exit');
  t.equal(exits[3]?.exitCode, undefined);
  t.ok(lines.some((line) => line.startsWith(`warn: exit file ${join(dir, odd)} holds no exit code`)), lines.join('\n'));

  watcher.stop();
  t.notOk(watcher.watching);
  await writeExitFile(dir, containerId(), '1');
  const after = containerId();
  ours.add(after);
  await writeExitFile(dir, after, '1');
  await sleep(50);
  t.equal(exits.length, 4, 'nothing after stop()');
});

t.test('a FIFO or a directory with a container\'s name neither holds the loop nor is reported', async (t) => {
  const dir = t.testdir({});
  const exits: ContainerExit[] = [];
  const { logger } = recordingLogger();
  const watcher = new ExitWatcher({ dir, logger, isOurs: () => true, onExit: (exit) => exits.push(exit) });
  watcher.start();
  t.teardown(() => watcher.stop());

  // The exit file is read synchronously: a blocking open of a FIFO would hang the whole agent.
  const fifo = containerId();
  await execa('mkfifo', [join(dir, fifo)]);
  mkdirSync(join(dir, containerId()));
  const real = containerId();
  await writeExitFile(dir, real, '2');
  await until(() => exits.length === 1, 'the real exit after the FIFO');
  await sleep(50);
  t.strictSame(exits.map((exit) => [exit.containerId, exit.exitCode]), [[real, 2]], 'only the regular file is an exit');
});

t.test('a missing directory is reported once and watched when it appears; a replaced one is watched anew', async (t) => {
  const root = t.testdir({});
  const dir = join(root, 'libpod', 'exits');
  const exits: ContainerExit[] = [];
  const { logger, lines } = recordingLogger();
  const controller = new AbortController();
  const watcher = new ExitWatcher({ dir, logger, isOurs: () => true, onExit: (exit) => exits.push(exit), retryMs: 30, signal: controller.signal });
  watcher.start();
  t.teardown(() => controller.abort());
  await sleep(150);
  t.notOk(watcher.watching);
  t.equal(lines.filter((line) => line.startsWith('warn:')).length, 1, 'said once');
  t.match(lines[0], /^warn: cannot watch podman's exits directory .*\/libpod\/exits: ENOENT.*; trying every 0\.03 s/);

  mkdirSync(dir, { recursive: true });
  await until(() => watcher.watching, 'watching');
  t.ok(lines.includes(`info: watching podman's exits directory ${dir}`));
  const first = containerId();
  await writeExitFile(dir, first, '2');
  await until(() => exits.length === 1, 'the exit');

  // Removed and made again (podman's tmp dir wiped): the old inode's watch would see nothing.
  rmSync(dir, { recursive: true });
  mkdirSync(dir);
  await sleep(100);
  const second = containerId();
  await writeExitFile(dir, second, '9');
  await until(() => exits.length === 2, 'the exit in the new directory');
  t.strictSame(exits.map((exit) => [exit.containerId, exit.exitCode]), [[first, 2], [second, 9]]);

  controller.abort();
  t.notOk(watcher.watching, 'the signal stops it');
});

t.test('finds podman\'s exits directory', async (t) => {
  const found = await findExitsDirectory(new PodmanCli());
  t.strictSame(found, { dir: '/run/libpod/exits', source: 'podman' }, 'root on this machine: tmp_dir /run/libpod');

  const { logger, lines } = recordingLogger();
  const fallback = await findExitsDirectory(new PodmanCli({ bin: '/nonexistent/podman' }), { logger });
  t.strictSame(fallback, { dir: '/run/libpod/exits', source: 'default' });
  t.match(lines[0], /^warn: podman info failed: .*not found.*; assuming podman's default exits directory$/);

  t.equal(parseTmpDir([
    'time="2026-11-29T02:36:39Z" level=debug msg="Using static dir /var/lib/containers/storage/libpod"',
    'time="2026-11-29T02:36:39Z" level=debug msg="Using tmp dir /run/user/1000/libpod/tmp"',
    'time="2026-11-29T02:36:39Z" level=debug msg="Using volume path /home/u/.local/share/containers/storage/volumes"',
  ].join('\n')), '/run/user/1000/libpod/tmp');
  t.equal(parseTmpDir('level=info msg="nothing here"'), undefined);

  const saved = process.env.XDG_RUNTIME_DIR;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
  });
  process.env.XDG_RUNTIME_DIR = '/run/user/1000';
  t.equal(defaultExitsDirectory(true), '/run/user/1000/libpod/tmp/exits');
  t.equal(defaultExitsDirectory(false), '/run/libpod/exits');
});

t.test('on real podman the exit file comes before the died event', async (t) => {
  const image = await execa('podman', ['image', 'exists', IMAGE], { reject: false });
  if (image.exitCode !== 0) throw new Error(`image ${IMAGE} is missing: run \`bash scripts/setup-host.sh\` first`);
  const node = `ev-${randomBytes(4).toString('hex')}`;
  const { logger } = recordingLogger();
  const ours = new Set<string>();
  /** When each container's exit reached the watcher and the stream (wall clock, ms). */
  const seen = new Map<string, { exit?: ContainerExit; watcherAt?: number; event?: ContainerEvent; eventAt?: number }>();
  const record = (id: string) => {
    const entry = seen.get(id) ?? {};
    seen.set(id, entry);
    return entry;
  };
  const { dir } = await findExitsDirectory(new PodmanCli(), { logger });
  const watcher = new ExitWatcher({
    dir,
    logger,
    isOurs: (id) => ours.has(id),
    onExit: (exit) => Object.assign(record(exit.containerId), { exit, watcherAt: Date.now() }),
  });
  const stream = new PodmanEventStream({
    cli: new PodmanCli(),
    logger,
    nodeName: node,
    onEvent: (event) => {
      if (event.kind === 'died') Object.assign(record(event.containerId), { event, eventAt: Date.now() });
    },
  });
  t.teardown(async () => {
    watcher.stop();
    await stream.stop();
    const { stdout } = await execa('podman', ['ps', '-aq', '--filter', `label=io.podvisor.node=${node}`], { reject: false });
    const ids = stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await execa('podman', ['rm', '--force', '--time', '0', ...ids], { reject: false });
  });
  watcher.start();
  stream.start();

  const ids: string[] = [];
  for (let index = 0; index < 5; index += 1) {
    const { stdout } = await execa('podman', [
      'create', '--name', `${node}-c${index}`, '--label', 'io.podvisor.managed=true', '--label', `io.podvisor.node=${node}`,
      IMAGE, 'sh', '-c', `sleep 0.1; exit ${10 + index}`,
    ]);
    const id = stdout.trim();
    ours.add(id);
    ids.push(id);
    await execa('podman', ['start', id]);
    await until(() => seen.get(id)?.eventAt !== undefined && seen.get(id)?.watcherAt !== undefined, `both signals for container ${index}`, 10_000);
  }

  const toWatcher: number[] = [];
  const toEvent: number[] = [];
  const lead: number[] = [];
  for (const [index, id] of ids.entries()) {
    const entry = seen.get(id);
    const exitTime = entry?.exit?.time.getTime() ?? NaN;
    t.equal(entry?.exit?.exitCode, 10 + index, 'the watcher read the exit code');
    t.equal(entry?.event?.exitCode, 10 + index, 'the event carries it too');
    toWatcher.push((entry?.watcherAt ?? NaN) - exitTime);
    toEvent.push((entry?.eventAt ?? NaN) - exitTime);
    lead.push((entry?.eventAt ?? NaN) - (entry?.watcherAt ?? NaN));
    t.ok((entry?.watcherAt ?? Infinity) <= (entry?.eventAt ?? -Infinity) + 5, `the watcher first (or within 5 ms): lead ${lead.at(-1)} ms`);
  }
  t.comment(`exit -> watcher: median ${median(toWatcher)} ms (${toWatcher.join(', ')})`);
  t.comment(`exit -> died event: median ${median(toEvent)} ms (${toEvent.join(', ')})`);
  t.comment(`watcher ahead of the event: median ${median(lead)} ms`);
});
