// Proves test/support/debian-root.ts on this machine, for the packaging and service tests that
// build on it: a cached root copied fresh for each caller (and without Node.js), a chroot that
// leaves nothing mounted even when its command fails or times out, an arm64 library root that
// qemu-aarch64-static runs binaries against, a root booted with systemd in which podman runs a
// container, and a host whose cgroup mounts are as before once the booted root is stopped.
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  bootSystemd,
  bootUnsupported,
  cgroupDifferences,
  chrootRun,
  debianRoot,
  debianRootUnsupported,
  ensureQemuAarch64,
  hostCgroupState,
  prepareNestedPodman,
  run,
} from './debian-root.js';

// A first run builds two roots with debootstrap and installs podman in a booted one.
t.setTimeout(25 * 60_000);

const unsupported = debianRootUnsupported();
const bootBlocked = await bootUnsupported();

/** The host's mount points under `dir`. */
async function hostMountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`));
}

async function missing(path: string): Promise<boolean> {
  return await access(path).then(
    () => false,
    () => true,
  );
}

t.test('a cached amd64 root with systemd: a fresh copy per caller, without Node.js', { skip: unsupported }, async (t) => {
  let started = Date.now();
  const root = await debianRoot({ arch: 'amd64', withSystemd: true, t });
  t.comment(`debianRoot(amd64, systemd): ${Date.now() - started} ms`);
  t.ok(await missing(join(root, 'usr/bin/node')), 'no /usr/bin/node');
  t.notOk(await missing(join(root, 'sbin/init')), '/sbin/init is there (systemd-sysv)');
  const node = await chrootRun(root, ['sh', '-c', 'command -v node nodejs']);
  t.not(node.exitCode, 0, `node is not on the root's PATH (${node.stdout.trim() || 'nothing found'})`);

  await writeFile(join(root, 'etc/polluted-by-first-caller'), 'x');
  started = Date.now();
  const second = await debianRoot({ arch: 'amd64', withSystemd: true, t });
  t.comment(`debianRoot(amd64, systemd) from the cache: ${Date.now() - started} ms`);
  t.not(second, root, 'each caller gets its own directory');
  t.ok(await missing(join(second, 'etc/polluted-by-first-caller')), "and does not see another caller's changes");
});

t.test('chrootRun mounts /proc, /sys and /dev for the command only', { skip: unsupported }, async (t) => {
  const root = await debianRoot({ arch: 'amd64', withSystemd: false, t });

  const started = Date.now();
  const inside = await chrootRun(root, ['sh', '-c', 'cat /proc/self/mountinfo; test -c /dev/null && test -d /sys/kernel && echo devices-ok; cat /etc/debian_version']);
  t.comment(`chrootRun of a short command: ${Date.now() - started} ms`);
  t.equal(inside.exitCode, 0, inside.stderr);
  t.match(inside.stdout, / \/proc rw[^\n]* - proc /, '/proc is a proc mount inside');
  t.match(inside.stdout, / \/sys ro[^\n]* - sysfs /, '/sys is a read-only sysfs inside');
  t.match(inside.stdout, /devices-ok/, '/dev/null is a device inside');
  t.match(inside.stdout, /^12\./m, 'it is Debian 12');
  t.same(await hostMountsUnder(root), [], 'nothing is mounted under the root on the host afterwards');

  const failed = await chrootRun(root, ['sh', '-c', 'echo to-stderr >&2; exit 3']);
  t.equal(failed.exitCode, 3, "a failing command's exit code comes back");
  t.equal(failed.stderr.trim(), 'to-stderr', 'with its stderr');
  t.same(await hostMountsUnder(root), [], 'and nothing stays mounted');

  // A daemon a package script might leave behind, then a command that outlives its timeout.
  const hung = await chrootRun(root, ['sh', '-c', 'sleep 300 & exec sleep 300'], { timeoutMs: 1_000 });
  t.ok(hung.timedOut, 'a command past its timeout is killed');
  t.same(await hostMountsUnder(root), [], 'nothing stays mounted after a timeout either');
  const leftovers = await run('sh', ['-c', `for p in /proc/[0-9]*; do [ "$(readlink $p/root)" = "${root}" ] && echo $p; done; true`]);
  t.equal(leftovers.stdout.trim(), '', 'and no process is left running in the root');

  const update = await chrootRun(root, ['apt-get', 'update', '-qq'], { timeoutMs: 5 * 60_000 });
  t.equal(update.exitCode, 0, `apt-get update inside reaches the host's mirror: ${update.stderr}`);
  t.match(await readFile(join(root, 'etc/apt/sources.list'), 'utf8'), /^deb http/m, "the root's sources are the host's mirror");
});

