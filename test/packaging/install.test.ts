// install.sh, run for real with bash on real files: installs, upgrades, a failed upgrade, the
// uninstall and the purge, each into its own temporary --root, so this machine is never changed
// (checked at the end). The installed launcher names its paths as seen from the root (as after
// `dpkg --root`), so it is run in a private mount namespace where the root's /opt is /opt.
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t, { type Test } from 'tap';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const INSTALL = join(REPO, 'install.sh');
const BUNDLE = join(REPO, 'dist', 'podvisor.mjs');
const VERSION = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const POD_FILTER = 'label=io.podvisor.managed=true';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, without a shell; never throws for an exit status. */
async function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const result = await execa(file, args, { reject: false, env, stdin: 'ignore' });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the install.sh of SOURCE (the checkout by default) with ARGS. */
function install(args: string[], source = REPO, env: Record<string, string> = {}): Promise<Run> {
  return run('bash', [join(source, 'install.sh'), ...args], env);
}

/** Runs ROOT/usr/local/bin/podvisor with ARGS, where ROOT's /opt is /opt (this process only). */
function podvisorIn(root: string, args: string[]): Promise<Run> {
  return run('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c',
    'mount --bind "$1/opt" /opt && exec "$1/usr/local/bin/podvisor" "${@:2}"', '_', root, ...args]);
}

