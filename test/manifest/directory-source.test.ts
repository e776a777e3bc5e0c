// The directory source against a real temporary directory: chokidar events, settling, the names
// it ignores, the size limit, removals, and the full rescan. Every wait polls with a deadline;
// no assertion rests on a fixed sleep.
import { execFileSync } from 'node:child_process';
import { mkdir, rename, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DirectorySource, isManifestName, type SourceSnapshot } from '../../src/manifest/directory-source.js';
import { MAX_MANIFEST_BYTES } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

const SETTLE_MS = 25;

/** A manifest for pod `name` (image tag `tag`). */
const manifest = (name: string, tag = '1.25') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: app\n      image: nginx:${tag}\n`;

/** Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sets a file's times `secondsAgo` in the past, so that it counts as settled at once. */
async function age(path: string, secondsAgo = 10): Promise<void> {
  const when = new Date(Date.now() - secondsAgo * 1000);
  await utimes(path, when, when);
}

/** A source on `dir` that records what it emits; closed when the test ends. */
function makeSource(t: Test, dir: string, settleMs = SETTLE_MS) {
  const snapshots: SourceSnapshot[] = [];
  const errors: string[] = [];
  const source = new DirectorySource({
    dir,
    nodeName: 'node1',
    resyncIntervalMs: 0,
    settleMs,
    onSnapshot: (snapshot) => snapshots.push(snapshot),
    onError: (message) => errors.push(message),
  });
  t.teardown(() => source.close());
  /** Names of the files in a snapshot, sorted. */
  const names = (snapshot: SourceSnapshot | undefined) => (snapshot?.files ?? []).map((file) => file.path.slice(dir.length + 1)).sort();
  /** The first snapshot from index `from` on that satisfies `test`. */
  const next = (what: string, test: (snapshot: SourceSnapshot) => boolean, from = 0, timeoutMs = 5000) =>
    waitFor(what, () => snapshots.slice(from).find(test), timeoutMs);
  const has = (name: string) => (snapshot: SourceSnapshot) => snapshot.files.some((file) => file.path === join(dir, name));
  /**
   * Starts the source and returns once its watcher demonstrably delivers events: a probe file is
   * rewritten until a snapshot shows it, then removed. start() resolves before chokidar has
   * finished its own initial scan (see 'a file added right after start'), and this keeps that
   * race out of the tests about other behaviour. The snapshots list is emptied afterwards.
   */
  const startWatching = async () => {
    await source.start();
    const probe = join(dir, '00-probe.yaml');
    for (let attempt = 0; ; attempt++) {
      await writeFile(probe, `${manifest('probe')}# ${attempt}\n`);
      const seen = await waitFor('the probe', () => snapshots.find(has('00-probe.yaml')), 50).catch(() => undefined);
      if (seen) break;
      if (attempt > 100) throw new Error('the watcher never reported the probe file');
    }
    await rm(probe);
    await next('the probe removal', (snapshot) => snapshot.removed.includes(probe));
    snapshots.length = 0;
  };
  return { source, snapshots, errors, names, next, has, startWatching };
}

t.test('isManifestName', async (t) => {
  for (const name of ['web.yaml', 'web.yml', 'web.json', 'a.b.yaml', '10-web.yaml']) t.equal(isManifestName(name), true, name);
  for (const name of ['.web.yaml', '.web.yaml.tmp', 'web.yaml~', 'web.yaml.swp', '.web.yaml.swp', 'web.yaml.swx', 'web.yaml.bak', 'web.yaml.orig', 'web.yaml.tmp', 'web.dpkg-new', 'web.yaml.dpkg-old', 'web.rpmnew', 'web.yaml.rpmsave', 'web.txt', 'README', '.yaml', 'yaml']) {
    t.equal(isManifestName(name), false, name);
  }
});

t.test('start emits a first snapshot, even of an empty directory', async (t) => {
  const dir = t.testdir({});
  const { source, snapshots } = makeSource(t, dir);
  await source.start();
  t.equal(snapshots.length, 1);
  t.same(snapshots[0], { files: [], changed: [], removed: [] });
});

