// Real Debian 12 roots for the tests of podvisor's .deb and its systemd service: a root built by
// debootstrap once and cached, a chroot that cannot leave mounts behind, and a root booted with
// systemd as PID 1 in a privileged podman container, inside which podman itself can run. The
// packaging tests need the real thing (dpkg, systemd, a second podman), and building it costs a
// minute, so the build is cached and shared, while every caller gets a copy of its own.
//
// What it costs here (2 cores; from this file's test, December 2026; the machine was shared with
// other test runs, load 3-5, which roughly doubles the build times):
//   first build, amd64 + systemd (debootstrap + tar):  183 s loaded (debootstrap alone: 59 s idle)
//   first build, amd64 minbase:                         110-140 s loaded
//   first build, arm64 first stage (--foreign):         64 s loaded (debootstrap alone: 27 s idle)
//   cached copy (tar -x of a 210-250 MB tarball):       0.5-3.7 s
//   chrootRun of a short command:                       45-260 ms
//   boot to `running` (podman run + systemd):           1.3-4 s, no failed unit
//   prepareNestedPodman (apt-get install podman, image): 18-53 s
//   nested `podman run --rm ... echo ok`:               1.1-1.6 s
//   stop (podman rm, shutdown, cgroups put back):       2.1-3.3 s
// Two processes asking at once for a root not yet cached run one debootstrap (a lock per key).
//
// Found on this host (see also /work/shared/HOST-NOTES.md):
// - `podman run -d --privileged --systemd=always --rootfs ROOT /sbin/init` boots; systemd reaches
//   `running` with no failed unit. Podman mounts tmpfs on /tmp, /run and /var/log/journal inside:
//   files put in ROOT/tmp from the host are hidden there; use ROOT/var/tmp or `podman cp`.
// - systemd inside changes the HOST's cgroup state in ways `podman rm` does not undo: it remounts
//   the shared cgroup2 superblock with `nsdelegate` (visible in the host's mountinfo), and it
//   mounts fresh v1 hierarchies for the controllers the host leaves unmounted (here
//   `net_cls,net_prio` and `perf_event`), which stay bound, mounted nowhere, after the container
//   is gone. Where the host had them mounted, the notes saw those host mounts vanish instead. So
//   boot records the host's state once (while no other booted root runs) and the last stop puts
//   it back: re-mounts what vanished (co-mounted controllers together), releases the lingering
//   hierarchies (rmdir their empty cgroups, unmount, so the kernel frees them), and resets
//   cgroup2's options with mount(2) itself, since util-linux's `mount -o remount` re-sends the
//   current options. Then it compares, and throws if the host still differs.
// - Nested podman needs nothing here: podman inside the container sets no default ulimits (its
//   containers show HostConfig.Ulimits = [], so the host's RLIMIT_NOFILE quirk does not bite; the
//   helper still writes `default_ulimits = []` inside, as setup-host.sh does on the host, since
//   that is harmless), and the container sees the host's cgroup2 with no controllers once
//   setup-host.sh moved hugetlb. The hybrid-cgroup quirk cannot be fixed inside the container at
//   all (which hierarchy a controller is bound to is kernel-wide), so prepareNestedPodman names it
//   instead of touching the host.
// - The host lacks CAP_SYS_RESOURCE, so no per-container `--ulimit` (not even `host` or
//   `nofile=-1:-1`) starts the outer container; it relies on setup-host.sh's `default_ulimits = []`.
// - The arm64 root is debootstrap's first stage only (packages unpacked, nothing configured), made
//   without emulation; `qemu-aarch64-static -L ROOT ROOT/usr/bin/true` runs against it. binfmt_misc
//   is not mounted here, so arm64 binaries run only through qemu-aarch64-static explicitly.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Where built roots are kept between runs (gitignored with the rest of .cache/). */
export const CACHE_DIR = join(REPO, '.cache', 'debian');
export const SUITE = 'bookworm';
/** Bump when the recipe changes, so a cached root made the old way is not reused. */
const RECIPE = 1;
const MINUTE = 60_000;
const DEFAULT_TIMEOUT_MS = 2 * MINUTE;
/** Label on every booted container: how a stop knows whether another booted root still runs. */
const BOOT_LABEL = 'io.podvisor.test=debian-root';
/** Host-wide: serialises boots and stops against the recorded cgroup state. */
const BOOT_LOCK = join(tmpdir(), 'podvisor-debian-root-boot.lock');
const CGROUP_BASELINE = join(tmpdir(), 'podvisor-debian-root-cgroups.json');
const HOST_APT_LOCK = join(tmpdir(), 'podvisor-debian-root-apt.lock');
/** PATH for commands run in a root, and for finding debootstrap/chroot in /usr/sbin on the host. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type DebianArch = 'amd64' | 'arm64';

export interface DebianRootOptions {
  arch: DebianArch;
  /** amd64 only: systemd, systemd-sysv and dbus, so the root boots. */
  withSystemd: boolean;
  /** Removes the copy when the test ends (tap's `t` fits). */
  t?: Teardown;
  /** Where the copy goes; the system temp directory by default. */
  parentDir?: string;
}

/** Anything that runs cleanup when a test ends: tap's `t.teardown`. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface RunResult {
  command: string;
  stdout: string;
  stderr: string;
  /** -1 when the process was killed by a signal or did not start. */
  exitCode: number;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** Added to the environment (for chrootRun: to a clean one). */
  env?: Record<string, string>;
  signal?: AbortSignal;
}