/** A temporary directory, removed when the test ends. */
async function tempDir(t: Test, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `podvisor-install-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An unpacked release tarball of VERSION made from the checkout, with this machine's node. */
async function makeRelease(t: Test, version: string, options: { manPage?: boolean; execStart?: string } = {}): Promise<string> {
  const dir = join(await tempDir(t, `release-${version}`), `podvisor-${version}-linux-${process.arch}`);
  await mkdir(dir);
  for (const [from, to] of [['install.sh', 'install.sh'], ['packaging/make-launcher.sh', 'make-launcher.sh'],
    ['packaging/config.yaml', 'config.yaml'], ['LICENSE', 'LICENSE'], ['README.md', 'README.md']] as const) {
    await copyFile(join(REPO, from), join(dir, to));
  }
  // A bundle of this version (the version is written into the bundle as it is built).
  await execa(process.execPath, [join(REPO, 'scripts', 'bundle.mjs'), '--outfile', join(dir, 'podvisor.mjs'), '--version', version]);
  const unit = await readFile(join(REPO, 'packaging', 'podvisor.service'), 'utf8');
  await writeFile(join(dir, 'podvisor.service'), options.execStart ? unit.replace(/^ExecStart=\S+/m, `ExecStart=${options.execStart}`) : unit);
  await copyFile(process.execPath, join(dir, 'node'));
  await chmod(join(dir, 'node'), 0o755);
  await writeFile(join(dir, 'VERSION'), `${version}\n`);
  if (options.manPage) await writeFile(join(dir, 'podvisor.1'), `.TH PODVISOR 1 "" "podvisor ${version}"\n`);
  return dir;
}

/** Every path under DIR with its type, mode, owner, size, mtime and link target. */
async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  async function walk(path: string): Promise<void> {
    const info = await lstat(path);
    const target = info.isSymbolicLink() ? ` -> ${await readlink(path)}` : '';
    lines.push(`${path.slice(dir.length) || '/'} ${info.mode.toString(8)} ${info.uid} ${info.size} ${info.mtimeMs}${target}`);
    if (info.isDirectory()) for (const entry of (await readdir(path)).sort()) await walk(join(path, entry));
  }
  await walk(dir);
  return lines;
}

/** What a path is now (absent, or its mtime and, for a directory, its entries and their mtimes). */
async function hostState(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return `${path}: absent`;
  if (!info.isDirectory()) return `${path}: ${info.size} ${info.mtimeMs}`;
  const entries = await Promise.all((await readdir(path)).sort().map(async (entry) => `${entry}@${(await lstat(join(path, entry))).mtimeMs}`));
  return `${path}: ${info.mtimeMs} [${entries.join(' ')}]`;
}

const HOST_PATHS = ['/etc/containers/containers.conf', '/usr/local/bin', '/opt', '/opt/podvisor', '/etc/systemd/system',
  '/etc/systemd/system/podvisor.service', '/etc/podvisor', '/etc/pods.d', '/var/lib/podvisor', '/usr/local/share/man/man1'];
const hostBefore = await Promise.all(HOST_PATHS.map(hostState));

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

t.before(async () => {
  if (!(await exists(BUNDLE))) throw new Error(`${BUNDLE} is missing: run 'bash scripts/prepare.sh' (or 'npm run build') first`);
});

const SHELLCHECK = (await run('sh', ['-c', 'command -v shellcheck'])).code === 0;

t.test('shellcheck finds nothing in install.sh', { skip: SHELLCHECK ? false : 'shellcheck is not installed (apt-get install -y shellcheck): install.sh not linted' }, async (t) => {
  const result = await run('shellcheck', [INSTALL]);
  t.equal(result.code, 0, result.stdout);
});

t.test('usage: --help, an unknown flag, not root', async (t) => {
  const help = await install(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: install\.sh/);
  t.match(help.stdout, /--uninstall/);
  const dash = await run('sh', [INSTALL, '--help']);
  t.equal(dash.stdout, help.stdout, '`sh install.sh` runs it with bash');

  const unknown = await install(['--frobnicate']);
  t.equal(unknown.code, 2, 'an unknown flag is a usage error');
  t.match(unknown.stderr, /unknown option '--frobnicate'/);
  t.equal(unknown.stdout, '');

  const nobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', INSTALL]);
  t.equal(nobody.code, 1, 'not root and no --root');
  t.match(nobody.stderr, /must run as root.*--root DIR/);

  const noRoot = await install(['--root', '/nonexistent/podvisor-root']);
  t.equal(noRoot.code, 1);
  t.match(noRoot.stderr, /no such directory/);
});

t.test('a checkout without dist/ or with an old Node.js: a clear refusal, nothing built', async (t) => {
  const checkout = await tempDir(t, 'checkout');
  await mkdir(join(checkout, 'packaging'));
  for (const file of ['install.sh', 'package.json', 'packaging/make-launcher.sh', 'packaging/podvisor.service', 'packaging/config.yaml']) {
    await copyFile(join(REPO, file), join(checkout, file));
  }
  const root = await tempDir(t, 'root');
  const unbuilt = await install(['--root', root], checkout);
  t.equal(unbuilt.code, 1);
  t.match(unbuilt.stderr, /dist\/podvisor\.mjs is missing: run 'npm run build'/);
  t.same(await readdir(root), [], 'nothing written');

  await mkdir(join(checkout, 'dist'));
  await copyFile(BUNDLE, join(checkout, 'dist', 'podvisor.mjs'));
  const bin = await tempDir(t, 'bin');
  await writeFile(join(bin, 'node'), '#!/bin/sh\necho v18.20.4\n', { mode: 0o755 });
  const old = await install(['--root', root], checkout, { PATH: `${bin}:${process.env.PATH ?? ''}` });
  t.equal(old.code, 1);
  t.match(old.stderr, /Node\.js is v18\.20\.4, podvisor needs >= 20\.19: install from the release tarball .* or the \.deb/);
  t.same(await readdir(root), [], 'nothing written');
});

t.test('a fresh install from the checkout, then the same again changes nothing', async (t) => {
  const root = await tempDir(t, 'root');
  const first = await install(['--root', root]);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /--root: systemctl not called/);

  const release = join(root, 'opt/podvisor/releases', VERSION);
  t.equal(await readlink(join(root, 'opt/podvisor/current')), `releases/${VERSION}`);
  t.equal(await readlink(join(root, 'usr/local/bin/podvisor')), '/opt/podvisor/current/podvisor');
  t.equal(await readFile(join(release, 'lib/podvisor.mjs'), 'utf8'), await readFile(BUNDLE, 'utf8'), 'the bundle');
  t.notOk(await exists(join(release, 'node')), "a checkout runs on the machine's node");
  const node = (await run('sh', ['-c', 'command -v node'])).stdout;
  t.match(await readFile(join(release, 'podvisor'), 'utf8'), ` ${node} `, "the machine's node runs it");
  t.match(await readFile(join(release, 'podvisor'), 'utf8'), ` /opt/podvisor/releases/${VERSION}/lib/podvisor.mjs "$@"`);

  const unit = await readFile(join(root, 'etc/systemd/system/podvisor.service'), 'utf8');
  t.match(unit, /^ExecStart=\/usr\/local\/bin\/podvisor run --config \/etc\/podvisor\/config\.yaml$/m);
  t.equal(await readFile(join(root, 'etc/podvisor/config.yaml'), 'utf8'), await readFile(join(REPO, 'packaging/config.yaml'), 'utf8'));
  const manifests = await stat(join(root, 'etc/pods.d'));
  t.ok(manifests.isDirectory());
  t.equal(manifests.mode & 0o777, 0o755);
  t.equal(manifests.uid, 0);
  t.ok((await stat(join(root, 'var/lib/podvisor'))).isDirectory());
  const manPage = join(REPO, 'packaging/podvisor.1');
  t.equal(await exists(join(root, 'usr/local/share/man/man1/podvisor.1')), await exists(manPage), 'the man page when the checkout has one');

  const version = await podvisorIn(root, ['version']);
  t.equal(version.code, 0, version.stderr);
  t.equal(version.stdout, `podvisor ${VERSION}`);

  const before = await snapshot(root);
  const again = await install(['--root', root]);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, `podvisor ${VERSION} is already installed: nothing changed`);
  t.same(await snapshot(root), before, 'not a file, mode or mtime changed');
});

t.test('upgrades: config kept, current switched, the previous release kept, older ones deleted', async (t) => {
  const root = await tempDir(t, 'root');
  t.equal((await install(['--root', root])).code, 0);
  const config = join(root, 'etc/podvisor/config.yaml');
  const edited = `${await readFile(config, 'utf8')}log-level: debug\n`;
  await writeFile(config, edited);

  // A release whose unit names /usr/bin/podvisor (as the .deb's does): the installed one says /usr/local/bin.
  const second = await makeRelease(t, '9.0.0-rc.1', { manPage: true, execStart: '/usr/bin/podvisor' });
  const upgrade = await install(['--root', root], second);
  t.equal(upgrade.code, 0, upgrade.stderr);
  t.match(upgrade.stdout, `switched /opt/podvisor/current to releases/9.0.0-rc.1 (was ${VERSION})`);
  t.equal(await readlink(join(root, 'opt/podvisor/current')), 'releases/9.0.0-rc.1');
  t.same((await readdir(join(root, 'opt/podvisor/releases'))).sort(), [VERSION, '9.0.0-rc.1'].sort(), 'the previous release is kept');
  t.equal(await readFile(config, 'utf8'), edited, "the operator's config is kept");
  t.match(upgrade.stdout, 'kept /etc/podvisor/config.yaml');
  t.match(await readFile(join(root, 'etc/systemd/system/podvisor.service'), 'utf8'), /^ExecStart=\/usr\/local\/bin\/podvisor run /m);
  t.match(await readFile(join(root, 'usr/local/share/man/man1/podvisor.1'), 'utf8'), 'podvisor 9.0.0-rc.1');
  const node = join(root, 'opt/podvisor/releases/9.0.0-rc.1/node');
  t.equal((await stat(node)).size, (await stat(process.execPath)).size, "the release's own node is installed");
  // The launcher runs the release's node with the environment and flags of the bundle's shebang.
  const shebang = /^#!\/usr\/bin\/env -S (.*) node (.*)$/.exec((await readFile(BUNDLE, 'utf8')).split('\n', 1)[0]!);
  t.ok(shebang, 'the bundle starts with an env -S shebang');
  t.match(await readFile(join(root, 'opt/podvisor/releases/9.0.0-rc.1/podvisor'), 'utf8'),
    `exec env ${shebang?.[1]} /opt/podvisor/releases/9.0.0-rc.1/node ${shebang?.[2]} /opt/podvisor/releases/9.0.0-rc.1/lib/podvisor.mjs "$@"`);
  const version = await podvisorIn(root, ['version']);
  t.equal(version.stdout, 'podvisor 9.0.0-rc.1', version.stderr);

  const third = await install(['--root', root], await makeRelease(t, '9.1.0'));
  t.equal(third.code, 0, third.stderr);
  t.equal(await readlink(join(root, 'opt/podvisor/current')), 'releases/9.1.0');
  t.same((await readdir(join(root, 'opt/podvisor/releases'))).sort(), ['9.0.0-rc.1', '9.1.0']);
  t.match(third.stdout, `deleted the older release ${VERSION}`);
  t.equal((await podvisorIn(root, ['version'])).stdout, 'podvisor 9.1.0');
  t.equal(await readFile(config, 'utf8'), edited);

  // The same version with other files (a rebuild) replaces the release in place.
  const rebuilt = await makeRelease(t, '9.1.0');
  await writeFile(join(rebuilt, 'podvisor.mjs'), `${await readFile(join(rebuilt, 'podvisor.mjs'), 'utf8')}// rebuilt\n`);
  const replace = await install(['--root', root], rebuilt);
  t.equal(replace.code, 0, replace.stderr);
  t.match(replace.stdout, 'replacing release 9.1.0 (same version, other files)');
  t.match(await readFile(join(root, 'opt/podvisor/releases/9.1.0/lib/podvisor.mjs'), 'utf8'), /\/\/ rebuilt\n$/);
  t.same((await readdir(join(root, 'opt/podvisor/releases'))).sort(), ['9.0.0-rc.1', '9.1.0'], 'the roll-back release stays');
  t.equal((await podvisorIn(root, ['version'])).stdout, 'podvisor 9.1.0');
});

