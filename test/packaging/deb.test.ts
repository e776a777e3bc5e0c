// The packages for devices, as an operator and Debian's tools see them: one .deb per
// architecture carrying its own Node.js runtime and one bundled file of podvisor, nothing of npm's
// or TypeScript's; byte for byte the same when built again; lintian silent but for the overrides
// that give their reason; the release tarball holding what install.sh expects; the arm64 package's
// runtime run under qemu; and the amd64 package installed, removed and purged by apt-get on a
// fresh Debian 12 root (debootstrap) that has no Node.js.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { chrootRun, debianRoot, ensureCommand, ensureQemuAarch64 } from '../support/debian-root.js';
import { builtPackages, inputsHash, REPO } from '../support/packages.js';

t.setTimeout(30 * 60_000);

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

const packages = await builtPackages();

/** The paths a .deb installs (without the leading ./). */
async function contents(deb: string): Promise<string[]> {
  const { stdout } = await execa('dpkg-deb', ['--contents', deb]);
  return stdout.split('\n').map((line) => line.replace(/^.* \.\//, '').replace(/ -> .*$/, ''));
}

async function field(deb: string, name: string): Promise<string> {
  return (await execa('dpkg-deb', ['--field', deb, name])).stdout;
}

for (const arch of ['amd64', 'arm64'] as const) {
  t.test(`${arch}: the runtime and one bundled file, nothing from npm, Debian 12's Node not needed`, async (t) => {
    const deb = packages.deb[arch];
    const files = await contents(deb);
    for (const path of ['usr/bin/podvisor', 'usr/lib/podvisor/node', 'usr/lib/podvisor/podvisor.mjs', 'lib/systemd/system/podvisor.service', 'etc/podvisor/config.yaml', 'usr/share/doc/podvisor/copyright', 'usr/share/doc/podvisor/changelog.gz', 'usr/share/doc/podvisor/node-LICENSE.gz']) {
      t.ok(files.includes(path), path);
    }
    t.same(files.filter((path) => /node_modules|\.d\.ts$|\.map$|\.ts$|package(-lock)?\.json$/.test(path)), [], 'no npm or TypeScript files');
    t.equal(await field(deb, 'Architecture'), arch);
    const depends = await field(deb, 'Depends');
    t.notMatch(depends, /nodejs/, 'no Node.js from the distribution');
    t.match(depends, /podman \(>= 4\.3\)/);
    t.match(depends, /libc6 \(>= 2\.28\)/, 'the glibc the runtime was linked against');
    t.equal((await execa('dpkg-deb', ['--info', deb, 'conffiles'])).stdout.trim(), '/etc/podvisor/config.yaml', 'the operator\'s config survives upgrades');
    const { stdout: elf } = await execa('bash', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/lib/podvisor/node | head -c 20 | od -An -tx1`, '_', deb]);
    // e_machine at offset 18: 0x3e x86-64, 0xb7 AArch64.
    t.equal(elf.trim().split(/\s+/)[18], arch === 'amd64' ? '3e' : 'b7', `the runtime is built for ${arch}`);
    const installed = Number(await field(deb, 'Installed-Size'));
    t.comment(`${arch}: package ${((await stat(deb)).size / 1e6).toFixed(1)} MB, installed ${(installed / 1024).toFixed(1)} MiB`);
  });
}

t.test('the copyright file names every module in the bundle, with its licence', async (t) => {
  const { stdout: copyright } = await execa('bash', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/share/doc/podvisor/copyright', '_', packages.deb.amd64]);
  t.match(copyright, /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/$/m);
  const dependencies = Object.keys((JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const name of dependencies) t.match(copyright, new RegExp(`^ ${name.replace('/', '\\/')} \\d+\\.\\d+\\.\\d+ \\((Expat|ISC|Apache-2\\.0)\\)$`, 'm'), `${name} is listed with its licence`);
  t.match(copyright, /^License: Expat\n Permission is hereby granted/m, 'the Expat terms in full');
  t.match(copyright, /Node\.js 24\.\d+\.\d+ runtime/);
});

t.test('built again from the same commit, every package is the same, byte for byte', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-rebuild-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await execa('bash', ['packaging/build.sh'], { cwd: REPO, env: { OUT_DIR: dir, ARCHES: 'amd64' }, timeout: 20 * 60_000 });
  // Only a comparison of the same sources means anything: someone editing the tree meanwhile is not a finding.
  t.equal(await inputsHash(), packages.inputs, 'the sources did not change while the test ran');
  t.equal(await sha256(join(dir, `podvisor_${packages.version}_amd64.deb`)), await sha256(packages.deb.amd64), 'the .deb');
  t.equal(await sha256(join(dir, `podvisor-${packages.version}-linux-amd64.tar.gz`)), await sha256(packages.tarball.amd64), 'the tarball');
});

t.test('lintian: no error and no warning but the overridden ones, each with its reason', async (t) => {
  await ensureCommand('lintian', 'lintian');
  for (const arch of ['amd64', 'arm64'] as const) {
    const { stdout, stderr, exitCode } = await execa('lintian', ['--pedantic', '--fail-on', 'error,warning', packages.deb[arch]], { reject: false, timeout: 600_000 });
    const tags = stdout.split('\n').filter((line) => /^[EW]: /.test(line));
    t.same(tags, [], `${arch}: no error or warning tag`);
    t.equal(exitCode, 0, `${arch}: lintian exits 0${stderr.trim() ? ` (${stderr.trim().split('\n').filter((line) => !/root privileges/.test(line)).join('; ')})` : ''}`);
  }
  const overrides = await readFile(join(REPO, 'packaging', 'lintian-overrides'), 'utf8');
  const blocks = overrides.split(/\n(?=#)/).filter((block) => /^podvisor:/m.test(block));
  t.ok(blocks.length > 0 && blocks.every((block) => block.startsWith('#')), 'every override follows a comment giving its reason');
});

t.test('the release tarball holds what install.sh installs, its runtime runs the bundle', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-tarball-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await execa('tar', ['-xzf', packages.tarball.amd64, '-C', dir]);
  const release = join(dir, `podvisor-${packages.version}-linux-amd64`);
  for (const name of ['install.sh', 'make-launcher.sh', 'podvisor.mjs', 'node', 'podvisor.service', 'config.yaml', 'LICENSE', 'README.md', 'VERSION']) {
    t.ok(await stat(join(release, name)).then(() => true, () => false), name);
  }
  t.equal((await readFile(join(release, 'VERSION'), 'utf8')).trim(), packages.version);
  const { stdout } = await execa('env', ['-u', 'NODE_OPTIONS', join(release, 'node'), '--version']);
  t.match(stdout, /^v24\./, 'the bundled Node.js LTS');
  const version = await execa('env', ['-u', 'NODE_OPTIONS', join(release, 'node'), join(release, 'podvisor.mjs'), 'version']);
  t.match(version.stdout, new RegExp(`podvisor ${packages.version.replaceAll('.', '\\.')}`));

  // The agent on the bundled runtime, with no pods and no API, loads neither undici (fetch) nor
  // http: an ES import of http would build its namespace, whose WebSocket getters load undici
  // (3.6 MB the agent never uses), and http itself waits for the first probe or the API.
  const work = join(dir, 'agent');
  await mkdir(join(work, 'manifests'), { recursive: true });
  const preload = join(work, 'modules.cjs');
  await writeFile(preload, `setTimeout(() => { require('node:fs').writeFileSync(${JSON.stringify(join(work, 'modules.json'))}, JSON.stringify(process.moduleLoadList)); process.exit(0); }, 3000);\n`);
  await execa('env', ['-u', 'NODE_OPTIONS', join(release, 'node'), '--require', preload, join(release, 'podvisor.mjs'), 'run', '--manifest-dir', join(work, 'manifests'), '--state-dir', join(work, 'state'), '--node-name', 'tarball-modules', '--log-level', 'warn'], { reject: false, timeout: 60_000 });
  const modules = JSON.parse(await readFile(join(work, 'modules.json'), 'utf8')) as string[];
  t.ok(modules.includes('NativeModule net'), 'the list is of the running agent (it has loaded net)');
  t.notOk(modules.some((name) => /undici/.test(name)), 'undici is not loaded');
  t.notOk(modules.some((name) => /^NativeModule (http|https|http2)$/.test(name)), 'nor http, https, http2: no probe or API needs them');
});

t.test('arm64: the runtime and `podvisor validate` run under qemu-user-static', async (t) => {
  const qemu = await ensureQemuAarch64();
  const libraries = await debianRoot({ arch: 'arm64', withSystemd: false, t });
  const unpacked = await mkdtemp(join(tmpdir(), 'podvisor-arm64-'));
  t.teardown(() => rm(unpacked, { recursive: true, force: true }));
  await execa('dpkg-deb', ['-x', packages.deb.arm64, unpacked]);
  // The package's own launcher, with its paths moved to the unpacked copy and its runtime run
  // through qemu (binfmt_misc is not mounted here, so an arm64 binary is not run directly).
  const launcher = (await readFile(join(unpacked, 'usr/bin/podvisor'), 'utf8'))
    .replace(' /usr/lib/podvisor/node ', ` ${qemu} -L ${libraries} ${unpacked}/usr/lib/podvisor/node `)
    .replace(' /usr/lib/podvisor/podvisor.mjs ', ` ${unpacked}/usr/lib/podvisor/podvisor.mjs `);
  const script = join(unpacked, 'podvisor-under-qemu');
  await writeFile(script, launcher, { mode: 0o755 });
  const node = await execa('env', ['-u', 'NODE_OPTIONS', qemu, '-L', libraries, join(unpacked, 'usr/lib/podvisor/node'), '-p', 'process.arch + " " + process.version'], { timeout: 120_000 });
  t.match(node.stdout, /^arm64 v24\./, 'the arm64 runtime runs');
  // Without tap's NODE_OPTIONS (added to every child it starts): the runtime would load its hooks.
  const run = async (...args: string[]) => await execa('env', ['-u', 'NODE_OPTIONS', script, ...args], { reject: false, timeout: 120_000 });
  const version = await run('version');
  t.equal(version.stdout, `podvisor ${packages.version}`);
  const good = await run('validate', join(REPO, 'manifests.d'));
  t.equal(good.exitCode, 0, `the examples validate${good.stderr ? `: ${good.stderr}` : ''}`);
  const badFile = join(unpacked, 'bad.yaml');
  await writeFile(badFile, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n    - name: x\n      image: 42\n');
  const bad = await run('validate', badFile);
  t.equal(bad.exitCode, 1);
  t.match(bad.stdout + bad.stderr, `${badFile}:8:7: spec.containers[0].image`, 'a finding names file, line, column and field');
});

t.test('a fresh Debian 12 without Node.js: apt-get installs the .deb; remove and purge leave nothing behind', async (t) => {
  const root = await debianRoot({ arch: 'amd64', withSystemd: true, t });
  const inRoot = async (script: string, timeoutMs = 120_000) => await chrootRun(root, ['sh', '-c', script], { timeoutMs });
  await copyFile(packages.deb.amd64, join(root, 'var/tmp/podvisor.deb'));
  t.not((await inRoot('command -v node nodejs')).exitCode, 0, 'no Node.js on the machine');
  const install = await inRoot('apt-get update -qq && apt-get install -y -qq /var/tmp/podvisor.deb', 15 * 60_000);
  t.equal(install.exitCode, 0, `apt-get install ./podvisor.deb${install.exitCode ? `: ${install.stderr}` : ''}`);
  t.not((await inRoot('command -v node nodejs')).exitCode, 0, 'and none after: the package carries its own');
  t.equal((await inRoot('podvisor version')).stdout.trim(), `podvisor ${packages.version}`, 'podvisor version, on the bundled runtime');
  const validate = await inRoot('podvisor validate /usr/share/doc/podvisor/examples');
  t.equal(validate.exitCode, 0, `podvisor validate of the examples${validate.exitCode ? `: ${validate.stdout}${validate.stderr}` : ''}`);
  const bad = await inRoot("printf 'apiVersion: v1\\nkind: Pod\\nmetadata:\\n  name: x\\nspec:\\n  containers: nope\\n' >/etc/pods.d/bad.yaml && podvisor validate /etc/pods.d/bad.yaml");
  t.equal(bad.exitCode, 1, 'a bad manifest fails validation');
  t.match(bad.stdout + bad.stderr, '/etc/pods.d/bad.yaml:6:', 'naming file and line');
  t.equal((await inRoot('rm /etc/pods.d/bad.yaml && readlink /etc/systemd/system/multi-user.target.wants/podvisor.service')).stdout.trim(), '/lib/systemd/system/podvisor.service', 'the unit is enabled');
  // node-cron checks a heartbeat other than the default: loaded from the bundle, not node_modules.
  const heartbeat = await inRoot("printf 'publish:\\n  webhook: https://fleet.example/pods\\n  heartbeat: \"61 * * * *\"\\n' >/var/tmp/c.yaml && podvisor run --config /var/tmp/c.yaml");
  t.equal(heartbeat.exitCode, 2);
  t.equal(heartbeat.stderr.trim(), 'podvisor: /var/tmp/c.yaml:3:3: publish.heartbeat: --publish-heartbeat must be a cron expression (for example "* * * * *", every minute)');

  await inRoot('mkdir -p /var/lib/podvisor && echo state >/var/lib/podvisor/status.json && echo token >/etc/podvisor/token');
  const remove = await inRoot('apt-get remove -y -qq podvisor');
  t.equal(remove.exitCode, 0, 'apt-get remove');
  t.match(remove.stdout, /the pods it ran keep running/, 'remove says the pods keep running');
  t.match(remove.stdout, /xargs -r podman pod rm -f/, 'and how to remove them');
  t.equal((await inRoot('test -e /usr/bin/podvisor || test -e /usr/lib/podvisor; echo $?')).stdout.trim(), '1', 'the program is gone');
  t.equal((await inRoot('cat /var/lib/podvisor/status.json /etc/podvisor/config.yaml >/dev/null && echo kept')).stdout.trim(), 'kept', 'state and config stay until purge');
  t.equal((await inRoot('readlink /etc/systemd/system/podvisor.service')).stdout.trim(), '/dev/null', 'the unit is masked while removed');

  const purge = await inRoot('apt-get purge -y -qq podvisor');
  t.equal(purge.exitCode, 0, 'apt-get purge');
  const left = await inRoot('ls -d /var/lib/podvisor /etc/podvisor /etc/pods.d /etc/systemd/system/podvisor.service /etc/systemd/system/multi-user.target.wants/podvisor.service /var/lib/systemd/deb-systemd-helper-enabled/podvisor.service.dsh-also 2>/dev/null; true');
  t.equal(left.stdout.trim(), '', 'purge leaves no state, config, manifest directory, mask or enable link');
});