export type DebianRootErrorCode =
  | 'NOT_SUPPORTED'
  | 'COMMAND_FAILED'
  | 'BUILD_FAILED'
  | 'LOCK_TIMEOUT'
  | 'BOOT_FAILED'
  | 'CGROUP_RESTORE_FAILED'
  | 'NESTED_PODMAN_UNSUPPORTED'
  | 'UNSAFE_REMOVE';

/** Every failure of this module: a stable code, the command's output in the message, the cause kept. */
export class DebianRootError extends Error {
  readonly code: DebianRootErrorCode;
  constructor(code: DebianRootErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DebianRootError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Runs a command with a timeout and returns its output and exit code; never rejects on exit status. */
export async function run(file: string, args: readonly string[], options: RunOptions & { cleanEnv?: boolean } = {}): Promise<RunResult> {
  const result = await execa(file, [...args], {
    reject: false,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    forceKillAfterDelay: 5_000,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    ...(options.cleanEnv ? { env: { PATH: SYSTEM_PATH, ...options.env }, extendEnv: false } : { env: { ...options.env } }),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  const command = [file, ...args].join(' ');
  const started = result.exitCode !== undefined || result.signal !== undefined;
  return {
    command,
    stdout: String(result.stdout ?? ''),
    // A command that did not start (ENOENT) has no stderr: the reason is in execa's message.
    stderr: started ? String(result.stderr ?? '') : result.shortMessage ?? '',
    exitCode: result.exitCode ?? -1,
    timedOut: result.timedOut,
  };
}

/** Runs a command and throws DebianRootError (COMMAND_FAILED unless `code` says) unless it exits 0. */
export async function must(file: string, args: readonly string[], options: RunOptions & { cleanEnv?: boolean; code?: DebianRootErrorCode } = {}): Promise<RunResult> {
  const result = await run(file, args, options);
  if (result.exitCode !== 0) throw new DebianRootError(options.code ?? 'COMMAND_FAILED', failureText(result));
  return result;
}

/** One line naming the command, how it ended, and the end of its output. */
function failureText(result: RunResult): string {
  const how = result.timedOut ? 'timed out' : `exit ${result.exitCode}`;
  return `${result.command}: ${how}: ${tail(`${result.stderr}\n${result.stdout}`)}`;
}

/** The last lines of a command's output, enough to say why it failed. */
function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** The path of an executable on PATH or in the system directories, or undefined. */
export async function which(command: string): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SYSTEM_PATH.split(':')];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when something (even a dangling symlink) is at `path`. */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Preconditions

/** Why this machine cannot build Debian roots (undefined when it can): the reason for a test's skip. */
export function debianRootUnsupported(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, chroot and mount)';
  if (process.arch !== 'x64') return `builds amd64 roots natively, so needs an x64 host, this is ${process.arch}`;
  return undefined;
}

/** Why this machine cannot boot a root with systemd (undefined when it can). */
export async function bootUnsupported(): Promise<string | undefined> {
  const basic = debianRootUnsupported();
  if (basic) return basic;
  if (!(await which('podman'))) return 'podman is not installed: run `bash scripts/setup-host.sh`';
  return undefined;
}

/** Throws NOT_SUPPORTED with debianRootUnsupported()'s reason. */
function assertSupported(): void {
  const why = debianRootUnsupported();
  if (why) throw new DebianRootError('NOT_SUPPORTED', why);
}

/** Installs Debian packages on the host (test tools), one installer at a time, updating the lists if needed. */
async function aptInstallOnHost(packages: readonly string[]): Promise<void> {
  await withLock(HOST_APT_LOCK, 'apt-get on the host', 15 * MINUTE, async () => {
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    const install = ['install', '-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...packages];
    const first = await run('apt-get', install, { env, timeoutMs: 10 * MINUTE });
    if (first.exitCode === 0) return;
    await must('apt-get', ['update', '-qq', '-o', 'DPkg::Lock::Timeout=300'], { env, timeoutMs: 5 * MINUTE });
    await must('apt-get', install, { env, timeoutMs: 10 * MINUTE });
  });
}

/** The path of a test tool, installed from the Debian package that has it when missing. */
export async function ensureCommand(command: string, debianPackage: string): Promise<string> {
  const found = await which(command);
  if (found) return found;
  await aptInstallOnHost([debianPackage]);
  const installed = await which(command);
  if (!installed) throw new DebianRootError('COMMAND_FAILED', `${command} is still missing after apt-get install ${debianPackage}`);
  return installed;
}

/** The path of debootstrap, installed from Debian's package when missing. */
export async function ensureDebootstrap(): Promise<string> {
  return await ensureCommand('debootstrap', 'debootstrap');
}

/** The path of qemu-aarch64-static, installed from Debian's qemu-user-static when missing. */
export async function ensureQemuAarch64(): Promise<string> {
  assertSupported();
  return await ensureCommand('qemu-aarch64-static', 'qemu-user-static');
}

// ---------------------------------------------------------------------------------------------
// Locks: an exclusive mkdir, with the owner's pid inside so a dead owner's lock is taken over.

/** Runs `fn` holding the lock at `lockPath`; waits up to `timeoutMs` for it. */
export async function withLock<T>(lockPath: string, what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  await mkdir(dirname(lockPath), { recursive: true });
  for (;;) {
    try {
      await mkdir(lockPath);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await lockIsStale(lockPath)) {
      // Rename first: of two waiters that both saw it stale, only one takes it away.
      const moved = `${lockPath}.stale-${process.pid}-${randomBytes(3).toString('hex')}`;
      try {
        await rename(lockPath, moved);
        await rm(moved, { recursive: true, force: true });
      } catch {
        // the other waiter was first
      }
      continue;
    }
    if (Date.now() > deadline) throw new DebianRootError('LOCK_TIMEOUT', `${what}: lock ${lockPath} still held after ${timeoutMs} ms`);
    await sleep(500);
  }
  try {
    await writeFile(join(lockPath, 'owner'), `${process.pid}\n`);
    return await fn();
  } finally {
    await rm(lockPath, { recursive: true, force: true });
  }
}

/** True when the lock's owner process is gone (or never wrote its pid, long ago). */
async function lockIsStale(lockPath: string): Promise<boolean> {
  let owner: string;
  try {
    owner = await readFile(join(lockPath, 'owner'), 'utf8');
  } catch {
    // Between mkdir and writing the owner file: stale only if that moment is long past.
    try {
      return Date.now() - (await stat(lockPath)).mtimeMs > 30_000;
    } catch {
      return false;
    }
  }
  const pid = Number.parseInt(owner, 10);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

// ---------------------------------------------------------------------------------------------
// The host's Debian mirror: only the mirror this machine already uses may be reachable.

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
}

/** The host's enabled `deb` sources for this suite (bookworm, bookworm-updates, bookworm-security, ...). */
export async function hostDebianSources(): Promise<AptSource[]> {
  const texts: { name: string; text: string }[] = [];
  for (const file of ['/etc/apt/sources.list']) {
    try {
      texts.push({ name: file, text: await readFile(file, 'utf8') });
    } catch {
      // absent
    }
  }
  try {
    for (const entry of (await readdir('/etc/apt/sources.list.d')).sort()) {
      if (!entry.endsWith('.list') && !entry.endsWith('.sources')) continue;
      texts.push({ name: entry, text: await readFile(join('/etc/apt/sources.list.d', entry), 'utf8') });
    }
  } catch {
    // absent
  }
  const sources = texts.flatMap(({ name, text }) => (name.endsWith('.sources') ? parseDeb822Sources(text) : parseOneLineSources(text)));
  const ours = sources.filter((source) => /^https?:\/\//.test(source.uri) && source.suites.some((suite) => suite === SUITE || suite.startsWith(`${SUITE}-`)));
  if (ours.length > 0) return ours;
  return [
    { uri: 'http://deb.debian.org/debian', suites: [SUITE, `${SUITE}-updates`], components: ['main'] },
    { uri: 'http://deb.debian.org/debian-security', suites: [`${SUITE}-security`], components: ['main'] },
  ];
}

/** `deb [options] URI SUITE COMPONENT...` lines (sources.list, *.list). */
function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (type === 'deb' && uri && suite) sources.push({ uri, suites: [suite], components });
  }
  return sources;
}

/** deb822 stanzas (*.sources), skipping `Enabled: no` and deb-src. */
function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match) fields.set(match[1]!.toLowerCase(), match[2]!.trim());
    }
    if (fields.get('enabled') === 'no' || !(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    const components = (fields.get('components') ?? '').split(/\s+/).filter(Boolean);
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) sources.push({ uri, suites, components });
  }
  return sources;
}