// An upgrade that fails part way, on a 32 MiB /opt (the new release's node does not fit) or a
// read-only releases/ directory: `current` and the launcher stay on the old release. The mounts
// live in a private mount namespace and end with it.
const FAILING_UPGRADE = `set -euo pipefail
root=$1 repo=$2 release=$3 how=$4
mkdir -p "$root/opt"
if [ "$how" = full ]; then mount -t tmpfs -o size=32m tmpfs "$root/opt"; fi
bash "$repo/install.sh" --root "$root" >/dev/null
if [ "$how" = read-only ]; then
  mount --bind "$root/opt/podvisor/releases" "$root/opt/podvisor/releases"
  mount -o remount,bind,ro "$root/opt/podvisor/releases"
fi
status=0
bash "$release/install.sh" --root "$root" >/dev/null 2>"$root/stderr" || status=$?
echo "status=$status"
echo "current=$(readlink "$root/opt/podvisor/current")"
echo "releases=$(ls -A "$root/opt/podvisor/releases" | tr '\\n' ' ')"
mount --bind "$root/opt" /opt
echo "version=$("$root/usr/local/bin/podvisor" version)"
cat "$root/stderr"
`;

for (const how of ['full', 'read-only'] as const) {
  t.test(`a failed upgrade (${how === 'full' ? 'disk full' : 'read-only releases/'}) leaves the previous install working`, async (t) => {
    const root = await tempDir(t, 'root');
    const release = await makeRelease(t, '9.2.0');
    const result = await run('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', FAILING_UPGRADE, '_', root, REPO, release, how]);
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, /^status=1$/m, 'the upgrade fails');
    t.match(result.stdout, new RegExp(`^current=releases/${VERSION}$`, 'm'), 'current still points to the old release');
    t.match(result.stdout, new RegExp(`^releases=${VERSION} $`, 'm'), 'no half-written release is left');
    t.match(result.stdout, new RegExp(`^version=podvisor ${VERSION}$`, 'm'), 'the launcher still runs the old release');
    t.match(result.stdout, /the previous installation \(if any\) is as it was/);
  });
}