t.test('start reads the files already there', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web'), 'cache.yml': manifest('cache'), 'notes.txt': 'hello' });
  await age(join(dir, 'web.yaml'));
  await age(join(dir, 'cache.yml'));
  const { source, snapshots, names } = makeSource(t, dir);
  await source.start();
  t.equal(snapshots.length, 1);
  t.same(names(snapshots[0]), ['cache.yml', 'web.yaml']);
  t.same(snapshots[0]?.changed.length, 2);
  t.same(snapshots[0]?.files.flatMap((file) => file.pods.map((pod) => pod.key)).sort(), ['default/cache-node1', 'default/web-node1']);
});

t.test('a file added right after start is emitted', async (t) => {
  // start() resolves once the first scan is emitted, so the directory is watched from then on.
  const dir = t.testdir({});
  const { source, next, has } = makeSource(t, dir);
  await source.start();
  await writeFile(join(dir, 'web.yaml'), manifest('web'));
  const snapshot = await next('web.yaml', has('web.yaml'), 0, 500).catch(() => undefined);
  t.ok(snapshot, 'web.yaml is emitted (src/manifest/directory-source.ts start() does not wait for chokidar\'s "ready": bug reported)');
});

t.test('a new file is emitted with its pod', async (t) => {
  const dir = t.testdir({});
  const { snapshots, errors, names, next, has, startWatching } = makeSource(t, dir);
  await startWatching();
  await writeFile(join(dir, 'web.yaml'), manifest('web'));
  const snapshot = await next('web.yaml', has('web.yaml'));
  t.same(names(snapshot), ['web.yaml']);
  t.same(snapshot.changed.map((file) => file.path), [join(dir, 'web.yaml')]);
  t.same(snapshot.removed, []);
  t.same(snapshot.files[0]?.pods.map((pod) => pod.key), ['default/web-node1']);
  t.equal(snapshot.files[0]?.hasErrors, false);
  t.same(errors, []);
  t.equal(snapshots.length, 1);
});

t.test('a change to a file is emitted', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web', '1.25') });
  await age(join(dir, 'web.yaml'));
  const { snapshots, next, startWatching } = makeSource(t, dir);
  await startWatching();
  await writeFile(join(dir, 'web.yaml'), manifest('web', '1.26.1'));
  const snapshot = await next('the new image', (s) => s.changed.some((file) => file.pods[0]?.pod.spec.containers[0]?.image === 'nginx:1.26.1'));
  t.same(snapshot.changed.map((file) => file.path), [join(dir, 'web.yaml')]);
  t.same(snapshot.files.map((file) => file.pods[0]?.pod.spec.containers[0]?.image), ['nginx:1.26.1']);
  t.same(snapshot.removed, []);
  t.equal(snapshots.length, 1);
});

t.test('an atomic rename is emitted once, complete', async (t) => {
  const dir = t.testdir({});
  const { snapshots, next, has, startWatching } = makeSource(t, dir);
  await startWatching();
  const tmp = join(dir, '.web.yaml.tmp');
  // Written in pieces, as a slow writer would; none of it must show.
  await writeFile(tmp, 'apiVersion: v1\nkind: Pod\n');
  await writeFile(tmp, manifest('web'));
  await rename(tmp, join(dir, 'web.yaml'));
  const snapshot = await next('web.yaml', has('web.yaml'));
  t.equal(snapshot.files.length, 1);
  t.equal(snapshot.files[0]?.hasErrors, false);
  t.same(snapshot.files[0]?.findings, []);
  t.same(snapshot.files[0]?.pods.map((pod) => pod.key), ['default/web-node1']);
  // A later file marks the end: every event about web.yaml has been handled by then.
  await writeFile(join(dir, 'zz-sentinel.yaml'), manifest('sentinel'));
  await next('the sentinel', has('zz-sentinel.yaml'));
  const readings = snapshots.flatMap((s) => s.changed).filter((file) => file.path === join(dir, 'web.yaml'));
  t.equal(readings.length, 1, 'web.yaml was read once');
  t.notOk(snapshots.some((s) => s.files.some((file) => file.path.endsWith('.tmp'))), 'the temporary file never shows');
});