/** The mirror of the main archive (the source that carries the suite itself). */
async function hostMirror(): Promise<string> {
  const sources = await hostDebianSources();
  return (sources.find((source) => source.suites.includes(SUITE)) ?? sources[0])?.uri ?? 'http://deb.debian.org/debian';
}

/** The root's apt sources: the host's Debian entries for this suite, one line each. */
async function rootSourcesList(): Promise<string> {
  const lines = (await hostDebianSources()).flatMap((source) =>
    source.suites.map((suite) => `deb ${source.uri} ${suite} ${(source.components.length > 0 ? source.components : ['main']).join(' ')}`),
  );
  return `# Written by test/support/debian-root.ts: the mirror the host uses.\n${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Building and caching roots

interface RootRecipe {
  key: string;
  debootstrapArgs: string[];
  /** Files whose absence means the build is not what was asked for. */
  mustExist: string[];
}

/** The cache key, debootstrap arguments and expected files for a root's options. */
function recipeFor(options: DebianRootOptions): RootRecipe {
  if (options.arch === 'arm64') {
    if (options.withSystemd) throw new DebianRootError('NOT_SUPPORTED', 'an arm64 root is a first-stage library root only; it cannot have systemd');
    return {
      key: `${SUITE}-arm64-foreign-r${RECIPE}`,
      debootstrapArgs: ['--variant=minbase', '--arch=arm64', '--foreign', '--include=libc6,libgcc-s1,libstdc++6'],
      mustExist: ['lib/ld-linux-aarch64.so.1', 'usr/lib/aarch64-linux-gnu/libc.so.6', 'usr/lib/aarch64-linux-gnu/libgcc_s.so.1', 'usr/lib/aarch64-linux-gnu/libstdc++.so.6', 'usr/bin/true'],
    };
  }
  if (options.withSystemd) {
    return {
      key: `${SUITE}-amd64-systemd-r${RECIPE}`,
      debootstrapArgs: ['--variant=minbase', '--arch=amd64', '--include=systemd,systemd-sysv,dbus'],
      mustExist: ['sbin/init', 'lib/systemd/systemd', 'usr/bin/dbus-daemon', 'usr/bin/apt-get'],
    };
  }
  return { key: `${SUITE}-amd64-minbase-r${RECIPE}`, debootstrapArgs: ['--variant=minbase', '--arch=amd64'], mustExist: ['usr/bin/apt-get'] };
}

const TAR_FLAGS = ['--numeric-owner', '--xattrs', '--xattrs-include=*'];

/** The cached tarball of a root, built once across concurrent callers. */
export async function cachedRootTarball(options: DebianRootOptions): Promise<string> {
  assertSupported();
  const recipe = recipeFor(options);
  const tarball = join(CACHE_DIR, `${recipe.key}.tar`);
  if (await exists(tarball)) return tarball;
  await mkdir(CACHE_DIR, { recursive: true });
  await withLock(`${tarball}.lock`, `building ${recipe.key}`, 30 * MINUTE, async () => {
    if (!(await exists(tarball))) await buildTarball(recipe, tarball);
  });
  return tarball;
}

/** Runs debootstrap into a scratch directory, checks it, and publishes it as a tarball by rename. */
async function buildTarball(recipe: RootRecipe, tarball: string): Promise<void> {
  const debootstrap = await ensureDebootstrap();
  // Builds of this key left behind by a killed process: nobody else can be using them, we hold the lock.
  for (const entry of await readdir(CACHE_DIR)) {
    if (entry.startsWith(`build-${recipe.key}-`)) await removeTree(join(CACHE_DIR, entry));
  }
  const work = await mkdtemp(join(CACHE_DIR, `build-${recipe.key}-`));
  const target = join(work, 'root');
  try {
    // In a private mount namespace: whatever debootstrap mounts in the target dies with it.
    await must('unshare', ['--mount', '--propagation', 'private', '--', debootstrap, ...recipe.debootstrapArgs, SUITE, target, await hostMirror()], {
      timeoutMs: 20 * MINUTE,
      code: 'BUILD_FAILED',
    });
    for (const file of recipe.mustExist) {
      if (!(await exists(join(target, file)))) throw new DebianRootError('BUILD_FAILED', `debootstrap made ${recipe.key} without ${file}`);
    }
    await writeFile(join(target, 'etc/apt/sources.list'), await rootSourcesList());
    const partial = `${tarball}.${process.pid}.partial`;
    await must('tar', [...TAR_FLAGS, '-C', target, '-cf', partial, '.'], { timeoutMs: 10 * MINUTE });
    await rename(partial, tarball);
  } finally {
    await removeTree(work);
  }
}

/**
 * A fresh copy of a cached Debian 12 root (built on first use), in a new temporary directory the
 * caller owns. With `t`, the copy is removed when the test ends; tap runs teardowns last-in first
 * out, so a bootSystemd(root, { t }) made afterwards is stopped before its root goes.
 */
export async function debianRoot(options: DebianRootOptions): Promise<string> {
  const tarball = await cachedRootTarball(options);
  const recipe = recipeFor(options);
  const parent = options.parentDir ?? tmpdir();
  const root = await mkdtemp(join(parent, `podvisor-debian-${recipe.key}-`));
  options.t?.teardown(() => removeDebianRoot(root));
  try {
    await must('tar', [...TAR_FLAGS, '-C', root, '-xpf', tarball], { timeoutMs: 10 * MINUTE });
  } catch (error) {
    if (!options.t) await removeDebianRoot(root);
    throw error;
  }
  return root;
}

/** The host's mount points at or below `path`, deepest first. */
async function mountsUnder(path: string): Promise<string[]> {
  const prefix = resolve(path);
  return (await readMountinfo())
    .map((entry) => entry.mountPoint)
    .filter((mountPoint) => mountPoint === prefix || mountPoint.startsWith(`${prefix}/`))
    .sort((a, b) => b.length - a.length);
}

/** Removes a directory tree that may hold a root; unmounts anything left mounted in it first, never crosses into a mount. */
async function removeTree(path: string): Promise<void> {
  if (!(await exists(path))) return;
  for (const mountPoint of await mountsUnder(path)) await run('umount', ['--lazy', mountPoint], { timeoutMs: 30_000 });
  const left = await mountsUnder(path);
  if (left.length > 0) throw new DebianRootError('UNSAFE_REMOVE', `not removing ${path}: still mounted there: ${left.join(', ')}`);
  await must('rm', ['-rf', '--one-file-system', path], { timeoutMs: 5 * MINUTE });
}

/** Removes a root made by debianRoot (refusing while anything is mounted inside it). */
export async function removeDebianRoot(root: string): Promise<void> {
  await removeTree(root);
}

// ---------------------------------------------------------------------------------------------
// chroot

export interface ChrootRunOptions extends RunOptions {
  /** Copy the host's /etc/resolv.conf into the root first (default true), so apt-get can resolve the mirror. */
  resolvConf?: boolean;
}

// Runs in a new mount and PID namespace: /proc (fresh, of the new PID namespace), /sys (fresh,
// read-only) and /dev (the host's, bound) are mounted only there. When the command ends, or
// unshare is killed on timeout (--kill-child), the namespaces die and with them every mount and
// every daemon a package script left running: nothing can stay mounted on the host.
// NODE_OPTIONS goes: tap's hooks add theirs to every child's environment, clean or not, and a
// Node.js inside the root cannot load them.
const CHROOT_SCRIPT = `set -e
unset NODE_OPTIONS
root=$1; shift
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount --rbind /dev "$root/dev"
exec chroot "$root" "$@"`;

/** Runs `argv` inside `root` with chroot, with /proc, /sys and /dev mounted for the duration only. */
export async function chrootRun(root: string, argv: readonly string[], options: ChrootRunOptions = {}): Promise<RunResult> {
  assertSupported();
  const absolute = resolve(root);
  for (const dir of ['proc', 'sys', 'dev', 'etc']) await mkdir(join(absolute, dir), { recursive: true });
  if (options.resolvConf ?? true) {
    const target = join(absolute, 'etc/resolv.conf');
    // A symlink (systemd-resolved's) would point the copy somewhere on the host's side.
    if (await exists(target)) await unlink(target);
    await copyFile('/etc/resolv.conf', target);
  }
  return await run('unshare', ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', '--', 'sh', '-c', CHROOT_SCRIPT, 'sh', absolute, ...argv], {
    ...options,
    cleanEnv: true,
    env: { HOME: '/root', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...options.env },
  });
}

// ---------------------------------------------------------------------------------------------
// The host's cgroup state: what a booted systemd changes and stop() must put back

export interface CgroupMount {
  mountPoint: string;
  fsType: string;
  /** Per-mount flags, e.g. rw,nosuid,nodev,noexec,relatime. */
  mountOptions: string;
  /** Superblock options, sorted: the controllers of a v1 hierarchy, cgroup2's flags. */
  superOptions: string;
}

export interface CgroupState {
  /** The cgroup and cgroup2 mounts of the host's mount namespace, by mount point. */
  mounts: CgroupMount[];
  /** The controllers bound to each v1 hierarchy (mounted or not), e.g. "net_cls,net_prio". */
  bound: string[];
}

interface MountinfoEntry {
  mountPoint: string;
  mountOptions: string;
  fsType: string;
  superOptions: string;
}

/** The mounts of this process's mount namespace (the host's, for a test process). */
async function readMountinfo(): Promise<MountinfoEntry[]> {
  const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
  const entries: MountinfoEntry[] = [];
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6) continue;
    entries.push({ mountPoint: unescape(fields[4]!), mountOptions: fields[5]!, fsType: fields[dash + 1]!, superOptions: fields[dash + 3] ?? '' });
  }
  return entries;
}

/** Comma-separated options in a stable order, for comparing. */
const sortOptions = (options: string) => options.split(',').filter(Boolean).sort().join(',');

/** The controllers (and name=) a v1 mount's superblock options name, sorted, comma-joined. */
function hierarchyOf(superOptions: string): string {
  const flags = new Set(['rw', 'ro', 'clone_children', 'noprefix', 'xattr', 'cpuset_v2_mode', 'favordynmods']);
  return superOptions
    .split(',')
    .filter((option) => option && !flags.has(option) && !option.startsWith('release_agent='))
    .sort()
    .join(',');
}

/** The host's cgroup mounts and v1 hierarchies now. */
export async function hostCgroupState(): Promise<CgroupState> {
  const mounts = (await readMountinfo())
    .filter((entry) => entry.fsType === 'cgroup' || entry.fsType === 'cgroup2')
    .map((entry) => ({ mountPoint: entry.mountPoint, fsType: entry.fsType, mountOptions: entry.mountOptions, superOptions: sortOptions(entry.superOptions) }))
    .sort((a, b) => (a.mountPoint < b.mountPoint ? -1 : a.mountPoint > b.mountPoint ? 1 : 0));
  const byHierarchy = new Map<string, string[]>();
  for (const line of (await readFile('/proc/cgroups', 'utf8')).split('\n')) {
    const [name, hierarchy, , enabled] = line.split('\t');
    if (!name || name.startsWith('#') || enabled !== '1' || hierarchy === '0' || !hierarchy) continue;
    byHierarchy.set(hierarchy, [...(byHierarchy.get(hierarchy) ?? []), name]);
  }
  const bound = [...byHierarchy.values()].map((names) => names.sort().join(',')).sort();
  return { mounts, bound };
}

/** How `after` differs from `before`, one line per difference (empty: the same). */
export function cgroupDifferences(before: CgroupState, after: CgroupState): string[] {
  const differences: string[] = [];
  const afterMounts = new Map(after.mounts.map((mount) => [mount.mountPoint, mount]));
  const beforeMounts = new Map(before.mounts.map((mount) => [mount.mountPoint, mount]));
  for (const mount of before.mounts) {
    const now = afterMounts.get(mount.mountPoint);
    if (!now) differences.push(`${mount.mountPoint} (${mount.fsType} ${mount.superOptions}) is no longer mounted`);
    else if (now.fsType !== mount.fsType || now.superOptions !== mount.superOptions || now.mountOptions !== mount.mountOptions)
      differences.push(`${mount.mountPoint} was ${mount.fsType} ${mount.mountOptions} ${mount.superOptions}, is ${now.fsType} ${now.mountOptions} ${now.superOptions}`);
  }
  for (const mount of after.mounts) if (!beforeMounts.has(mount.mountPoint)) differences.push(`${mount.mountPoint} (${mount.fsType} ${mount.superOptions}) is newly mounted`);
  for (const group of before.bound) if (!after.bound.includes(group)) differences.push(`controllers ${group} no longer share a v1 hierarchy`);
  for (const group of after.bound) if (!before.bound.includes(group)) differences.push(`controllers ${group} are newly bound to a v1 hierarchy`);
  return differences;
}

/**
 * Puts the host's cgroups back as `baseline` recorded them and says what it did. `full` (no other
 * booted root running): also frees hierarchies left bound and resets cgroup2's options, which
 * would pull the ground from under a systemd still running.
 */
async function restoreCgroups(baseline: CgroupState, full: boolean): Promise<string[]> {
  const actions: string[] = [];
  if (full) {
    const now = await hostCgroupState();
    const mounted = new Set(now.mounts.filter((mount) => mount.fsType === 'cgroup').map((mount) => hierarchyOf(mount.superOptions)));
    for (const group of now.bound) {
      if (baseline.bound.includes(group) || mounted.has(group)) continue;
      await releaseHierarchy(group);
      actions.push(`released the v1 hierarchy ${group}, left bound and mounted nowhere`);
    }
  }
  const present = new Set((await hostCgroupState()).mounts.map((mount) => mount.mountPoint));
  for (const mount of baseline.mounts) {
    if (present.has(mount.mountPoint)) continue;
    await mkdir(mount.mountPoint, { recursive: true });
    // Co-mounted controllers go back together (the superblock options name them all).
    const data = mount.fsType === 'cgroup' ? hierarchyOf(mount.superOptions) : mount.superOptions.split(',').filter((option) => option !== 'rw' && option !== 'ro').join(',');
    const options = [mount.mountOptions, data].filter(Boolean).join(',');
    await must('mount', ['-t', mount.fsType, '-o', options, mount.fsType, mount.mountPoint], { timeoutMs: 30_000, code: 'CGROUP_RESTORE_FAILED' });
    actions.push(`re-mounted ${mount.fsType} ${data} at ${mount.mountPoint}`);
  }
  if (full) {
    const now = new Map((await hostCgroupState()).mounts.map((mount) => [mount.mountPoint, mount]));
    for (const mount of baseline.mounts) {
      const current = now.get(mount.mountPoint);
      if (mount.fsType !== 'cgroup2' || !current || current.superOptions === mount.superOptions) continue;
      await remountSuperblock(mount);
      actions.push(`reset ${mount.mountPoint}'s options from ${current.superOptions} to ${mount.superOptions}`);
    }
  }
  return actions;
}