t.test('podman missing or older than 4.3: said, with how to install it, and installed anyway', async (t) => {
  const bin = await tempDir(t, 'bin');
  const path = `${bin}:${process.env.PATH ?? ''}`;
  await writeFile(join(bin, 'podman'), '#!/bin/sh\necho "podman version 4.2.0"\n', { mode: 0o755 });
  const old = await install(['--root', await tempDir(t, 'root')], REPO, { PATH: path });
  t.equal(old.code, 0, old.stderr);
  t.match(old.stderr, /podman version 4\.2\.0 is older than 4\.3.*apt-get install podman.*Installing anyway/);

  await writeFile(join(bin, 'podman'), '#!/bin/sh\nexit 127\n', { mode: 0o755 });
  const missing = await install(['--root', await tempDir(t, 'root')], REPO, { PATH: path });
  t.equal(missing.code, 0, missing.stderr);
  t.match(missing.stderr, /podman is not installed.*apt-get install podman.*Installing anyway/);
});

t.test('--uninstall keeps config, state and manifests; says how to remove the pods', async (t) => {
  const root = await tempDir(t, 'root');
  t.equal((await install(['--root', root], await makeRelease(t, '9.3.0', { manPage: true }))).code, 0);
  await writeFile(join(root, 'etc/pods.d/web.yaml'), 'apiVersion: v1\nkind: Pod\n');
  await writeFile(join(root, 'var/lib/podvisor/status.json'), '{}\n');
  await writeFile(join(root, 'etc/podvisor/config.yaml'), 'log-level: debug\n');

  // With the copy of install.sh each release keeps, which the uninstall deletes as it runs.
  const result = await run('bash', [join(root, 'opt/podvisor/current/install.sh'), '--uninstall', '--root', root]);
  t.equal(result.code, 0, result.stderr);
  for (const gone of ['opt/podvisor', 'usr/local/bin/podvisor', 'etc/systemd/system/podvisor.service', 'usr/local/share/man/man1/podvisor.1']) {
    t.notOk(await exists(join(root, gone)), `${gone} removed`);
  }
  t.equal(await readFile(join(root, 'etc/podvisor/config.yaml'), 'utf8'), 'log-level: debug\n');
  t.ok(await exists(join(root, 'etc/pods.d/web.yaml')));
  t.ok(await exists(join(root, 'var/lib/podvisor/status.json')));
  t.match(result.stdout, 'keep running');
  t.match(result.stdout, `podman pod ls --filter ${POD_FILTER}`);
  t.match(result.stdout, `podman pod ls -q --filter ${POD_FILTER} | xargs -r podman pod rm -f`);

  const again = await install(['--uninstall', '--root', root]);
  t.equal(again.code, 0);
  t.match(again.stdout, 'podvisor is not installed');
});