t.test('files renamed in while a read is in flight are read together after it, not one read per turn', async (t) => {
  const dir = t.testdir({ stage: {} });
  const watched = join(dir, 'watched');
  await mkdir(watched);
  const { snapshots, next, has, startWatching } = makeSource(t, watched);
  await startWatching();
  const count = 60;
  const names = Array.from({ length: count }, (_, index) => `pod-${String(index).padStart(2, '0')}.yaml`);
  for (const [index, name] of names.entries()) {
    await writeFile(join(dir, 'stage', name), manifest(`pod-${index}`));
    await age(join(dir, 'stage', name));
  }
  // One rename at a time, each its own turn of the loop or more, as `mv` of a directory's files would.
  for (const name of names) await rename(join(dir, 'stage', name), join(watched, name));
  await next('every file', (snapshot) => snapshot.files.length === count, 0, 20_000);
  const taken = snapshots.filter((snapshot) => snapshot.changed.length > 0);
  t.ok(taken.length <= 10, `${count} files renamed in one by one make ${taken.length} snapshots (at most 10): ${taken.map((snapshot) => snapshot.changed.length).join(', ')}`);
  t.equal(taken.flatMap((snapshot) => snapshot.changed).length, count, 'each file read once');
  t.ok(has(names.at(-1)!)(snapshots.at(-1)!), 'the last snapshot holds the last file');
});

t.test('leftovers, dotfiles and subdirectories are ignored', async (t) => {
  const dir = t.testdir({});
  const { source, snapshots, errors, names, next, has, startWatching } = makeSource(t, dir);
  await startWatching();
  const ignored = ['.hidden.yaml', 'web.yaml~', 'web.yaml.swp', 'web.yaml.bak', 'web.dpkg-new', 'web.rpmnew', 'web.yaml.tmp', 'notes.txt'];
  for (const name of ignored) await writeFile(join(dir, name), manifest('ignored'));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'nested.yaml'), manifest('nested'));
  // A directory whose name looks like a manifest is not one either, nor is what it holds.
  await mkdir(join(dir, 'dir.yaml'));
  await writeFile(join(dir, 'dir.yaml', 'inner.yaml'), manifest('inner'));
  await writeFile(join(dir, 'zz-sentinel.yaml'), manifest('sentinel'));
  const snapshot = await next('the sentinel', has('zz-sentinel.yaml'));
  t.same(names(snapshot), ['zz-sentinel.yaml']);
  t.same(snapshots.flatMap((s) => s.changed).map((file) => file.path), [join(dir, 'zz-sentinel.yaml')]);
  // A full rescan agrees.
  const before = snapshots.length;
  for (const name of ignored) await age(join(dir, name));
  await age(join(dir, 'zz-sentinel.yaml'));
  await source.rescan();
  await source.rescan();
  t.equal(snapshots.length, before + 1, 'the rescan re-reads only the sentinel, whose time was changed');
  t.same(names(snapshots.at(-1)), ['zz-sentinel.yaml']);
  t.same(errors, []);
});

t.test('a file over 1 MiB is an error finding, not read', async (t) => {
  const dir = t.testdir({});
  const { next, has, startWatching } = makeSource(t, dir);
  await startWatching();
  // Sparse: one byte over the limit without writing it.
  await writeFile(join(dir, 'big.yaml'), '');
  await truncate(join(dir, 'big.yaml'), MAX_MANIFEST_BYTES + 1);
  const snapshot = await next('big.yaml', has('big.yaml'));
  const result = snapshot.files[0];
  t.equal(MAX_MANIFEST_BYTES, 1024 * 1024);
  t.equal(result?.hasErrors, true);
  t.same(result?.pods, []);
  t.same(result?.findings.map(formatFinding), [`${join(dir, 'big.yaml')}:1:1: file is 1048577 bytes, over the 1048576-byte limit for a manifest`]);
});

t.test('a deleted file is dropped and listed as removed', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web'), 'cache.yaml': manifest('cache') });
  await age(join(dir, 'web.yaml'));
  await age(join(dir, 'cache.yaml'));
  const { snapshots, names, next, startWatching } = makeSource(t, dir);
  await startWatching();
  await rm(join(dir, 'web.yaml'));
  const snapshot = await next('the removal', (s) => s.removed.length > 0);
  t.same(snapshot.removed, [join(dir, 'web.yaml')]);
  t.same(names(snapshot), ['cache.yaml']);
  t.same(snapshot.changed, []);
  t.equal(snapshots.length, 1);
});