/**
 * Frees a v1 hierarchy that is bound but mounted nowhere on the host: mounted in a private mount
 * namespace (so no podman on the host sees it meanwhile), its empty cgroups removed deepest first,
 * unmounted. The kernel frees a hierarchy on unmount only once its children are gone, which
 * happens asynchronously after rmdir, hence the second round.
 */
async function releaseHierarchy(group: string): Promise<void> {
  const script = 'd=$(mktemp -d) && mount -t cgroup -o "$1" cgroup "$d" && { find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null; umount "$d"; }; rmdir "$d"';
  for (let round = 0; round < 20; round += 1) {
    if (!(await hostCgroupState()).bound.includes(group)) return;
    await run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', group], { timeoutMs: 60_000 });
    await sleep(150);
  }
  if ((await hostCgroupState()).bound.includes(group)) {
    throw new DebianRootError('CGROUP_RESTORE_FAILED', `the v1 hierarchy ${group} stays bound: a cgroup in it still holds processes`);
  }
}

/** mount(2) flags for the per-mount options mountinfo prints. */
function mountFlags(mountOptions: string): number {
  const bits: Record<string, number> = { ro: 1, nosuid: 2, nodev: 4, noexec: 8, noatime: 1024, nodiratime: 2048, relatime: 1 << 21, strictatime: 1 << 24 };
  return mountOptions.split(',').reduce((flags, option) => flags | (bits[option] ?? 0), 0);
}