t.test('--purge removes config and state, keeps a /etc/pods.d that holds manifests', async (t) => {
  const root = await tempDir(t, 'root');
  t.equal((await install(['--root', root])).code, 0);
  await writeFile(join(root, 'etc/pods.d/web.yaml'), 'apiVersion: v1\nkind: Pod\n');
  await writeFile(join(root, 'var/lib/podvisor/status.json'), '{}\n');

  const result = await install(['--purge', '--root', root]);
  t.equal(result.code, 0, result.stderr);
  for (const gone of ['opt/podvisor', 'usr/local/bin/podvisor', 'etc/systemd/system/podvisor.service', 'etc/podvisor', 'var/lib/podvisor']) {
    t.notOk(await exists(join(root, gone)), `${gone} removed`);
  }
  t.same(await readdir(join(root, 'etc/pods.d')), ['web.yaml'], 'the manifests stay');
  t.match(result.stdout, "kept /etc/pods.d: it holds 1 file(s), and manifests are the operator's files");

  await rm(join(root, 'etc/pods.d/web.yaml'));
  const empty = await install(['--purge', '--root', root]);
  t.equal(empty.code, 0, empty.stderr);
  t.notOk(await exists(join(root, 'etc/pods.d')), 'an empty /etc/pods.d is removed');
});

