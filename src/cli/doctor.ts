// `podvisor doctor`: a preflight an operator runs on a device before (or instead of) wondering
// why no pod starts. Each check is one line, `ok|warn|fail  <check>: <found>[; <fix>]`, and the
// command exits 1 if any check failed. Two checks name the host quirks that stop every container
// with an error far from its cause (../shared/HOST-NOTES.md): a hard limit below podman's default
// container ulimits (crun: "setrlimit RLIMIT_NOFILE: Operation not permitted") and a hybrid
// cgroup tree whose cgroup2 mount still holds a controller (crun: "cgroups in hybrid mode not
// supported"). Every check has its own deadline, so a hung podman or file system costs that
// check, not the run. What is judged is kept apart from how the facts are read: the judging
// functions are pure and tested on facts written by hand; the reading is tested on this host.
import { execa } from 'execa';
import { constants, type Stats, type StatsFs } from 'node:fs';
import { access, open, readdir, readFile, stat, statfs, unlink } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import type { ManifestPolicy } from '../config/manifest-policy.js';
import { errorMessage } from '../errors.js';
import type { FileResult } from '../manifest/load-file.js';
import { PodmanCli } from '../runtime/podman-cli.js';
import { DEFAULT_CONFIG_FILE, readAgentConfigFile } from './args.js';

export type Level = 'ok' | 'warn' | 'fail';

/** One line of the report. */
export interface CheckResult {
  level: Level;
  check: string;
  found: string;
  fix?: string | undefined;
}

/** The report's line for one result. */
export function formatResult(result: CheckResult): string {
  return `${result.level.padEnd(4)}  ${result.check}: ${result.found}${result.fix ? `; ${result.fix}` : ''}`;
}

const ok = (check: string, found: string): CheckResult => ({ level: 'ok', check, found });
const warn = (check: string, found: string, fix?: string): CheckResult => ({ level: 'warn', check, found, fix });
const fail = (check: string, found: string, fix?: string): CheckResult => ({ level: 'fail', check, found, fix });

// ---------------------------------------------------------------------------------------------
// Judging (pure)

/** The oldest podman podvisor supports (Debian 12's). */
export const MIN_PODMAN: readonly [number, number] = [4, 3];

/** The major, minor and patch of `podman --version`'s answer ("podman version 4.3.1"). */
export function parsePodmanVersion(text: string): [number, number, number] | undefined {
  const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
}

/** Running as root: the agent creates podman pods and writes /var/lib/podvisor. */
export function judgeRoot(uid: number, user: string): CheckResult {
  if (uid === 0) return ok('root', 'running as root');
  return fail('root', `running as uid ${uid} (${user}), not root: the agent needs root to run podman's pods and write its state, and what podman shows this user is not what it shows root`, 'run sudo podvisor doctor');
}

/** The podman binary the agent would run, and its version. */
export function judgePodman(bin: string, where: string, answer: { version?: string; error?: string }): CheckResult {
  if (answer.error !== undefined) {
    const missing = /not found|ENOENT/.test(answer.error);
    return fail('podman', missing ? `${bin} not found` : `${bin} --version failed: ${answer.error}`, missing ? 'install podman (apt-get install podman), or set PODVISOR_PODMAN in /etc/default/podvisor to its path' : undefined);
  }
  const version = parsePodmanVersion(answer.version ?? '');
  if (!version) return warn('podman', `${where}: cannot read a version in "${answer.version ?? ''}"`);
  const [major, minor] = version;
  const text = version.join('.');
  if (major < MIN_PODMAN[0] || (major === MIN_PODMAN[0] && minor < MIN_PODMAN[1])) {
    return fail('podman', `${where}, version ${text}, older than ${MIN_PODMAN.join('.')}, the oldest podvisor supports`, 'upgrade podman');
  }
  return ok('podman', `${where}, version ${text}`);
}

/** podman's RLIMIT_NOFILE and RLIMIT_NPROC for a root container when containers.conf sets none. */
export const PODMAN_DEFAULT_ULIMIT = 1_048_576;

/** The last `default_ulimits` containers.conf sets: its items, and the file; undefined when none does. */
export interface UlimitsSetting {
  items: string[];
  file: string;
}