/**
 * Remounts with exactly the recorded superblock options. util-linux's `mount -o remount` sends
 * the current options along (so it cannot drop `nsdelegate`); perl's syscall() calls mount(2)
 * itself, and perl is in every Debian (perl-base is essential).
 */
async function remountSuperblock(mount: CgroupMount): Promise<void> {
  const syscallNumber = { x64: 165, arm64: 40 }[process.arch as 'x64' | 'arm64'];
  if (syscallNumber === undefined) throw new DebianRootError('CGROUP_RESTORE_FAILED', `no mount(2) number known for ${process.arch}`);
  const MS_REMOUNT = 32;
  const data = mount.superOptions.split(',').filter((option) => option !== 'rw' && option !== 'ro').join(',');
  const script = `my ($nr, $source, $target, $type, $flags, $data) = @ARGV; syscall($nr + 0, $source, $target, $type, $flags + 0, $data) == 0 or die "mount(2): $!\\n";`;
  await must('perl', ['-e', script, String(syscallNumber), mount.fsType, mount.mountPoint, mount.fsType, String(MS_REMOUNT | mountFlags(mount.mountOptions)), data], {
    timeoutMs: 30_000,
    code: 'CGROUP_RESTORE_FAILED',
  });
}

// ---------------------------------------------------------------------------------------------
// Booting a root with systemd