// install.sh as on a device, without --root: in a private mount namespace, a directory becomes
// the machine's / (chroot) with the host's /usr read-only in it, /usr/local a tmpfs, a running
// systemd (/run/systemd/system) and fakes of systemctl and podman that log their calls. Each
// step prints "== NAME", its exit status, the calls and its output.
const ON_A_DEVICE = `set -euo pipefail
root=$1 repo=$2 release=$3
mkdir -p "$root"/{usr,dev,proc,etc,tmp,src,rel,run/systemd/system}
mount --bind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
mount -t tmpfs tmpfs "$root/usr/local"
mount --rbind /dev "$root/dev"
mount --bind /proc "$root/proc"
mount --bind "$repo" "$root/src"
mount -o remount,bind,ro "$root/src"
mount --bind "$release" "$root/rel"
for dir in bin lib lib64 sbin; do
  if [ -L "/$dir" ]; then ln -s "$(readlink "/$dir")" "$root/$dir"
  elif [ -d "/$dir" ]; then mkdir "$root/$dir" && mount --bind "/$dir" "$root/$dir"; fi
done
cp /etc/ld.so.cache "$root/etc/"
mkdir -p "$root/usr/local/sbin"
printf '#!/bin/sh\necho "systemctl $*" >>/calls\n' >"$root/usr/local/sbin/systemctl"
printf '#!/bin/sh\necho "podman $*" >>/calls\n[ "$1" != --version ] || echo "podman version 4.3.1"\n[ ! -s /pods ] || cat /pods\n' >"$root/usr/local/sbin/podman"
chmod 755 "$root/usr/local/sbin/systemctl" "$root/usr/local/sbin/podman"
device() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin "$@"; }
step() {
  echo "== $1"
  shift
  rm -f "$root/calls"
  status=0
  device "$@" >"$root/out" 2>&1 || status=$?
  echo "status=$status"
  grep '^systemctl' "$root/calls" || true
  cat "$root/out"
}
step first-no-start bash /src/install.sh --no-start
step uninstall bash /src/install.sh --uninstall
step first bash /src/install.sh
echo "version: $(device podvisor version)"
step again bash /src/install.sh
step upgrade bash /rel/install.sh
echo "version: $(device podvisor version)"
step roll-back-no-start bash /src/install.sh --no-start
echo "version: $(device podvisor version)"
echo "releases: $(ls "$root/opt/podvisor/releases" | tr '\\n' ' ')"
echo 0123abcd >"$root/pods"
step purge-with-pods bash /src/install.sh --purge
echo "config: $(ls "$root/etc/podvisor")"
: >"$root/pods"
step purge bash /src/install.sh --purge
`;

t.test('on a device with systemd: enable --now first, try-restart on upgrade, --no-start, disable --now', async (t) => {
  const root = await tempDir(t, 'device');
  const release = await makeRelease(t, '9.4.0');
  const result = await run('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', ON_A_DEVICE, '_', root, REPO, release]);
  t.equal(result.code, 0, result.stderr);
  const steps = new Map(result.stdout.split(/^== /m).slice(1).map((text) => [text.slice(0, text.indexOf('\n')), text]));
  const step = (name: string) => steps.get(name) ?? '';
  /** The systemctl calls of one step, one a line. */
  const calls = (name: string) => step(name).split('\n').filter((line) => line.startsWith('systemctl ')).join('\n');

  t.match(step('first-no-start'), /^status=0$/m);
  t.equal(calls('first-no-start'), 'systemctl daemon-reload', '--no-start: no enable, no start');
  t.match(step('uninstall'), /^status=0$/m);
  t.equal(calls('uninstall'), 'systemctl disable --now podvisor.service\nsystemctl daemon-reload');
  t.match(step('first'), /^status=0$/m);
  t.equal(calls('first'), 'systemctl daemon-reload\nsystemctl enable --now podvisor.service', 'a first install enables and starts');
  t.match(result.stdout, new RegExp(`^version: podvisor ${VERSION}$`, 'm'), 'the launcher runs where the device sees it');
  t.equal(calls('again'), '', 'the same release again: systemctl is not called');
  t.match(step('again'), 'nothing changed');
  t.equal(calls('upgrade'), 'systemctl daemon-reload\nsystemctl try-restart podvisor.service', 'an upgrade restarts only a running agent');
  t.match(result.stdout, /^version: podvisor 9\.4\.0$/m);
  t.equal(calls('roll-back-no-start'), 'systemctl daemon-reload', 'a roll back with --no-start restarts nothing');
  t.match(step('roll-back-no-start'), `switched /opt/podvisor/current to releases/${VERSION} (was 9.4.0)`);
  t.match(result.stdout, new RegExp(`^releases: ${VERSION} 9\\.4\\.0 $`, 'm'), 'rolled back, the newer release kept');
  t.match(step('purge-with-pods'), /^status=1$/m);
  t.match(step('purge-with-pods'), /--purge refused: 1 pod\(s\) that podvisor ran still exist/);
  t.equal(calls('purge-with-pods'), '', 'refused before anything is stopped');
  t.match(result.stdout, /^config: config\.yaml$/m, 'nothing removed');
  t.match(step('purge'), /^status=0$/m);
  t.equal(calls('purge'), 'systemctl disable --now podvisor.service\nsystemctl daemon-reload');
  t.match(step('purge'), 'removed /etc/podvisor');
});

t.test('nothing outside the --root directories changed', async (t) => {
  t.same(await Promise.all(HOST_PATHS.map(hostState)), hostBefore);
});