export interface LimitFacts {
  /** This process's hard limits (Infinity for unlimited). */
  nofileHard: number;
  nprocHard: number;
  /** CAP_SYS_RESOURCE: a hard limit can be raised (open files up to fs.nr_open). */
  canRaise: boolean;
  nrOpen: number;
  setting: UlimitsSetting | undefined;
}

/** The hard limit podman will ask crun to set for `name` (nofile, nproc), from the setting's items. */
function askedHard(name: string, setting: UlimitsSetting | undefined): number {
  const item = setting?.items.find((one) => one.trim().startsWith(`${name}=`));
  if (!item) return PODMAN_DEFAULT_ULIMIT;
  const [soft, hard] = item.split('=')[1]!.split(':');
  const value = hard ?? soft ?? '';
  return value === '-1' || value === 'unlimited' ? Infinity : Number(value);
}

/**
 * Host quirk 1: podman sets its containers' open-files and process limits to 1048576 unless
 * containers.conf says otherwise, and crun cannot raise a hard limit the host holds lower without
 * CAP_SYS_RESOURCE: every container then fails to start. `default_ulimits = []` lets containers
 * keep the host's own limits. (Any other list still sets podman's default for what it leaves out.)
 */
export function judgeUlimits(facts: LimitFacts): CheckResult {
  const check = 'ulimits';
  const limits = `hard limits: ${fmtLimit(facts.nofileHard)} open files, ${fmtLimit(facts.nprocHard)} processes`;
  if (facts.setting && facts.setting.items.length === 0) return ok(check, `${limits}; ${facts.setting.file} sets default_ulimits = [] (containers keep the host's limits)`);
  const ceiling = (name: 'nofile' | 'nproc', hard: number) => (facts.canRaise ? (name === 'nofile' ? facts.nrOpen : Infinity) : hard);
  const short = (['nofile', 'nproc'] as const).filter((name) => askedHard(name, facts.setting) > ceiling(name, name === 'nofile' ? facts.nofileHard : facts.nprocHard));
  if (short.length === 0) return ok(check, `${limits}; ${facts.setting ? `${facts.setting.file}'s default_ulimits` : "podman's default container ulimits"} can be set`);
  const asked = short.map((name) => `${name} ${fmtLimit(askedHard(name, facts.setting))}`).join(', ');
  const source = facts.setting ? `from ${facts.setting.file}'s default_ulimits` : "podman's default, as containers.conf sets no default_ulimits";
  const errorName = short[0] === 'nofile' ? 'RLIMIT_NOFILE' : 'RLIMIT_NPROC';
  return fail(
    check,
    `${limits}, below what podman sets for containers (${asked}: ${source}), and no CAP_SYS_RESOURCE to raise them: every container fails with crun's "setrlimit ${errorName}: Operation not permitted"`,
    'set default_ulimits = [] under [containers] in /etc/containers/containers.conf',
  );
}

/** A limit as /proc/self/limits writes it. */
function fmtLimit(value: number): string {
  return value === Infinity ? 'unlimited' : String(value);
}

/** How the cgroup file systems are mounted. */
export interface CgroupLayout {
  kind: 'v2' | 'v1' | 'hybrid' | 'none';
  /** The cgroup2 mount of a hybrid tree (/sys/fs/cgroup/unified). */
  unifiedMount?: string | undefined;
  /** Controllers its cgroup.controllers lists. */
  unifiedControllers?: string[] | undefined;
}

/** The layout from /proc/self/mounts (mount point and type of each line). */
export function cgroupLayoutOf(mounts: string): Omit<CgroupLayout, 'unifiedControllers'> {
  const entries = mounts.split('\n').map((line) => line.split(' ')).filter((fields) => fields.length >= 3).map((fields) => ({ at: fields[1]!, type: fields[2]! }));
  if (entries.some((entry) => entry.at === '/sys/fs/cgroup' && entry.type === 'cgroup2')) return { kind: 'v2' };
  const v1 = entries.some((entry) => entry.type === 'cgroup');
  const unified = entries.find((entry) => entry.type === 'cgroup2');
  if (v1 && unified) return { kind: 'hybrid', unifiedMount: unified.at };
  if (v1) return { kind: 'v1' };
  if (unified) return { kind: 'v2' };
  return { kind: 'none' };
}

/** The cgroup version, and whether podman supports it. */
export function judgeCgroupVersion(layout: CgroupLayout, podmanMajor: number | undefined): CheckResult {
  const check = 'cgroups';
  if (layout.kind === 'none') return fail(check, 'no cgroup file system is mounted: podman cannot run containers', 'mount cgroup2 on /sys/fs/cgroup');
  if (layout.kind === 'v2') return ok(check, 'v2 (unified)');
  const what = layout.kind === 'hybrid' ? `v1 (hybrid: v1 controllers, and cgroup2 at ${layout.unifiedMount ?? '?'})` : 'v1';
  if (podmanMajor !== undefined && podmanMajor >= 5) return warn(check, `${what}: podman ${podmanMajor} deprecates cgroup v1`, 'boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2');
  return ok(check, what);
}

/**
 * Host quirk 2: crun refuses a hybrid tree whose cgroup2 mount still holds a controller. Moving
 * each such controller to a v1 mount of its own leaves the cgroup2 mount empty.
 */
export function judgeHybrid(layout: CgroupLayout): CheckResult {
  const check = 'hybrid cgroups';
  if (layout.kind !== 'hybrid') return ok(check, `not hybrid (cgroups ${layout.kind})`);
  const controllers = layout.unifiedControllers ?? [];
  if (controllers.length === 0) return ok(check, `${layout.unifiedMount ?? 'the cgroup2 mount'} holds no controllers`);
  const moves = controllers.map((name) => `mkdir -p /sys/fs/cgroup/${name} && mount -t cgroup -o ${name} cgroup /sys/fs/cgroup/${name}`).join(' && ');
  return fail(
    check,
    `${layout.unifiedMount ?? 'the cgroup2 mount'} still holds ${controllers.join(', ')}: every container fails with crun's "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"`,
    `move ${controllers.length === 1 ? 'it' : 'them'} to cgroup v1: ${moves}`,
  );
}

/**
 * The manifest directory: there, a directory, owned by root, and writable by root alone. With
 * `ownershipChecked` (policy.check-ownership, the default) the agent refuses every manifest in a
 * directory that is not: a failure, not a warning.
 */
export function judgeManifestDir(dir: string, info: Pick<Stats, 'isDirectory' | 'uid' | 'mode'> | { error: string }, ownershipChecked = false): CheckResult {
  const check = 'manifest dir';
  if ('error' in info) {
    if (/ENOENT/.test(info.error)) return fail(check, `${dir} does not exist: the agent runs no pods`, `mkdir -m 0755 ${dir}`);
    return fail(check, `${dir}: ${info.error}`);
  }
  if (!info.isDirectory()) return fail(check, `${dir} is not a directory`);
  const mode = (info.mode & 0o7777).toString(8).padStart(4, '0');
  const problems: string[] = [];
  const fixes: string[] = [];
  if (info.uid !== 0) {
    problems.push(`owned by uid ${info.uid}, not root`);
    fixes.push(`chown root: ${dir}`);
  }
  if ((info.mode & 0o022) !== 0) {
    problems.push(`${(info.mode & 0o002) !== 0 ? 'world' : 'group'}-writable (mode ${mode})`);
    fixes.push(`chmod go-w ${dir}`);
  }
  if (problems.length === 0) return ok(check, `${dir}, owned by root, mode ${mode}`);
  if (ownershipChecked) return fail(check, `${dir} is ${problems.join(' and ')}: the agent refuses every manifest in it (policy.check-ownership)`, fixes.join(' && '));
  return warn(check, `${dir} is ${problems.join(' and ')}: whoever can write there runs pods as root`, fixes.join(' && '));
}

/** The manifest files: how many pods they hold, and which files have errors. */
export function judgeManifests(dir: string, files: Pick<FileResult, 'path' | 'pods' | 'hasErrors'>[]): CheckResult {
  const check = 'manifests';
  const pods = files.reduce((sum, file) => sum + file.pods.length, 0);
  const bad = files.filter((file) => file.hasErrors).map((file) => basename(file.path));
  const found = `${files.length} file(s) in ${dir}, ${pods} valid pod(s)`;
  if (bad.length > 0) return warn(check, `${found}; with errors: ${bad.join(', ')}`, `podvisor validate ${dir} names each error`);
  return ok(check, found);
}

/** Free space below which the agent (status, volumes) or podman (images, logs) is about to fail. */
const DISK_FAIL_BYTES = 100 * 1024 ** 2;
const DISK_WARN_BYTES = 1024 ** 3;

/** Free space on the file system holding `path`. */
export function judgeDisk(check: string, path: string, fs: Pick<StatsFs, 'bsize' | 'blocks' | 'bavail'>): CheckResult {
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const found = `${bytes(free)} free of ${bytes(total)} on ${path}`;
  if (free < DISK_FAIL_BYTES) return fail(check, found, 'free some space');
  if (free < DISK_WARN_BYTES || (total > 0 && free / total < 0.05)) return warn(check, `${found}: little left`, 'free some space');
  return ok(check, found);
}

/** A size in binary units, one decimal. */
function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** An image the manifests name, and what podman has of it. */
export interface ImageUse {
  image: string;
  present: boolean;
  /** Every container using it pulls at each start (imagePullPolicy: Always). */
  alwaysPulled: boolean;
}

/** The manifests' images: missing ones cannot be pulled when no registry is reachable. */
export function judgeImages(uses: ImageUse[]): CheckResult {
  const check = 'images';
  if (uses.length === 0) return ok(check, 'the manifests name no image');
  const missing = uses.filter((use) => !use.present).map((use) => use.image);
  const pulled = uses.filter((use) => use.present && use.alwaysPulled).map((use) => use.image);
  if (missing.length > 0) {
    return warn(check, `not in podman's storage: ${missing.join(', ')}; their pods start only if a registry is reachable`, 'podman load -i IMAGE.tar (or podman pull while a registry is reachable)');
  }
  if (pulled.length > 0) {
    return warn(check, `pulled again at each start (imagePullPolicy: Always, the default for :latest or no tag): ${pulled.join(', ')}; with no registry reachable they do not start`, 'give a tag other than latest, or imagePullPolicy: IfNotPresent');
  }
  return ok(check, `all ${uses.length} present: ${uses.map((use) => use.image).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// Reading the host

/** The hard limit of `name` in /proc/self/limits ("Max open files  20000  20000  files"). */
export function hardLimit(limits: string, name: string): number {
  const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(limits);
  if (!match) return Infinity;
  return match[2] === 'unlimited' ? Infinity : Number(match[2]);
}

/** True when the effective capability set in /proc/self/status holds capability number `bit`. */
export function hasCapability(status: string, bit: number): boolean {
  const match = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return match ? ((BigInt(`0x${match[1]}`) >> BigInt(bit)) & 1n) === 1n : false;
}

const CAP_SYS_RESOURCE = 24;

/**
 * The raw value of `key` in `[table]` of a containers.conf (TOML), or undefined; an array may run
 * over several lines. Enough TOML for the two settings read here, not a TOML parser.
 */
export function confValue(text: string, table: string, key: string): string | undefined {
  let current = '';
  let value: string | undefined;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = stripComment(lines[index] ?? '');
    const header = /^\s*\[\s*([^\]\s]+)\s*\]\s*$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    const assignment = new RegExp(`^\\s*${key}\\s*=\\s*(.*)$`).exec(line);
    if (current !== table || !assignment) continue;
    let raw = assignment[1]!;
    while (depth(raw) > 0 && index + 1 < lines.length) raw += `\n${stripComment(lines[++index] ?? '')}`;
    value = raw.trim();
  }
  return value;
}

/** The strings of a TOML value ("a" or ["a", 'b']). */
export function tomlStrings(raw: string): string[] {
  return [...raw.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g)].map((match) => match[1] ?? match[2] ?? '');
}

/** The line without its `#` comment (a `#` inside quotes is text). */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let index = 0; index < line.length; index++) {
    const char = line[index];
    if (quote) {
      if (char === '\\' && quote === '"') index++;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '#') return line.slice(0, index);
  }
  return line;
}

/** How many brackets of `raw` are still open (quoted text left out). */
function depth(raw: string): number {
  const bare = raw.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '');
  return (bare.match(/\[/g) ?? []).length - (bare.match(/\]/g) ?? []).length;
}