export interface BootOptions {
  /** Registers stop() as teardown (tap's `t`). */
  t?: Teardown;
  /** Until systemd says running or degraded; 120 s by default. */
  timeoutMs?: number;
  /** Extra `podman run` arguments (e.g. `--volume`), placed before --rootfs. */
  podmanArgs?: string[];
}

export interface ExecOptions extends RunOptions {
  user?: string;
}

export interface StopReport {
  /** What was done to put the host's cgroups back (empty: nothing was needed). */
  restored: string[];
  /** Another booted root still runs: the full restore is left to the last one to stop. */
  deferred: boolean;
}

/** A root booted with systemd as PID 1 in a privileged podman container. */
export interface SystemdHandle {
  readonly container: string;
  readonly root: string;
  /** What `systemctl is-system-running` said when the boot finished. */
  readonly state: 'running' | 'degraded';
  /** The units that had failed at that moment (empty when running). */
  readonly failedUnits: string[];
  /** From `podman run` to running/degraded. */
  readonly bootMs: number;
  /** `podman exec` in the container; never rejects on exit status. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<RunResult>;
  /** The journal of one unit (`journalctl -u UNIT -o short-iso`). */
  journal(unit: string, options?: { lines?: number }): Promise<string>;
  /** Removes the container and puts the host's cgroup mounts back; idempotent. */
  stop(): Promise<StopReport>;
}