t.test('rescan picks up changes made while not watching', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web', '1.25'), 'old.yaml': manifest('old') });
  for (const name of ['web.yaml', 'old.yaml']) await age(join(dir, name), 60);
  // Never started: no watcher, only explicit rescans.
  const { source, snapshots, names } = makeSource(t, dir);
  await source.rescan();
  t.equal(snapshots.length, 1);
  t.same(names(snapshots[0]), ['old.yaml', 'web.yaml']);

  await writeFile(join(dir, 'web.yaml'), manifest('web', '1.26.1'));
  await age(join(dir, 'web.yaml'), 30);
  await writeFile(join(dir, 'new.yaml'), manifest('new'));
  await age(join(dir, 'new.yaml'), 30);
  await rm(join(dir, 'old.yaml'));
  await source.rescan();
  t.equal(snapshots.length, 2);
  const snapshot = snapshots[1];
  t.same(names(snapshot), ['new.yaml', 'web.yaml']);
  t.same(snapshot?.changed.map((file) => file.path).sort(), [join(dir, 'new.yaml'), join(dir, 'web.yaml')]);
  t.same(snapshot?.removed, [join(dir, 'old.yaml')]);
  const web = snapshot?.files.find((file) => file.path === join(dir, 'web.yaml'));
  t.equal(web?.pods[0]?.pod.spec.containers[0]?.image, 'nginx:1.26.1');

  await source.rescan();
  t.equal(snapshots.length, 2, 'an unchanged directory emits nothing');
});

t.test('a file renamed into place is read at once; one still being written waits to settle', async (t) => {
  const dir = t.testdir({});
  // A settle time no test waits out: whatever is read here was read without it.
  const { source, snapshots, next, has, names } = makeSource(t, dir, 600_000);
  /** Writes `name` under a hidden name and renames it into place a moment later, as a careful writer does (the clock must move on). */
  const renameIn = async (name: string, text: string) => {
    await writeFile(join(dir, `.${name}.tmp`), text);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rename(join(dir, `.${name}.tmp`), join(dir, name));
  };
  await source.start();
  // start() resolves before chokidar has finished its own scan: rename a probe in until it shows.
  for (let attempt = 0; !snapshots.some(has('00-probe.yaml')); attempt++) {
    if (attempt > 100) throw new Error('the watcher never reported the probe file');
    await renameIn('00-probe.yaml', `${manifest('probe')}# ${attempt}\n`);
    await waitFor('the probe', () => snapshots.find(has('00-probe.yaml')), 100).catch(() => undefined);
  }
  snapshots.length = 0;
  // Half of a manifest, written in place: its writer may still be busy.
  await writeFile(join(dir, 'half.yaml'), 'apiVersion: v1\nkind: Pod\n');
  await renameIn('web.yaml', manifest('web'));
  const snapshot = await next('web.yaml, read without settling', has('web.yaml'));
  t.same(snapshot.changed.flatMap((file) => file.pods.map((pod) => pod.key)), ['default/web-node1']);
  t.same(names(snapshot), ['00-probe.yaml', 'web.yaml'], 'the file still being written is not read with it');
  await renameIn('zz.yaml', manifest('zz'));
  const later = await next('zz.yaml', has('zz.yaml'));
  t.same(names(later), ['00-probe.yaml', 'web.yaml', 'zz.yaml'], 'nor with the next renamed file');
});

t.test('a file written moments before a rescan is read once it has settled', async (t) => {
  const dir = t.testdir({});
  const { source, snapshots, next, has } = makeSource(t, dir, 200);
  await source.rescan();
  await writeFile(join(dir, 'web.yaml'), manifest('web'));
  await source.rescan();
  t.equal(snapshots.length, 1, 'not read while it may still be growing');
  const snapshot = await next('web.yaml', has('web.yaml'));
  t.same(snapshot.files[0]?.pods.map((pod) => pod.key), ['default/web-node1']);
  t.equal(snapshots.length, 2);
});