t.test('an arm64 first-stage root runs arm64 binaries through qemu-aarch64-static', { skip: unsupported }, async (t) => {
  const qemu = await ensureQemuAarch64();
  const started = Date.now();
  const root = await debianRoot({ arch: 'arm64', withSystemd: false, t });
  t.comment(`debianRoot(arm64): ${Date.now() - started} ms`);
  const file = await run('file', ['-L', join(root, 'usr/bin/true')]);
  if (file.exitCode === 0) t.match(file.stdout, /aarch64/, 'usr/bin/true is an arm64 binary');
  t.equal((await run(qemu, ['-L', root, join(root, 'usr/bin/true')])).exitCode, 0, 'qemu-aarch64-static -L root root/usr/bin/true exits 0');
  const uname = await run(qemu, ['-L', root, join(root, 'bin/uname'), '-m']);
  t.equal(uname.stdout.trim(), 'aarch64', 'uname -m says aarch64 under qemu');
  // apt-config is C++: it needs the root's libstdc++6 and libgcc-s1, as an arm64 node does.
  const cxx = await run(qemu, ['-L', root, join(root, 'usr/bin/apt-config'), '--version']);
  t.equal(cxx.exitCode, 0, `a C++ binary links against the root's libstdc++: ${cxx.stderr}`);
  t.match(cxx.stdout, /apt/i);
});

t.test('a root booted with systemd runs nested podman and leaves the host cgroups as they were', { skip: bootBlocked }, async (t) => {
  const root = await debianRoot({ arch: 'amd64', withSystemd: true, t });
  const before = await hostCgroupState();

  const handle = await bootSystemd(root, { t });
  t.comment(`boot to ${handle.state}: ${handle.bootMs} ms; failed units: ${handle.failedUnits.join(', ') || 'none'}`);
  t.ok(['running', 'degraded'].includes(handle.state), `systemd is ${handle.state}`);
  t.equal((await handle.exec(['cat', '/proc/1/comm'])).stdout.trim(), 'systemd', 'PID 1 is systemd');
  t.match(await handle.journal('systemd-journald.service'), /\S/, 'the journal of a unit can be read');

  let started = Date.now();
  const prepared = await prepareNestedPodman(handle);
  t.comment(`prepareNestedPodman: ${Date.now() - started} ms: ${prepared.actions.join('; ')}`);
  started = Date.now();
  const nested = await handle.exec(['podman', 'run', '--rm', prepared.image, 'echo', 'ok'], { timeoutMs: 2 * 60_000 });
  t.comment(`nested podman run: ${Date.now() - started} ms`);
  t.equal(nested.exitCode, 0, nested.stderr);
  t.equal(nested.stdout.trim(), 'ok', 'a container runs inside the booted root');

  started = Date.now();
  const report = await handle.stop();
  t.comment(`stop: ${Date.now() - started} ms; restored: ${report.restored.join('; ') || 'nothing'}${report.deferred ? ' (deferred: another booted root runs)' : ''}`);
  t.same((await run('podman', ['container', 'exists', handle.container])).exitCode, 1, 'the container is gone');
  if (report.deferred) {
    t.comment('another booted root was running: the host comparison is left to its stop()');
  } else {
    t.same(cgroupDifferences(before, await hostCgroupState()), [], "the host's cgroup mounts and hierarchies are as before the boot");
  }
  t.same(await handle.stop(), report, 'a second stop() does nothing new');
});