/** Runs podman and parses its JSON output. */
async function podmanJson(args: string[]): Promise<unknown> {
  const result = await must('podman', args, { timeoutMs: 60_000 });
  return JSON.parse(result.stdout || 'null') as unknown;
}

/** The names of running booted roots other than `except`. */
async function otherBootedRoots(except: string): Promise<string[]> {
  const listed = (await podmanJson(['ps', '--filter', `label=${BOOT_LABEL}`, '--format', 'json'])) as { Names?: string[] }[] | null;
  return (listed ?? []).map((entry) => entry.Names?.[0] ?? '').filter((name) => name && name !== except);
}

/**
 * Boots `root` with systemd as PID 1 (`podman run -d --privileged --systemd=always --rootfs ROOT
 * /sbin/init`) and waits until `systemctl is-system-running --wait` says running or degraded.
 * The first boot while no other booted root runs records the host's cgroup state; stop() puts it back.
 */
export async function bootSystemd(root: string, options: BootOptions = {}): Promise<SystemdHandle> {
  const unsupported = await bootUnsupported();
  if (unsupported) throw new DebianRootError('NOT_SUPPORTED', unsupported);
  const absolute = resolve(root);
  if (!(await exists(join(absolute, 'sbin/init')))) throw new DebianRootError('BOOT_FAILED', `${absolute} has no /sbin/init: make it with debianRoot({ arch: 'amd64', withSystemd: true })`);
  const container = `podvisor-debroot-${randomBytes(4).toString('hex')}`;
  const started = Date.now();
  await withLock(BOOT_LOCK, 'booting a Debian root', 5 * MINUTE, async () => {
    if ((await otherBootedRoots(container)).length === 0 || !(await exists(CGROUP_BASELINE))) {
      await writeFile(CGROUP_BASELINE, JSON.stringify(await hostCgroupState()));
    }
    const args = ['run', '-d', '--name', container, '--label', BOOT_LABEL, '--privileged', '--systemd=always', ...(options.podmanArgs ?? []), '--rootfs', absolute, '/sbin/init'];
    const result = await run('podman', args, { timeoutMs: 2 * MINUTE });
    if (result.exitCode !== 0) {
      await run('podman', ['rm', '-f', container], { timeoutMs: 60_000 });
      const hint = /setrlimit|hybrid/.test(result.stderr) ? ' (a host quirk: run `bash scripts/setup-host.sh`)' : '';
      throw new DebianRootError('BOOT_FAILED', `${failureText(result)}${hint}`);
    }
  });

  const exec = async (argv: readonly string[], execOptions: ExecOptions = {}): Promise<RunResult> => {
    const flags = [...(execOptions.input === undefined ? [] : ['-i']), ...(execOptions.user ? ['--user', execOptions.user] : []), ...Object.entries(execOptions.env ?? {}).map(([key, value]) => `--env=${key}=${value}`)];
    const { env: _unused, ...rest } = execOptions;
    return await run('podman', ['exec', ...flags, container, ...argv], rest);
  };
  let stopping: Promise<StopReport> | undefined;
  const stop = (): Promise<StopReport> => (stopping ??= stopBooted(container));
  options.t?.teardown(stop);

  try {
    const { state, failedUnits } = await waitForSystem(exec, options.timeoutMs ?? 2 * MINUTE);
    return {
      container,
      root: absolute,
      state,
      failedUnits,
      bootMs: Date.now() - started,
      exec,
      stop,
      async journal(unit: string, journalOptions: { lines?: number } = {}): Promise<string> {
        const lines = journalOptions.lines === undefined ? [] : ['-n', String(journalOptions.lines)];
        const result = await exec(['journalctl', '--no-pager', '-o', 'short-iso', ...lines, '-u', unit]);
        if (result.exitCode !== 0) throw new DebianRootError('COMMAND_FAILED', failureText(result));
        return result.stdout;
      },
    };
  } catch (error) {
    const logs = await run('podman', ['logs', '--tail', '30', container], { timeoutMs: 30_000 });
    await stop().catch(() => undefined);
    throw new DebianRootError('BOOT_FAILED', `${(error as Error).message}\ncontainer output:\n${tail(logs.stdout + logs.stderr, 30)}`, { cause: error });
  }
}

/** Polls `systemctl is-system-running --wait` until running/degraded; fails on maintenance/stopping/offline or the deadline. */
async function waitForSystem(exec: SystemdHandle['exec'], timeoutMs: number): Promise<{ state: 'running' | 'degraded'; failedUnits: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new DebianRootError('BOOT_FAILED', `systemd did not reach running within ${timeoutMs} ms (last: ${last})`);
    // Before systemd listens, systemctl fails at once ("Failed to connect to bus"): try again.
    const result = await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: Math.max(1_000, remaining) });
    const state = result.stdout.trim();
    last = state || tail(result.stderr, 2);
    if (state === 'running' || state === 'degraded') {
      const failed = await exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend', '--no-pager']);
      const failedUnits = failed.stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/)[0] ?? '')
        .filter(Boolean);
      return { state, failedUnits };
    }
    if (['maintenance', 'stopping', 'offline'].includes(state)) throw new DebianRootError('BOOT_FAILED', `systemd is ${state}`);
    await sleep(250);
  }
}