t.test('the first snapshot is complete even when a file was written just before start', async (t) => {
  const dir = t.testdir({});
  await writeFile(join(dir, 'web.yaml'), manifest('web'));
  const { source, snapshots, names } = makeSource(t, dir, 200);
  await source.start();
  t.same(names(snapshots[0]), ['web.yaml'], 'a snapshot is the complete directory');
});

t.test('a file with a modification time in the future is still read', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web') });
  const future = new Date(Date.now() + 3600_000);
  await utimes(join(dir, 'web.yaml'), future, future);
  const { source, next, has } = makeSource(t, dir);
  await source.start();
  // However fresh it looks, it is read, not left waiting for its time to come.
  const snapshot = await next('web.yaml', has('web.yaml'));
  t.same(snapshot.files[0]?.pods.map((pod) => pod.key), ['default/web-node1']);
});

t.test('a missing directory is an error, not an empty snapshot', async (t) => {
  const dir = join(t.testdir({}), 'absent');
  const { source, snapshots, errors } = makeSource(t, dir);
  await source.start();
  await source.rescan();
  t.same(snapshots, []);
  t.equal(errors.length, 1, `reported once: ${errors.join(' | ')}`);
  t.match(errors[0], /^cannot read manifest directory .*absent: .*; keeping the current pods$/);
});

t.test('close stops the source', async (t) => {
  const dir = t.testdir({});
  const { source, snapshots } = makeSource(t, dir);
  await source.start();
  await source.close();
  await writeFile(join(dir, 'web.yaml'), manifest('web'));
  await age(join(dir, 'web.yaml'));
  await source.rescan();
  t.equal(snapshots.length, 1, 'nothing after close');
});

t.test('a FIFO or a device named like a manifest is a finding; the files beside it are read', async (t) => {
  const dir = t.testdir({ 'web.yaml': manifest('web') });
  await age(join(dir, 'web.yaml'));
  execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
  await symlink('/dev/zero', join(dir, 'zero.yaml'));
  const { source, snapshots } = makeSource(t, dir);
  // A blocking open of the FIFO would never return: start() resolving is the first check.
  await source.start();
  const files = new Map(snapshots[0]?.files.map((file) => [file.path.slice(dir.length + 1), file]));
  t.same(files.get('web.yaml')?.pods.map((pod) => pod.key), ['default/web-node1']);
  t.match(files.get('pipe.yaml')?.findings.map(formatFinding), [/pipe\.yaml:1:1: not a regular file \(a FIFO\)/]);
  t.match(files.get('zero.yaml')?.findings.map(formatFinding), [/zero\.yaml:1:1: not a regular file \(a device\)/]);
});

t.test('a file that cannot be read for another reason than ENOENT keeps its pods', async (t) => {
  // A symlink loop is an error that is not "gone" (ELOOP); as root, it is one that can be made for real.
  const dir = t.testdir({ 'web.yaml': manifest('web') });
  await age(join(dir, 'web.yaml'));
  const { source, snapshots, errors } = makeSource(t, dir);
  await source.start();
  t.equal(snapshots.length, 1);
  await rm(join(dir, 'web.yaml'));
  await symlink('web.yaml', join(dir, 'web.yaml'));
  await source.rescan();
  await source.rescan();
  t.equal(snapshots.length, 1, 'no snapshot: the pod is not removed');
  // (chokidar reports the loop too, as a watcher error.)
  const reads = errors.filter((message) => message.startsWith('cannot read'));
  t.equal(reads.length, 1, 'reported once');
  t.match(reads[0], /cannot read .*web\.yaml: .*ELOOP.*its pods keep their current state/);
  await rm(join(dir, 'web.yaml'));
  await writeFile(join(dir, 'web.yaml'), manifest('web', '1.26'));
  await age(join(dir, 'web.yaml'));
  await source.rescan();
  const last = snapshots.at(-1);
  t.same(last?.files.flatMap((file) => file.pods.map((pod) => pod.pod.spec.containers[0]?.image)), ['nginx:1.26'], 'read again once readable');
  t.match(errors.at(-1), /can be read again/);
  await rm(join(dir, 'web.yaml'));
  await source.rescan();
  t.same(snapshots.at(-1)?.removed, [join(dir, 'web.yaml')], 'ENOENT is a removal');
});