/** containers.conf files in the order podman reads them (a later one wins); CONTAINERS_CONF alone when set. */
async function containersConfFiles(env: NodeJS.ProcessEnv): Promise<{ file: string; text: string }[]> {
  const files = env.CONTAINERS_CONF ? [env.CONTAINERS_CONF] : ['/usr/share/containers/containers.conf', '/etc/containers/containers.conf'];
  if (!env.CONTAINERS_CONF) {
    const dropIns = await readdir('/etc/containers/containers.conf.d').catch(() => [] as string[]);
    files.push(...dropIns.filter((name) => name.endsWith('.conf')).sort().map((name) => join('/etc/containers/containers.conf.d', name)));
  }
  const read = await Promise.all(files.map(async (file) => ({ file, text: await readFile(file, 'utf8').catch(() => undefined) })));
  return read.filter((one): one is { file: string; text: string } => one.text !== undefined);
}

/** The last file's value of `[table] key`. */
function lastConfValue(files: { file: string; text: string }[], table: string, key: string): { raw: string; file: string } | undefined {
  let found: { raw: string; file: string } | undefined;
  for (const { file, text } of files) {
    const raw = confValue(text, table, key);
    if (raw !== undefined) found = { raw, file };
  }
  return found;
}

/** `KEY=value` lines of an environment file such as /etc/default/podvisor. */
export function envFileValue(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) {
    const match = new RegExp(`^\\s*(?:export\\s+)?${key}=(.*)$`).exec(line);
    if (match) value = match[1]!.trim().replace(/^(["'])(.*)\1$/, '$2');
  }
  return value;
}

/** Where `bin` is found on PATH (or itself when it names a path). */
async function which(bin: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (bin.includes('/')) return bin;
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, bin);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** The nearest directory at or above `path` that exists. */
async function nearestExisting(path: string): Promise<string> {
  let current = path;
  for (;;) {
    const exists = await stat(current).then(() => true, () => false);
    if (exists || dirname(current) === current) return current;
    current = dirname(current);
  }
}

/** Runs `run` within `ms`; a check that does not answer in time fails with that. */
async function bounded(check: string, ms: number, run: (signal: AbortSignal) => Promise<CheckResult>): Promise<CheckResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(fail(check, `no answer within ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([run(controller.signal).catch((error: unknown) => fail(check, errorMessage(error))), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The part of `podman info` the checks read. */
interface PodmanInfo {
  store?: { graphRoot?: string };
  version?: { Version?: string; Built?: number };
}

export interface DoctorOptions {
  /** --config; undefined: the default file when it exists. */
  config?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** The environment file the unit reads (PODVISOR_PODMAN may be set there). */
  defaultsFile?: string;
  defaultConfigFile?: string;
  /** Each check's deadline. */
  timeoutMs?: number;
}

/** Runs every check and returns the results in report order. */
export async function runChecks(options: DoctorOptions = {}): Promise<CheckResult[]> {
  const env = options.env ?? process.env;
  const ms = options.timeoutMs ?? 10_000;
  const isRoot = process.getuid?.() === 0;
  const userName = (() => {
    try {
      return userInfo().username;
    } catch {
      return 'unknown user';
    }
  })();

  // The configuration: the rest of the checks use its directories and node name.
  const configFile = options.config ?? ((await stat(options.defaultConfigFile ?? DEFAULT_CONFIG_FILE).then(() => true, () => false)) ? (options.defaultConfigFile ?? DEFAULT_CONFIG_FILE) : undefined);
  let settings: AgentConfig | undefined;
  const configResult = await bounded('config', ms, async () => {
    if (configFile === undefined) return ok('config', `no config file (${options.defaultConfigFile ?? DEFAULT_CONFIG_FILE} is not there): the defaults apply`);
    settings = await readAgentConfigFile(configFile);
    return ok('config', `${configFile} is valid`);
  });
  if (configResult.level === 'fail' && configFile !== undefined) configResult.fix = `fix ${configFile}; the checks below use the defaults`;
  // Without a (valid) config file, the defaults the agent would run on.
  settings ??= await (await import('../config/resolve-config.js')).resolveAgentConfig({});
  const { manifestDir, stateDir, nodeName } = settings;
  // The manifests are judged by the agent's policy (who may own them, what pods may ask for).
  const policy = (await import('../config/manifest-policy.js')).manifestPolicyOf(settings);

  // podman as the agent runs it: PODVISOR_PODMAN, which the unit may take from /etc/default/podvisor.
  const defaultsFile = options.defaultsFile ?? '/etc/default/podvisor';
  const fromDefaults = env.PODVISOR_PODMAN === undefined ? envFileValue(await readFile(defaultsFile, 'utf8').catch(() => ''), 'PODVISOR_PODMAN') : undefined;
  const bin = env.PODVISOR_PODMAN ?? fromDefaults ?? 'podman';
  const podmanCli = new PodmanCli({ bin, defaultTimeoutMs: ms });
  const version: Promise<{ version?: string; error?: string }> = podmanCli.run(['--version'], { timeoutMs: ms }).then((result) => ({ version: result.stdout }), (error: unknown) => ({ error: errorMessage(error) }));
  // Only root's podman is the agent's: another user's is rootless, with storage of its own.
  const info: Promise<PodmanInfo | undefined> = isRoot
    ? version.then((answer) => (answer.error === undefined ? podmanCli.json<PodmanInfo>(['info', '--format', 'json'], { timeoutMs: 3 * ms }).catch(() => undefined) : undefined))
    : Promise.resolve(undefined);
  const confFiles = containersConfFiles(env);
  // A directory that cannot be read is the manifest dir check's failure: here it holds no files.
  const manifests = loadManifests(manifestDir, nodeName, policy).then((files) => ({ files, error: undefined }), (error: unknown) => ({ files: [], error: errorMessage(error) }));
  const notAsRoot = (check: string) => warn(check, 'not checked: it needs root (what podman shows another user is not what the agent sees)', 'run sudo podvisor doctor');

  const checks: Promise<CheckResult>[] = [
    Promise.resolve(judgeRoot(process.getuid?.() ?? -1, userName)),
    Promise.resolve(configResult),
    // Longer than the call's own deadline, so that a hung podman is reported in podman's words.
    bounded('podman', ms + 5000, async () => {
      const answer = await version;
      const where = (await which(bin, env)) ?? bin;
      return judgePodman(bin, `${where}${fromDefaults !== undefined ? ` (PODVISOR_PODMAN in ${defaultsFile})` : ''}`, answer);
    }),
    bounded('cgroups', ms, async () => {
      // podman's version only sharpens the judgement of v1: a hung podman must not cost this check.
      const answer = await Promise.race([version, new Promise<{ version?: string }>((resolve) => setTimeout(() => resolve({}), ms / 2).unref())]);
      return judgeCgroupVersion(await cgroupLayout(), answer.version ? parsePodmanVersion(answer.version)?.[0] : undefined);
    }),
    bounded('ulimits', ms, async () => {
      const [limits, status, nrOpen, files] = await Promise.all([
        readFile('/proc/self/limits', 'utf8'),
        readFile('/proc/self/status', 'utf8'),
        readFile('/proc/sys/fs/nr_open', 'utf8').then(Number, () => 1_048_576),
        confFiles,
      ]);
      const last = lastConfValue(files, 'containers', 'default_ulimits');
      return judgeUlimits({
        nofileHard: hardLimit(limits, 'Max open files'),
        nprocHard: hardLimit(limits, 'Max processes'),
        canRaise: hasCapability(status, CAP_SYS_RESOURCE),
        nrOpen,
        setting: last ? { items: tomlStrings(last.raw), file: last.file } : undefined,
      });
    }),
    bounded('hybrid cgroups', ms, async () => judgeHybrid(await cgroupLayout())),
    bounded('systemd', ms, (signal) => systemdCheck(signal)),
    bounded('manifest dir', ms, async () => judgeManifestDir(manifestDir, await stat(manifestDir).catch((error: unknown) => ({ error: errorMessage(error) })), policy.ownership?.trustedUids !== undefined)),
    bounded('manifests', ms, async () => {
      const { files, error } = await manifests;
      return error === undefined ? judgeManifests(manifestDir, files) : warn('manifests', `not read: ${error}`);
    }),
    bounded('state dir', ms, () => stateDirCheck(stateDir)),
    bounded('infra image', 3 * ms, async (signal) => {
      if (!isRoot) return notAsRoot('infra image');
      return infraImageCheck(podmanCli, await info, await confFiles, signal);
    }),
    bounded('images', 3 * ms, async (signal) => {
      if (!isRoot) return notAsRoot('images');
      if ((await version).error !== undefined) return warn('images', 'not checked: podman did not answer');
      return judgeImages(await imageUses(podmanCli, (await manifests).files, signal));
    }),
    bounded('disk (state)', ms, async () => {
      const at = await nearestExisting(stateDir);
      return judgeDisk('disk (state)', at, await statfs(at));
    }),
    bounded('disk (podman)', 3 * ms, async () => {
      if (!isRoot) return notAsRoot('disk (podman)');
      const root = (await info)?.store?.graphRoot;
      if (!root) return warn('disk (podman)', "not checked: podman info did not answer with its storage's place");
      const at = await nearestExisting(root);
      return judgeDisk('disk (podman)', at, await statfs(at));
    }),
  ];
  return await Promise.all(checks);
}

/** The cgroup layout of this host. */
async function cgroupLayout(): Promise<CgroupLayout> {
  const layout: CgroupLayout = cgroupLayoutOf(await readFile('/proc/self/mounts', 'utf8'));
  if (layout.kind === 'hybrid' && layout.unifiedMount) {
    // cgroup files report a size of 0: read them, never judge by size.
    const text = await readFile(join(layout.unifiedMount, 'cgroup.controllers'), 'utf8').catch(() => '');
    layout.unifiedControllers = text.split(/\s+/).filter(Boolean);
  }
  return layout;
}

/** systemd running (as the device's init), and the agent's unit in it. */
async function systemdCheck(signal: AbortSignal): Promise<CheckResult> {
  const booted = await stat('/run/systemd/system').then((info) => info.isDirectory(), () => false);
  if (!booted) return ok('systemd', 'not running here (/run/systemd/system is not a directory): the podvisor unit was not checked');
  const result = await execa('systemctl', ['show', 'podvisor.service', '--property=LoadState,ActiveState,SubState'], { reject: false, stdin: 'ignore', cancelSignal: signal });
  if (result.exitCode !== 0) return warn('systemd', `running; systemctl show podvisor.service failed: ${result.stderr || result.shortMessage}`);
  const property = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(result.stdout)?.[1] ?? '';
  if (property('LoadState') === 'not-found') return warn('systemd', 'running; podvisor.service is not installed', 'install podvisor (./install.sh or the .deb)');
  const state = `${property('ActiveState')} (${property('SubState')})`;
  if (property('ActiveState') === 'active') return ok('systemd', `running; podvisor.service is ${state}`);
  return warn('systemd', `running; podvisor.service is ${state}`, 'systemctl enable --now podvisor; journalctl -u podvisor says why it stopped');
}

/** The state directory: written to with a file of its own, or creatable when it is not there yet. */
async function stateDirCheck(dir: string): Promise<CheckResult> {
  const check = 'state dir';
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    const parent = await nearestExisting(dir);
    const writable = await access(parent, constants.W_OK).then(() => undefined, (error: unknown) => errorMessage(error));
    if (writable === undefined) return ok(check, `${dir} is not there yet: the agent creates it (${parent} is writable)`);
    return fail(check, `${dir} is not there and cannot be created: ${writable}`);
  }
  if (!info.isDirectory()) return fail(check, `${dir} is not a directory`);
  const probe = join(dir, `.podvisor-doctor-${process.pid}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await unlink(probe);
  } catch (error) {
    return fail(check, `${dir} is not writable: ${errorMessage(error)}`);
  }
  return ok(check, `${dir} is writable`);
}

/** The pod infra ("pause") image: the one containers.conf names, or podman's own, built locally. */
async function infraImageCheck(cli: PodmanCli, info: PodmanInfo | undefined, files: { file: string; text: string }[], signal: AbortSignal): Promise<CheckResult> {
  const check = 'infra image';
  const configured = lastConfValue(files, 'engine', 'infra_image');
  const named = configured ? tomlStrings(configured.raw)[0] : undefined;
  if (named) {
    if (await imageExists(cli, named, signal)) return ok(check, `${named} (from ${configured?.file ?? 'containers.conf'}) is present`);
    return warn(check, `${named} (infra_image in ${configured?.file ?? 'containers.conf'}) is not in podman's storage: pods start only if a registry is reachable`, `podman load -i the image's tar, or remove infra_image to let podman build its own`);
  }
  const version = info?.version;
  if (!version?.Version) return warn(check, 'not checked: podman info did not answer');
  // podman names the pause image it builds from catatonit by its own version and build time.
  const own = `localhost/podman-pause:${version.Version}-${version.Built ?? 0}`;
  if (await imageExists(cli, own, signal)) return ok(check, `${own} is present`);
  const helpers = ['/usr/local/libexec/podman', '/usr/local/lib/podman', '/usr/libexec/podman', '/usr/lib/podman'];
  for (const dir of helpers) {
    if (await access(join(dir, 'catatonit'), constants.X_OK).then(() => true, () => false)) {
      return ok(check, `${own} is not built yet: podman builds it from ${join(dir, 'catatonit')} for the first pod (no registry needed)`);
    }
  }
  return fail(check, `${own} is not there and catatonit, which podman builds it from, is not in ${helpers.join(', ')}`, 'apt-get install catatonit');
}

/** True when podman's storage has `image` (podman resolves the name as pod creation would). */
async function imageExists(cli: PodmanCli, image: string, signal: AbortSignal): Promise<boolean> {
  return (await cli.run(['image', 'exists', image], { okExitCodes: [1], signal })).exitCode === 0;
}

/** The manifest files in `dir`, read and validated as the agent reads them, under its policy. */
async function loadManifests(dir: string, nodeName: string, policy: ManifestPolicy): Promise<FileResult[]> {
  const [{ isManifestName }, { loadManifestFile }] = await Promise.all([import('../manifest/directory-source.js'), import('../manifest/load-file.js')]);
  const names = (await readdir(dir)).filter(isManifestName).sort();
  const results: FileResult[] = [];
  for (const name of names) results.push(await loadManifestFile(join(dir, name), { nodeName, ownership: policy.ownership, devicePolicy: policy.devicePolicy }));
  return results;
}

/** The images the valid manifests name, and whether podman has each. */
async function imageUses(cli: PodmanCli, files: FileResult[], signal: AbortSignal): Promise<ImageUse[]> {
  const uses = new Map<string, { always: boolean }>();
  for (const pod of files.flatMap((file) => file.pods)) {
    for (const container of [...(pod.pod.spec.initContainers ?? []), ...pod.pod.spec.containers]) {
      const seen = uses.get(container.image);
      uses.set(container.image, { always: (seen?.always ?? true) && container.imagePullPolicy === 'Always' });
    }
  }
  const images = [...uses.keys()].sort();
  const present = await Promise.all(images.map((image) => imageExists(cli, image, signal)));
  return images.map((image, index) => ({ image, present: present[index] ?? false, alwaysPulled: uses.get(image)?.always ?? false }));
}

/** Prints one line a check; exit status 1 if any failed. */
export async function doctorCommand(options: { config?: string | undefined }): Promise<number> {
  const results = await runChecks({ config: options.config });
  for (const result of results) process.stdout.write(`${formatResult(result)}\n`);
  const failed = results.filter((result) => result.level === 'fail').length;
  const warned = results.filter((result) => result.level === 'warn').length;
  process.stderr.write(`${results.length} checks: ${failed} failed, ${warned} warning(s)\n`);
  return failed > 0 ? 1 : 0;
}