/** Removes the container, then puts the host's cgroups back (fully, when it was the last booted root). */
async function stopBooted(container: string): Promise<StopReport> {
  return await withLock(BOOT_LOCK, 'stopping a Debian root', 5 * MINUTE, async () => {
    // systemd's stop signal (SIGRTMIN+3) shuts it down in about a second; -t bounds a hang.
    const removed = await run('podman', ['rm', '-f', '-t', '15', container], { timeoutMs: 2 * MINUTE });
    let baseline: CgroupState | undefined;
    try {
      baseline = JSON.parse(await readFile(CGROUP_BASELINE, 'utf8')) as CgroupState;
    } catch {
      baseline = undefined;
    }
    const deferred = (await otherBootedRoots(container)).length > 0;
    const restored = baseline ? await restoreCgroups(baseline, !deferred) : [];
    if (baseline && !deferred) {
      const differences = cgroupDifferences(baseline, await hostCgroupState());
      if (differences.length > 0) throw new DebianRootError('CGROUP_RESTORE_FAILED', `the host's cgroups differ from before the boot:\n${differences.join('\n')}`);
      await rm(CGROUP_BASELINE, { force: true });
    }
    if (removed.exitCode !== 0 && !/no such container/i.test(removed.stderr)) throw new DebianRootError('COMMAND_FAILED', failureText(removed));
    return { restored, deferred };
  });
}

// ---------------------------------------------------------------------------------------------
// Nested podman

export interface NestedPodmanOptions {
  /** The image made from the host's /bin/busybox inside the container. */
  image?: string;
}

/**
 * Makes podman inside a booted root able to run a container: installs Debian's podman there if
 * missing (apt-get, from the host's mirror), applies the RLIMIT_NOFILE quirk's fix in the
 * container's own containers.conf when its hard limit is low, refuses with a clear reason on a
 * hybrid cgroup2 that still holds controllers (kernel-wide: only the host can fix it), and imports
 * an image made from the host's /bin/busybox. Returns the image name and what it changed.
 */
export async function prepareNestedPodman(handle: SystemdHandle, options: NestedPodmanOptions = {}): Promise<{ image: string; actions: string[] }> {
  const image = options.image ?? 'localhost/busybox:test';
  const actions: string[] = [];
  const check = async (argv: string[], timeoutMs = DEFAULT_TIMEOUT_MS) => {
    const result = await handle.exec(argv, { timeoutMs, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (result.exitCode !== 0) throw new DebianRootError('COMMAND_FAILED', failureText(result));
    return result.stdout;
  };

  if ((await handle.exec(['sh', '-c', 'command -v podman'])).exitCode !== 0) {
    await check(['apt-get', 'update', '-qq'], 5 * MINUTE);
    await check(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'podman', 'crun', 'conmon', 'netavark', 'aardvark-dns', 'catatonit', 'iptables'], 10 * MINUTE);
    actions.push('installed podman with apt-get');
  }

  const ulimitFix = `conf=/etc/containers/containers.conf
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ] && ! grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\\[\\]' "$conf"; then
  mkdir -p /etc/containers
  if grep -qs '^\\[containers\\]' "$conf"; then sed -i '/^\\[containers\\]/a default_ulimits = []' "$conf"; else printf '[containers]\\ndefault_ulimits = []\\n' >>"$conf"; fi
  echo "hard open-files limit $hard: set default_ulimits = [] in $conf"
fi`;
  const ulimit = (await check(['sh', '-c', ulimitFix])).trim();
  if (ulimit) actions.push(ulimit);

  const held = (await check(['sh', '-c', 'f=/sys/fs/cgroup/unified/cgroup.controllers; [ -f "$f" ] && cat "$f" || true'])).trim();
  if (held) {
    throw new DebianRootError(
      'NESTED_PODMAN_UNSUPPORTED',
      `the hybrid cgroup2 still holds '${held}', so crun refuses to start containers; which hierarchy a controller is bound to is kernel-wide, fix it on the host: bash scripts/setup-host.sh`,
    );
  }

  if ((await handle.exec(['podman', 'image', 'exists', image])).exitCode !== 0) {
    const busybox = '/bin/busybox';
    if (!(await exists(busybox))) throw new DebianRootError('NOT_SUPPORTED', 'no /bin/busybox on the host: run `bash scripts/setup-host.sh` (busybox-static)');
    // /tmp inside is podman's tmpfs; /var/tmp is the root's own disk.
    await must('podman', ['cp', busybox, `${handle.container}:/var/tmp/podvisor-busybox`], { timeoutMs: 60_000 });
    const build = `set -e
r=$(mktemp -d /var/tmp/busybox-root.XXXXXX)
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev"
mv /var/tmp/podvisor-busybox "$r/bin/busybox"
for app in $("$r/bin/busybox" --list); do [ "$app" = busybox ] || ln -s busybox "$r/bin/$app"; done
printf 'root:x:0:0:root:/root:/bin/sh\\n' >"$r/etc/passwd"
printf 'root:x:0:\\n' >"$r/etc/group"
tar -C "$r" -cf "$r.tar" .
podman import --change 'ENV=PATH=/bin' --change 'CMD=["sh"]' "$r.tar" "$1" >/dev/null
rm -rf "$r" "$r.tar"`;
    await check(['sh', '-c', build, 'sh', image], 5 * MINUTE);
    actions.push(`imported ${image} from the host's /bin/busybox`);
  }
  return { image, actions };
}
